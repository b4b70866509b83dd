package mqtt

import (
	"crypto/tls"
	"net"
	"net/url"
	"syscall"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"
)

// Why quick ACKs: mosquitto leaves Nagle's algorithm on by default
// (set_tcp_nodelay false), so it holds back a PUBACK while an earlier one is
// unacknowledged; our kernel, having nothing to send once a batch is out,
// delays that acknowledgement by up to 40 ms. Every batch then ended with a
// 40 ms stall, halving the drain rate. Asking the kernel for a quick ACK
// while we wait for the tail of a batch lets the broker's PUBACKs flow.

// openConn is paho's connection opener for tcp://, mqtt:// (through a
// proxy from the environment, as paho does) and, with useTLS, the TLS
// schemes; it keeps the TCP socket for quickAck. WebSocket connections
// are left to paho.
func (c *Client) openConn(dialer *net.Dialer, useTLS bool) paho.OpenConnectionFunc {
	return func(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
		if useTLS {
			tc, err := tls.DialWithDialer(dialer, "tcp", uri.Host, o.TLSConfig)
			if err != nil {
				return nil, err
			}
			c.keepSocket(tc.NetConn())
			c.conn.Store(nil)
			return &alertConn{Conn: tc}, nil
		}
		conn, err := proxy.FromEnvironmentUsing(dialer).Dial("tcp", uri.Host)
		if err != nil {
			return nil, err
		}
		c.keepSocket(conn)
		bc := newBufConn(conn)
		c.conn.Store(bc)
		return bc, nil
	}
}

// socket is the raw socket of the current connection.
type socket struct{ rc syscall.RawConn }

func (c *Client) keepSocket(conn net.Conn) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		c.sock.Store(nil)
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		c.sock.Store(nil)
		return
	}
	c.sock.Store(&socket{rc})
}

// quickAck asks the kernel to acknowledge what the broker sent at once
// rather than delaying it. A closed connection makes it a no-op.
func (c *Client) quickAck() {
	if s := c.sock.Load(); s != nil {
		s.rc.Control(setQuickAck)
	}
}
