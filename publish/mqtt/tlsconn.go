package mqtt

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"
)

// alertProbeTimeout bounds the read of a broker's TLS alert after a failed
// write.
const alertProbeTimeout = time.Second

// alertConn makes a broker's refusal of the client certificate readable.
//
// With TLS 1.3 the client's handshake is over before the broker checks the
// client certificate; a broker that refuses it sends an alert and closes the
// connection, and the client's first write (the MQTT CONNECT) fails with
// "connection reset by peer". The alert is still in the receive buffer: when
// a write fails before anything was read (that is, during the MQTT
// handshake, which paho runs in one goroutine), alertConn reads it and adds
// it to the error: "...: connection reset by peer (broker: remote error:
// tls: certificate required)".
type alertConn struct {
	*tls.Conn
	hasRead atomic.Bool
}

func (c *alertConn) Read(b []byte) (int, error) {
	c.hasRead.Store(true)
	return c.Conn.Read(b)
}

func (c *alertConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err == nil || c.hasRead.Swap(true) {
		return n, err
	}
	c.Conn.SetReadDeadline(time.Now().Add(alertProbeTimeout))
	_, rerr := c.Conn.Read(make([]byte, 1))
	c.Conn.SetReadDeadline(time.Time{})
	var op *net.OpError
	if errors.As(rerr, &op) && op.Op == "remote error" {
		return n, fmt.Errorf("%w (broker: %v)", err, rerr)
	}
	return n, err
}
