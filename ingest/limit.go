package ingest

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"
)

// ErrTooLarge is an MQTT payload larger than SubscriberConfig.MaxPayload.
var ErrTooLarge = errors.New("payload too large")

// DefaultMaxPayload is the default of SubscriberConfig.MaxPayload, in
// bytes: far above what a sensor publishes (a Tasmota telemetry message is
// a few hundred bytes), far below what strains a Pi's memory.
const DefaultMaxPayload = 64 << 10

// limitConn is the subscriber's connection to its broker. It passes every
// MQTT packet through unchanged, except a PUBLISH whose payload is larger
// than max: it discards that payload as it arrives, in the bufio.Reader's
// pieces, reports it to oversize and hands the client the PUBLISH with an
// empty payload, which the client acknowledges as usual. So a payload over
// the limit is never held in memory, whatever the broker lets through.
type limitConn struct {
	net.Conn
	br       *bufio.Reader
	max      int
	oversize func(topic string, size int, retained bool)

	out  []byte // what is left of the current packet's header to hand out
	body int    // bytes of the current packet still to pass through from br
}

func newLimitConn(c net.Conn, max int, oversize func(topic string, size int, retained bool)) *limitConn {
	return &limitConn{Conn: c, br: bufio.NewReaderSize(c, 16<<10), max: max, oversize: oversize}
}

// Read implements net.Conn for the client's one reading goroutine.
func (c *limitConn) Read(p []byte) (int, error) {
	for {
		if len(c.out) > 0 {
			n := copy(p, c.out)
			c.out = c.out[n:]
			return n, nil
		}
		if c.body > 0 {
			n, err := c.br.Read(p[:min(len(p), c.body)])
			c.body -= n
			return n, err
		}
		if err := c.next(); err != nil {
			return 0, err
		}
	}
}

// next reads the fixed header of the next packet and, for a PUBLISH that
// may be over the limit, its variable header; it sets out and body.
func (c *limitConn) next() error {
	h, err := c.br.ReadByte()
	if err != nil {
		return err
	}
	c.out = append(c.out[:0], h)
	n, err := c.readRemaining()
	if err != nil {
		return err
	}
	c.body = n
	if h>>4 != 3 || n <= c.max { // not a PUBLISH, or small enough
		return nil
	}
	vh := make([]byte, 2, 2+64)
	if _, err := io.ReadFull(c.br, vh); err != nil {
		return err
	}
	vhLen := 2 + int(binary.BigEndian.Uint16(vh))
	if h>>1&3 != 0 { // QoS 1 or 2: a packet id follows the topic
		vhLen += 2
	}
	if vhLen > n {
		return fmt.Errorf("mqtt input: malformed PUBLISH: a header of %d bytes in a packet of %d", vhLen, n)
	}
	hdr := c.out // the fixed header as it came
	vh = append(vh, make([]byte, vhLen-2)...)
	if _, err := io.ReadFull(c.br, vh[2:]); err != nil {
		return err
	}
	size := n - vhLen
	if size <= c.max {
		c.out = append(hdr, vh...)
		c.body = size
		return nil
	}
	if _, err := io.CopyN(io.Discard, c.br, int64(size)); err != nil {
		return err
	}
	topic := string(vh[2 : 2+int(binary.BigEndian.Uint16(vh))])
	c.oversize(topic, size, h&1 != 0)
	c.out = append(appendRemaining(append(c.out[:0], h), vhLen), vh...)
	c.body = 0
	return nil
}

// readRemaining reads an MQTT remaining length (1 to 4 bytes, 7 bits each,
// least significant first) and appends its bytes, as they came, to out.
func (c *limitConn) readRemaining() (int, error) {
	n := 0
	for i := 0; i < 4; i++ {
		b, err := c.br.ReadByte()
		if err != nil {
			return 0, err
		}
		c.out = append(c.out, b)
		n |= int(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			return n, nil
		}
	}
	return 0, errors.New("mqtt input: malformed remaining length")
}

func appendRemaining(b []byte, n int) []byte {
	for {
		d := byte(n & 0x7f)
		n >>= 7
		if n == 0 {
			return append(b, d)
		}
		b = append(b, d|0x80)
	}
}

// dial opens the connection to the broker as the client would itself
// (tcp and mqtt through $ALL_PROXY when set, ssl, tls and mqtts, ws and
// wss) and wraps it in a limitConn.
func (s *Subscriber) dial(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	d := o.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: o.ConnectTimeout}
	}
	var c net.Conn
	var err error
	switch uri.Scheme {
	case "ws", "wss":
		u := *uri
		u.User = nil
		var tlsc *tls.Config
		if uri.Scheme == "wss" {
			tlsc = o.TLSConfig
		}
		c, err = paho.NewWebsocket(u.String(), tlsc, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
	case "ssl", "tls", "mqtts":
		c, err = tls.DialWithDialer(d, "tcp", uri.Host, o.TLSConfig)
	case "tcp", "mqtt":
		c, err = proxy.FromEnvironmentUsing(d).Dial("tcp", uri.Host)
	default:
		err = fmt.Errorf("unknown scheme %q", uri.Scheme)
	}
	if err != nil {
		return nil, err
	}
	return newLimitConn(c, s.cfg.MaxPayload, s.tooLarge), nil
}
