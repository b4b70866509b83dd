package sensors

import (
	"io/fs"
	"syscall"
)

// readSysfs reads the whole of a small sysfs attribute file such as
// w1_slave (about 75 bytes) with open, read and close only. os.ReadFile
// would also fstat the file, try to add it to the poller (epoll refuses a
// regular file) and switch it to non-blocking and back: six more system
// calls per reading, which at 1 Hz per device are most of the cost of a
// read. The read blocks its thread as os.ReadFile's does on sysfs (which
// cannot be polled); callers run it in a goroutine of its own (await).
// Errors are *fs.PathError wrapping the errno, as os.ReadFile's are.
func readSysfs(name string) ([]byte, error) {
	fd, err := openRetry(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	defer syscall.Close(fd)
	buf := make([]byte, 0, 128)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: name, Err: err}
		}
		if n <= 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// openRetry opens name read-only, retrying on EINTR.
func openRetry(name string) (int, error) {
	for {
		fd, err := syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}
