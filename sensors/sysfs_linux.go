package sensors

import (
	"bytes"
	"io/fs"
	"sync"
	"syscall"
)

// readSysfs reads the whole of a small sysfs attribute file once, with
// open, read and close only: for files read now and then (`kelvin scan`,
// the bus listing). os.ReadFile would also fstat the file, try to add it to
// the poller (epoll refuses a regular file) and switch it to non-blocking
// and back. Files read every round are kept open instead (sysfsFile).
// Errors are *fs.PathError wrapping the errno, as os.ReadFile's are.
func readSysfs(name string) ([]byte, error) {
	fd, err := openRetry(name, syscall.O_RDONLY)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	defer syscall.Close(fd)
	data, _, err := preadAll(fd, nil, syscall.Pread)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return data, nil
}

// openRetry opens name with flags (O_RDONLY or O_WRONLY), retrying on
// EINTR.
func openRetry(name string, flags int) (int, error) {
	for {
		fd, err := syscall.Open(name, flags|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

// preadAll reads the file open at fd from offset 0 to its end into buf,
// from its start (a new buffer when buf has no capacity, grown when it is
// too small), and returns the data. A sysfs attribute is produced whole by
// one show() call into the seq_file buffer and copied out up to the size
// asked (fs/seq_file.c, seq_read_iter), so a read shorter than the buffer
// is its end and no second read for EOF is needed; the same holds for a
// regular file. A file that cannot be read at
// an offset (ESPIPE: a FIFO standing in for a blocking attribute in tests)
// is read sequentially to EOF instead, and seekable is false: it cannot be
// read again from the start.
func preadAll(fd int, buf []byte, pread func(fd int, p []byte, off int64) (int, error)) (data []byte, seekable bool, err error) {
	buf = buf[:0]
	if cap(buf) == 0 {
		buf = make([]byte, 0, 128) // w1_slave is about 75 bytes
	}
	seekable = true
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		var n int
		if seekable {
			n, err = pread(fd, buf[len(buf):cap(buf)], int64(len(buf)))
			if err == syscall.ESPIPE && len(buf) == 0 {
				seekable = false
				continue
			}
		} else {
			n, err = syscall.Read(fd, buf[len(buf):cap(buf)])
		}
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return nil, seekable, err
		case n <= 0:
			return buf, seekable, nil
		}
		buf = buf[:len(buf)+n]
		if seekable && len(buf) < cap(buf) {
			return buf, true, nil // a short read: the end
		}
	}
}

// sysfsFile is a sysfs attribute kept open between reads (or writes), so
// that reading w1_slave once a second costs one pread instead of open,
// read, read (EOF) and close: every system call of the once-a-second burst
// also costs the Go runtime's sysmon thread wake-ups.
//
// Why a pread at offset 0 reads the attribute afresh: sysfs attributes are
// kernfs seq_files. seq_read_iter (fs/seq_file.c) resets the iterator when
// the read starts at offset 0 ("if (iocb->ki_pos == 0) { m->index = 0;
// m->count = 0; }"), so its ->start and ->show run again: kernfs_seq_start
// and kernfs_seq_show (fs/kernfs/file.c) call the attribute's show() (for
// w1_slave, w1_slave_show: a new conversion and read of the scratchpad),
// exactly as the first read after an open does. This is how daemons re-read
// sysfs files without reopening them. Writes to an attribute go to its
// store() whatever the offset (kernfs_fop_write_iter).
//
// When the device is removed, kernfs_seq_start refuses the open file
// (kernfs_get_active fails: ENODEV). A read that fails with ENODEV on a
// file kept open is therefore retried once on a fresh open, which fails as
// a read of a removed device always did (ENOENT) or, if the device was
// plugged in again, reads the new one. Any other error, an empty read (a
// failed conversion) or one not ending in a newline closes the file, so the
// next read opens it afresh, as every read used to. Callers also close it
// (Close) after a read whose contents did not parse, and when the bus
// listing changed.
//
// A regular file standing in for an attribute in tests is re-read in place
// the same way: rewriting it in place (O_TRUNC) is seen at the next read.
// Replacing it by a rename is not: the open file still reads the old inode
// until something makes the file reopen. A rename-replaced fake file stands
// for a device removed and plugged in again, which the kernel signals with
// ENODEV and a fake file cannot; tests replace files that way only together
// with a change of the bus listing (or rewrite them in place).
//
// ReadFile and WriteFile are for one caller at a time (the busy flags of
// W1 and W1Bulk, held until the caller is done with what ReadFile
// returned: the next ReadFile reads into the same buffer); Close may be
// called at any time, also while a read is blocked in the kernel: that read
// then closes its descriptor when it returns.
type sysfsFile struct {
	name  string
	flags int // syscall.O_RDONLY or syscall.O_WRONLY

	// pread is syscall.Pread; tests make it fail as the kernel does for
	// a removed device (ENODEV), which a regular file cannot.
	pread func(fd int, p []byte, off int64) (int, error)

	buf []byte // what the latest ReadFile returned, reused by the next one

	mu  sync.Mutex
	fd  int    // -1 while closed or while a read holds it
	gen uint64 // counts Close calls; a read holding an older fd closes it
}

// newSysfsFile returns name, not open yet: the first read or write opens
// it.
func newSysfsFile(name string, flags int) *sysfsFile {
	return &sysfsFile{name: name, flags: flags, fd: -1, pread: syscall.Pread}
}

// take hands the open descriptor (or -1) to a read or write.
func (f *sysfsFile) take() (fd int, gen uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fd, f.fd = f.fd, -1
	return fd, f.gen
}

// give takes fd back after a read or write: kept open when keep is true
// and no Close came in between, closed otherwise.
func (f *sysfsFile) give(fd int, gen uint64, keep bool) {
	if fd < 0 {
		return
	}
	f.mu.Lock()
	if keep && f.gen == gen && f.fd < 0 {
		f.fd = fd
		fd = -1
	}
	f.mu.Unlock()
	if fd >= 0 {
		syscall.Close(fd)
	}
}

// do runs op on the kept descriptor, opening the file when none is kept;
// op returns whether the descriptor may be kept. An ENODEV from a kept
// descriptor (the kernfs node was removed since it was opened) is retried
// once on a fresh open. Errors are *fs.PathError, "open" or opName.
func (f *sysfsFile) do(opName string, op func(fd int) (keep bool, err error)) error {
	fd, gen := f.take()
	fresh := fd < 0
	for {
		if fd < 0 {
			var err error
			if fd, err = openRetry(f.name, f.flags); err != nil {
				return &fs.PathError{Op: "open", Path: f.name, Err: err}
			}
		}
		keep, err := op(fd)
		if err == syscall.ENODEV && !fresh {
			syscall.Close(fd)
			fd, fresh = -1, true
			continue
		}
		f.give(fd, gen, keep && err == nil)
		if err != nil {
			return &fs.PathError{Op: opName, Path: f.name, Err: err}
		}
		return nil
	}
}

// ReadFile reads the whole attribute from offset 0 (see sysfsFile). It
// blocks for as long as the kernel does. The data it returns is valid
// until the next ReadFile, which reads into the same buffer: a read once a
// second allocates nothing.
func (f *sysfsFile) ReadFile() ([]byte, error) {
	var data []byte
	err := f.do("read", func(fd int) (bool, error) {
		var seekable bool
		var err error
		data, seekable, err = preadAll(fd, f.buf, f.pread)
		if data != nil && cap(data) <= 4096 {
			f.buf = data // an attribute is at most a page
		}
		return seekable && bytes.HasSuffix(data, []byte("\n")), err
	})
	return data, err
}

// WriteFile writes data to the attribute at offset 0 in one write; it
// never creates the file.
func (f *sysfsFile) WriteFile(data []byte) error {
	return f.do("write", func(fd int) (bool, error) {
		for {
			n, err := syscall.Pwrite(fd, data, 0)
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.ESPIPE:
				_, err = syscall.Write(fd, data)
				return false, err
			case err == nil && n != len(data):
				return false, syscall.EIO
			}
			return err == nil, err
		}
	})
}

// Close closes the kept descriptor, if any; the next read or write opens
// the file again. A read in flight closes its own descriptor when it
// returns.
func (f *sysfsFile) Close() error {
	f.mu.Lock()
	fd := f.fd
	f.fd = -1
	f.gen++
	f.mu.Unlock()
	if fd >= 0 {
		return syscall.Close(fd)
	}
	return nil
}
