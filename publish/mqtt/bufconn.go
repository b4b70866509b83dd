package mqtt

import (
	"bufio"
	"net"
	"sync"
	"time"
)

// lowatAfterIdle: a QoS 1 batch sent this long after the previous one was
// acknowledged has the reader woken once for its PUBACKs
// (releaseAwaitingAcks).
const lowatAfterIdle = 500 * time.Millisecond

// Sizes of a bufConn's buffers.
const (
	// readBufSize: a few dozen PUBACKs (4 bytes each) in one read.
	readBufSize = 512
	// maxHeld bounds what a bufConn holds back: beyond it, writes go out.
	maxHeld = 64 << 10
)

// packetPublish is the MQTT control packet type of PUBLISH, the high nibble
// of a packet's first byte.
const packetPublish = 3

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
// sends them in one call (release): a round of 8 readings is one segment
// instead of 8. paho hands each PUBLISH to a writer goroutine, which may not
// have taken the last messages of a batch when Publish is done issuing
// them, so Publish counts what it issues (expect) and, before releasing,
// lets the writer run until none is left unwritten. Writes outside
// hold/release go out at once, as before. A write held back reports
// success; if the write that sends it fails, the connection is closed, so
// that paho sees the loss on its next read or write and the batch is sent
// again. (A TLS connection buffers its reads itself and is not wrapped.)
type bufConn struct {
	net.Conn
	r  *bufio.Reader
	rs *rawSock // the socket, read and written with raw calls; nil: the Conn's own calls

	mu       sync.Mutex
	held     bool
	w        []byte    // held back
	pending  int       // PUBLISH packets expected and not yet written
	writes   int       // write calls on the connection, for tests
	heldPubs int       // QoS 1 PUBLISH packets in w
	ackBytes int       // PUBACK bytes still awaited under a raised SO_RCVLOWAT
	err      error     // of the failed write that closed the connection
	deadline time.Time // paho's write deadline
}

func newBufConn(conn net.Conn) *bufConn {
	c := &bufConn{Conn: conn, rs: newRawSockFor(conn)}
	c.r = bufio.NewReaderSize(connReader{c}, readBufSize)
	return c
}

// connReader is what the read buffer reads from.
type connReader struct{ c *bufConn }

func (r connReader) Read(b []byte) (int, error) {
	c := r.c
	if c.rs == nil {
		return c.Conn.Read(b)
	}
	n, err := c.rs.Read(b)
	c.mu.Lock()
	if c.ackBytes > 0 {
		c.ackBytes = max(0, c.ackBytes-n)
		if err != nil {
			c.ackBytes = 0
		}
		c.rs.SetLowat(max(1, c.ackBytes))
	}
	c.mu.Unlock()
	return n, err
}

// write writes b to the connection.
func (c *bufConn) write(b []byte) (int, error) {
	c.writes++
	if c.rs != nil {
		return c.rs.Write(b)
	}
	return c.Conn.Write(b)
}

// Read reads through the buffer. After a held write failed and closed the
// connection, it returns that write's error rather than the close's: paho
// takes "use of closed network connection" for a close of its own and ends
// its reader silently, and would notice the loss only at its next write.
func (c *bufConn) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if err != nil {
		c.mu.Lock()
		if c.err != nil {
			err = c.err
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *bufConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	// paho writes each packet in one call; its first byte is the type.
	if c.pending > 0 && len(b) > 0 && b[0]>>4 == packetPublish {
		c.pending--
	}
	if c.held && len(c.w)+len(b) <= maxHeld {
		c.w = append(c.w, b...)
		if len(b) > 0 && b[0]>>4 == packetPublish && b[0]>>1&3 == 1 {
			c.heldPubs++ // at QoS 1: a PUBACK will come
		}
		return len(b), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.write(b)
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
	c.pending = 0
	c.mu.Unlock()
}

// expect counts one more PUBLISH packet on its way to Write: call it before
// handing the message to paho. A nil c does nothing.
func (c *bufConn) expect() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.pending++
	c.mu.Unlock()
}

// unwritten returns how many of the PUBLISH packets expected since hold
// have not been written yet (a packet of another goroutine may be counted
// in their place: it makes the release early, never late). A nil c has
// none.
func (c *bufConn) unwritten() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending
}

// writeCalls returns how many write calls went to the connection.
func (c *bufConn) writeCalls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// release sends what was held back, within writeTimeout, and lets writes
// through again. A nil c does nothing.
func (c *bufConn) release() { c.releaseWith(false) }

// releaseAwaitingAcks is release for a QoS 1 batch: until the PUBACKs of
// the PUBLISH packets it sends (4 bytes each) have all arrived, the
// socket's SO_RCVLOWAT keeps the reader asleep.
//
// Why: the broker's PUBACKs for a batch arrive in several TCP segments
// (mosquitto leaves Nagle's algorithm on, so each of our ACKs releases the
// next few), and each segment woke the agent, for 4 bytes each. With the
// low-water mark the kernel still acknowledges each segment at once, and
// the agent wakes once, when the batch's acknowledgements are all there.
//
// Only after an idle spell (lowatAfterIdle): the kernel acknowledges
// small segments at once only in its quick-ACK mode, which it enters when
// data arrives after more than a retransmission timeout of silence
// (tcp_event_data_recv, tcp_incr_quickack; at least 200 ms). Between
// batches sent back to back, as in a backlog's drain, it delays the ACK of
// the first PUBACK by up to 40 ms, the broker holds the others back
// (Nagle) and, with the reader asleep, nobody asks for a quick ACK
// (quickack.go): each batch would stall 40 ms. Once a second, as readings
// come, the mark is used; back to back, the reader wakes per segment and
// asks for quick ACKs, as before.
//
// It can never leave the reader asleep for good: the mark is set before
// the packets are written, so their PUBACKs are all still to come, and it
// falls by every byte read (other packets' bytes only wake it sooner); a
// closed connection wakes the reader whatever the mark. Writes that went
// out before (a batch over maxHeld) are not counted: their PUBACKs only
// wake it sooner. A nil c, or one without raw I/O, is a plain release.
func (c *bufConn) releaseAwaitingAcks() { c.releaseWith(true) }

func (c *bufConn) releaseWith(awaitAcks bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = false
	if awaitAcks && c.rs != nil && c.heldPubs > 0 && c.err == nil {
		c.ackBytes += 4 * c.heldPubs
		c.rs.SetLowat(c.ackBytes)
	}
	c.flushLocked() // a failure closed the connection: paho sees it
}

// flushLocked sends what was held back, within writeTimeout; on failure it
// closes the connection and fails every later write.
func (c *bufConn) flushLocked() error {
	if len(c.w) == 0 {
		return nil
	}
	c.Conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.write(c.w)
	c.Conn.SetWriteDeadline(c.deadline)
	c.w = c.w[:0]
	c.heldPubs = 0
	if err != nil {
		c.err = err
		c.Conn.Close()
	}
	return err
}
