package mqtt

import (
	"bufio"
	"net"
	"sync"
	"time"
)

// Sizes of a bufConn's buffers.
const (
	// readBufSize: a few dozen PUBACKs (4 bytes each) in one read.
	readBufSize = 512
	// maxHeld bounds what a bufConn holds back: beyond it, writes go out.
	maxHeld = 64 << 10
)

// bufConn is a plain TCP connection to the broker with a read buffer and
// writes that can be held back and sent together.
//
// Reads: paho reads each packet's fixed header a byte at a time and then
// its body, with no buffer of its own: three read calls per PUBACK, plus a
// fourth that finds nothing and parks on the poller. Buffered, one read
// takes every PUBACK that has arrived.
//
// Writes: paho writes each PUBLISH with a write call of its own, and on
// loopback or a LAN each one is a TCP segment that both ends process. While
// Client.Publish issues a batch it holds the writes back (hold) and then
// sends them in one call (release): a round of 8 readings is one or two
// segments instead of 8. Writes outside hold/release go out at once, as
// before. A write held back reports success; if the write that sends it
// fails, the connection is closed, so that paho sees the loss on its next
// read or write and the batch is sent again. (A TLS connection buffers its
// reads itself and is not wrapped.)
type bufConn struct {
	net.Conn
	r *bufio.Reader

	mu       sync.Mutex
	held     bool
	w        []byte    // held back
	err      error     // of the failed write that closed the connection
	deadline time.Time // paho's write deadline
}

func newBufConn(conn net.Conn) *bufConn {
	return &bufConn{Conn: conn, r: bufio.NewReaderSize(conn, readBufSize)}
}

func (c *bufConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func (c *bufConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.held && len(c.w)+len(b) <= maxHeld {
		c.w = append(c.w, b...)
		return len(b), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// SetWriteDeadline and SetDeadline take the lock, so that paho's deadline
// never changes under a release's write (which sets its own).
func (c *bufConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return c.Conn.SetWriteDeadline(t)
}

func (c *bufConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return c.Conn.SetDeadline(t)
}

// hold holds writes back until release. A nil c does nothing.
func (c *bufConn) hold() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

// release sends what was held back, within writeTimeout, and lets writes
// through again. A nil c does nothing.
func (c *bufConn) release() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = false
	c.flushLocked() // a failure closed the connection: paho sees it
}

// flushLocked sends what was held back, within writeTimeout; on failure it
// closes the connection and fails every later write.
func (c *bufConn) flushLocked() error {
	if len(c.w) == 0 {
		return nil
	}
	c.Conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.Conn.Write(c.w)
	c.Conn.SetWriteDeadline(c.deadline)
	c.w = c.w[:0]
	if err != nil {
		c.err = err
		c.Conn.Close()
	}
	return err
}
