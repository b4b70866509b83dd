package mqtt

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// haveRawIO: bufConn reads and writes with rawRead and rawWrite.
const haveRawIO = true

// rawRead and rawWrite move bytes on the broker's non-blocking TCP socket
// with raw read and write system calls (syscall.RawSyscall) inside the
// socket's RawConn, which waits on the poller, with its deadlines, when the
// call would block.
//
// Why raw: net.Conn's Read and Write go through syscall.Syscall, whose
// entersyscall wakes the runtime's sysmon thread from its deep sleep and
// resets its poll period to 20 µs. The broker's PUBACKs reach an agent
// that went idle after sending a batch, so their read was a burst of its
// own that woke sysmon every second, for a read that never blocks: the
// socket is non-blocking, and the call is a copy from the socket's queue.
// The same holds for the batch's write (a copy into the send queue) and
// for TCP_QUICKACK. What it saved: docs/BENCHMARKS.md, "CPU: the
// broker's acknowledgements in one wake-up".
//
// Errors look like net.Conn's: a closed connection or a passed deadline
// come from the RawConn; an errno is an *net.OpError around an
// *os.SyscallError; a read of 0 bytes is io.EOF.
func rawRead(rc syscall.RawConn, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // wait on the poller
			}
			n, errno = int(r), e
			return true
		}
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", errno)}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func rawWrite(rc syscall.RawConn, b []byte) (int, error) {
	var n int
	var errno syscall.Errno
	err := rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[n])), uintptr(len(b)-n))
			switch e {
			case 0:
				n += int(r)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // the send queue is full: wait on the poller
			default:
				errno = e
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		return n, err
	case errno != 0:
		return n, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", errno)}
	}
	return n, nil
}

// setLowat sets the socket's SO_RCVLOWAT: the reader is woken only when
// that many bytes are queued (or the connection ends). Raising it and
// lowering it again are raw calls too; lowering it wakes a reader whose
// bytes are already there (the kernel's tcp_set_rcvlowat).
func setLowat(rc syscall.RawConn, n int) {
	rc.Control(func(fd uintptr) {
		v := int32(n)
		syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, fd, syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, uintptr(unsafe.Pointer(&v)), 4, 0)
	})
}

func setQuickAck(fd uintptr) {
	one := int32(1)
	syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, uintptr(unsafe.Pointer(&one)), 4, 0)
}
