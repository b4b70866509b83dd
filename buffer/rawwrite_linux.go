//go:build linux && (amd64 || arm64 || arm || riscv64 || loong64)

package buffer

import (
	"io"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// pwriteRaw writes b at off of f, a file on a tmpfs, with raw pwrite64
// system calls: syscall.RawSyscall6, not the os.File path's
// syscall.Syscall.
//
// Why raw: syscall.Syscall calls entersyscall, which wakes the runtime's
// sysmon thread when it deep-sleeps and resets its poll period to 20 µs,
// and with GOMAXPROCS=1 a P seen in the same call at two sysmon ticks is
// handed to another thread. Each of those wake-ups cost 20-45 µs of CPU on
// the benchmark's VM, more than the write itself. The agent writes the hot tail
// once per reading and once per cursor position: at 8 sensors, 9 of the
// system calls of each second's burst. Measured (docs/BENCHMARKS.md,
// "The hot tail's system calls"), with the cursor's pread gone as well:
// the agent at 8 sensors used 785 instead of 824 µs of CPU a second
// (medians of 5 and 6 interleaved runs, hot directory on a tmpfs), within
// this machine's noise, and sysmon ran 11-13 times a second either way. The
// w1_slave reads of the same burst (sysfs: they must stay blocking calls)
// keep sysmon awake anyway, so these writes shorten the burst more than
// they save wake-ups.
//
// Why only on a tmpfs: a pwrite of a few hundred bytes there is a copy into
// page-cache memory; it never waits for a device, so it need not hand its P
// to anyone (a page fault on the Go heap blocks the thread the same way,
// without a system call). A write to a disk file can wait for the device
// (or for writeback throttling) for as long as the device likes: those
// keep os.File. The caller checked the file system with statfs at Open
// (isTmpfs).
//
// Errors are those of os.File.WriteAt: EINTR is retried, a short write
// continues where it stopped, and any other errno (ENOSPC from a full
// tmpfs, which sends the segment to disk) is returned in an *os.PathError
// with the bytes written so far.
func pwriteRaw(f *os.File, b []byte, off int64) (int, error) {
	fd := f.Fd() // a regular file: in blocking mode already, Fd changes nothing
	n := 0
	for n < len(b) {
		a4, a5, a6 := pwriteOff(off + int64(n))
		r, _, e := syscall.RawSyscall6(syscall.SYS_PWRITE64, fd, uintptr(unsafe.Pointer(&b[n])), uintptr(len(b)-n), a4, a5, a6)
		switch {
		case e == syscall.EINTR:
			continue
		case e != 0:
			runtime.KeepAlive(f)
			return n, &os.PathError{Op: "write", Path: f.Name(), Err: e}
		case r == 0:
			runtime.KeepAlive(f)
			return n, &os.PathError{Op: "write", Path: f.Name(), Err: io.ErrShortWrite}
		}
		n += int(r)
	}
	runtime.KeepAlive(f)
	return n, nil
}
