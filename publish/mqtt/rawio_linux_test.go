//go:build linux && !386

package mqtt

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// TestRawIO: a rawSock's Write and Read move bytes as net.Conn does, waiting on
// the poller when the socket's queue is full or empty, and report the end
// of the connection, a passed deadline and a closed socket as it does.
func TestRawIO(t *testing.T) {
	client, server := tcpPair(t)
	rs := newRawSockFor(client)
	// More than the socket buffers hold: the write must wait on the poller.
	out := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	got := make(chan []byte, 1)
	go func() {
		server.SetReadDeadline(time.Now().Add(time.Minute))
		b, _ := io.ReadAll(io.LimitReader(server, int64(len(out))))
		got <- b
	}()
	if n, err := rs.Write(out); n != len(out) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if b := <-got; !bytes.Equal(b, out) {
		t.Fatalf("peer read %d bytes, not what was written", len(b))
	}

	server.Write([]byte("pong"))
	b := make([]byte, 16)
	if n, err := rs.Read(b); err != nil || string(b[:n]) != "pong" {
		t.Fatalf("Read = %q, %v", b[:n], err)
	}
	client.SetReadDeadline(time.Now())
	if _, err := rs.Read(b); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read after the deadline: %v", err)
	}
	client.SetReadDeadline(time.Time{})
	server.Close()
	if _, err := rs.Read(b); err != io.EOF {
		t.Fatalf("Read after the peer closed: %v, want EOF", err)
	}
	client.Close()
	if _, err := rs.Read(b); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if _, err := rs.Write(out[:1]); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
}

// TestBufConnWakesOnceForTheBatchsAcks: a QoS 1 batch raises the socket's
// low-water mark to its PUBACKs' bytes, so the kernel reports the socket
// readable only when all of them are there, and reading them lowers it
// again. QoS 0 packets are not counted (no PUBACK comes for them), and a
// closed connection wakes the reader whatever the mark.
func TestBufConnWakesOnceForTheBatchsAcks(t *testing.T) {
	client, server := tcpPair(t)
	c := newBufConn(client)
	fd := sockFD(t, client)

	c.hold()
	for _, first := range []byte{0x32, 0x30, 0x32} { // QoS 1, QoS 0, QoS 1
		c.Write([]byte{first, 2, 0, 1})
	}
	c.releaseAwaitingAcks()
	if got := lowat(t, fd); got != 8 {
		t.Fatalf("SO_RCVLOWAT after a batch of two QoS 1 messages = %d, want 8", got)
	}
	server.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(server, make([]byte, 12)); err != nil {
		t.Fatal(err)
	}

	server.Write([]byte("@\x02\x00\x01"))
	testenv.WaitFor(t, "the first PUBACK queued", func() bool { return queued(t, fd) == 4 })
	if readable(t, fd) {
		t.Fatal("readable with one PUBACK of two queued")
	}
	server.Write([]byte("@\x02\x00\x02"))
	testenv.WaitFor(t, "both PUBACKs queued", func() bool { return queued(t, fd) == 8 })
	if !readable(t, fd) {
		t.Fatal("not readable with both PUBACKs queued")
	}
	acks := make([]byte, 8)
	if _, err := io.ReadFull(c, acks); err != nil || string(acks) != "@\x02\x00\x01@\x02\x00\x02" {
		t.Fatalf("read %q, %v", acks, err)
	}
	if got := lowat(t, fd); got != 1 {
		t.Fatalf("SO_RCVLOWAT after the PUBACKs were read = %d, want 1", got)
	}

	// QoS 0 only: no PUBACK is awaited.
	c.hold()
	c.Write([]byte{0x30, 2, 0, 1})
	c.releaseAwaitingAcks()
	if got := lowat(t, fd); got != 1 {
		t.Fatalf("SO_RCVLOWAT after a QoS 0 batch = %d, want 1", got)
	}

	// A broker that answers one of two and closes: the reader gets the
	// one, then the end.
	c.hold()
	c.Write([]byte{0x32, 2, 0, 3})
	c.Write([]byte{0x32, 2, 0, 4})
	c.releaseAwaitingAcks()
	if _, err := io.ReadFull(server, make([]byte, 12)); err != nil { // both batches
		t.Fatal(err)
	}
	server.Write([]byte("@\x02\x00\x03"))
	server.Close()
	done := make(chan error, 1)
	go func() {
		if _, err := io.ReadFull(c, acks[:4]); err != nil {
			done <- err
			return
		}
		_, err := c.Read(acks)
		done <- err
	}()
	select {
	case err := <-done:
		if err != io.EOF {
			t.Fatalf("read after the broker closed: %v, want EOF", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the reader was left asleep after the broker closed")
	}
}

func sockFD(t *testing.T, conn net.Conn) (fd uintptr) {
	t.Helper()
	rc, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(f uintptr) { fd = f })
	return fd
}

func lowat(t *testing.T, fd uintptr) int {
	t.Helper()
	v, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// queued returns the bytes in the socket's receive queue (FIONREAD).
func queued(t *testing.T, fd uintptr) int {
	t.Helper()
	var n int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatal(e)
	}
	return int(n)
}

// readable asks the kernel, without waiting, whether a reader of fd would
// be woken (ppoll with a zero timeout).
func readable(t *testing.T, fd uintptr) bool {
	t.Helper()
	pfd := struct {
		fd             int32
		events, revent int16
	}{fd: int32(fd), events: 0x1} // POLLIN
	var zero syscall.Timespec
	n, _, e := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(&zero)), 0, 0, 0)
	if e != 0 {
		t.Fatal(e)
	}
	return n == 1 && pfd.revent&0x1 != 0
}

// TestRawSockAllocatesNothing: a read and a write that need no wait
// allocate nothing (their callbacks are made once per socket).
func TestRawSockAllocatesNothing(t *testing.T) {
	client, server := tcpPair(t)
	rs := newRawSockFor(client)
	out, in, peer := []byte("@\x02\x00\x01"), make([]byte, 4), make([]byte, 4)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := rs.Write(out); err != nil {
			t.Fatal(err)
		}
		io.ReadFull(server, peer)
		server.Write(peer)
		if _, err := io.ReadFull(rs, in); err != nil {
			t.Fatal(err)
		}
		rs.SetLowat(1)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per write, read and SetLowat, want 0", allocs)
	}
}
