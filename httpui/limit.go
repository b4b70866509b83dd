package httpui

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// limitListener caps the connections a listener hands out: max at once
// overall and perAddr from one client address. A connection over either
// cap is closed as soon as it is accepted, so a flood from one address
// cannot take the file descriptors and memory the LAN's other clients
// need. The counts drop when a connection is closed, also one hijacked by
// a websocket.
type limitListener struct {
	net.Listener
	max, perAddr int

	refused atomic.Uint64
	mu      sync.Mutex
	total   int
	byAddr  map[netip.Addr]int
}

func newLimitListener(l net.Listener, max, perAddr int) *limitListener {
	return &limitListener{Listener: l, max: max, perAddr: perAddr, byAddr: make(map[netip.Addr]int)}
}

// Accept returns the next connection within the caps.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		var addr netip.Addr
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			addr = ta.AddrPort().Addr().Unmap()
		}
		l.mu.Lock()
		if l.total >= l.max || l.byAddr[addr] >= l.perAddr {
			l.mu.Unlock()
			l.refused.Add(1)
			c.Close()
			continue
		}
		l.total++
		l.byAddr[addr]++
		l.mu.Unlock()
		return &limitConn{Conn: c, l: l, addr: addr}, nil
	}
}

// open returns the number of connections handed out and not yet closed.
func (l *limitListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func (l *limitListener) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byAddr[addr]--; l.byAddr[addr] <= 0 {
		delete(l.byAddr, addr)
	}
}

// limitConn gives its slot back when closed, once.
type limitConn struct {
	net.Conn
	l    *limitListener
	addr netip.Addr
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.addr) })
	return err
}
