package mqtt

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestBufConnHoldsWritesUntilRelease: held writes reach the peer only at
// release, in order and together; writes outside hold go out at once.
func TestBufConnHoldsWritesUntilRelease(t *testing.T) {
	client, server := tcpPair(t)
	c := newBufConn(client)
	c.hold()
	for _, p := range []string{"one,", "two,", "three,"} {
		if n, err := c.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	server.SetReadDeadline(time.Now()) // nothing may have arrived yet
	if n, err := server.Read(make([]byte, 64)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("peer read %d bytes (%v) before release", n, err)
	}
	c.release()
	if _, err := c.Write([]byte("four")); err != nil {
		t.Fatal(err)
	}
	server.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len("one,two,three,four"))
	if _, err := io.ReadFull(server, got); err != nil || string(got) != "one,two,three,four" {
		t.Fatalf("peer read %q, %v", got, err)
	}

	// Reads are buffered and return what arrived.
	if _, err := server.Write([]byte("@\x02\x00\x01@\x02\x00\x02")); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	for _, want := range []string{"@\x02\x00\x01", "@\x02\x00\x02"} {
		if _, err := io.ReadFull(c, ack); err != nil || string(ack) != want {
			t.Fatalf("read %q, %v; want %q", ack, err, want)
		}
	}
}

// failingConn is a connection whose writes fail and whose reads wait for
// Close, then fail as a closed net.Conn's do.
type failingConn struct {
	net.Conn
	closed   bool
	closedCh chan struct{}
}

var errWriteFailed = errors.New("write failed")

func newFailingConn() *failingConn { return &failingConn{closedCh: make(chan struct{})} }

func (f *failingConn) Read([]byte) (int, error)         { <-f.closedCh; return 0, net.ErrClosed }
func (f *failingConn) Write([]byte) (int, error)        { return 0, errWriteFailed }
func (f *failingConn) SetWriteDeadline(time.Time) error { return nil }
func (f *failingConn) Close() error                     { f.closed = true; close(f.closedCh); return nil }

// TestBufConnFailedReleaseClosesTheConnection: a release whose write fails
// closes the connection, so that paho sees the loss: the read paho has
// waiting fails with the write's error (not with the close's, which paho
// would take for its own and ignore), and so does every later write.
func TestBufConnFailedReleaseClosesTheConnection(t *testing.T) {
	f := newFailingConn()
	c := newBufConn(f)
	read := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		read <- err
	}()
	c.hold()
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatalf("held Write: %v", err)
	}
	c.release()
	if !f.closed {
		t.Error("connection not closed after the held write failed")
	}
	if err := <-read; !errors.Is(err, errWriteFailed) {
		t.Errorf("Read after the failure: %v, want %v", err, errWriteFailed)
	}
	if _, err := c.Write([]byte("next")); !errors.Is(err, errWriteFailed) {
		t.Errorf("Write after the failure: %v, want %v", err, errWriteFailed)
	}
	var nilConn *bufConn // a TLS or WebSocket connection: nothing to hold
	nilConn.hold()
	nilConn.release()
}
