//go:build linux && !386

// Not on 386: Go's syscall package has no SYS_SETSOCKOPT there (socket
// calls go through socketcall), so it keeps net.Conn's own (rawio_other.go).

package mqtt

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// newRawSockFor returns the raw socket of conn, or nil when it has none.
func newRawSockFor(conn net.Conn) *rawSock {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return newRawSock(rc)
}

// A rawSock moves bytes on the broker's non-blocking TCP socket
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
//
// The callbacks the RawConn runs are made once per socket (newRawSock),
// with their state in rawSock: a closure per call would be a heap
// allocation per read and per write. Read is called by one goroutine at a
// time (paho's reader), Write and SetLowat under the bufConn's lock.
type rawSock struct {
	rc       syscall.RawConn
	rd, wr   rawOp
	lowat    int32
	setLowat func(fd uintptr)
}

// rawOp is the state of one kind of call and its callback.
type rawOp struct {
	b     []byte
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func newRawSock(rc syscall.RawConn) *rawSock {
	s := &rawSock{rc: rc}
	s.rd.fn = s.rd.read
	s.wr.fn = s.wr.write
	s.setLowat = func(fd uintptr) {
		syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, fd, syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, uintptr(unsafe.Pointer(&s.lowat)), 4, 0)
	}
	return s
}

func (s *rawSock) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, err := s.rd.run(s.rc.Read, b, "read")
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// run runs o's callback on b through call (the RawConn's Read or Write)
// and returns the bytes moved and the error, as net.Conn reports it.
func (o *rawOp) run(call func(func(uintptr) bool) error, b []byte, op string) (int, error) {
	o.b, o.n, o.errno = b, 0, 0
	err := call(o.fn)
	n, errno := o.n, o.errno
	o.b = nil
	if err == nil && errno != 0 {
		err = &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, errno)}
	}
	return n, err
}

// read is the read's callback: false (EAGAIN) waits on the poller.
func (o *rawOp) read(fd uintptr) bool {
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&o.b[0])), uintptr(len(o.b)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		o.n, o.errno = int(r), e
		return true
	}
}

func (s *rawSock) Write(b []byte) (int, error) {
	return s.wr.run(s.rc.Write, b, "write")
}

// write is the write's callback: it writes until all of o.b is out;
// false (EAGAIN: the send queue is full) waits on the poller.
func (o *rawOp) write(fd uintptr) bool {
	for o.n < len(o.b) {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&o.b[o.n])), uintptr(len(o.b)-o.n))
		switch e {
		case 0:
			o.n += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			o.errno = e
			return true
		}
	}
	return true
}

// SetLowat sets the socket's SO_RCVLOWAT: the reader is woken only when
// that many bytes are queued (or the connection ends). Raising it and
// lowering it again are raw calls too; lowering it wakes a reader whose
// bytes are already there (the kernel's tcp_set_rcvlowat).
func (s *rawSock) SetLowat(n int) {
	s.lowat = int32(n)
	s.rc.Control(s.setLowat)
}

func setQuickAck(fd uintptr) {
	one := int32(1)
	syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, uintptr(unsafe.Pointer(&one)), 4, 0)
}
