package ingest

import (
	"bytes"
	"io"
	"net"
	"testing"
)

// readerConn is a net.Conn that reads from r.
type readerConn struct {
	net.Conn
	r io.Reader
}

func (c readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// publish returns an MQTT PUBLISH packet (QoS 1 when id is not 0).
func publish(topic string, id uint16, payload []byte) []byte {
	vh := append([]byte{byte(len(topic) >> 8), byte(len(topic))}, topic...)
	h := byte(0x30)
	if id != 0 {
		vh = append(vh, byte(id>>8), byte(id))
		h |= 2
	}
	return append(appendRemaining([]byte{h}, len(vh)+len(payload)), append(vh, payload...)...)
}

// TestLimitConn: packets pass through byte for byte, a PUBLISH with a
// payload over the limit arrives with an empty payload, its packet id
// kept, and is reported once.
func TestLimitConn(t *testing.T) {
	pingresp := []byte{0xd0, 0}
	small := publish("a", 7, []byte("21.5"))
	big := publish("b", 8, bytes.Repeat([]byte("x"), 300)) // remaining length in two bytes
	atLimit := publish("c", 0, bytes.Repeat([]byte("y"), 100))
	in := bytes.Join([][]byte{small, pingresp, big, atLimit, small}, nil)
	var reported []string
	c := newLimitConn(readerConn{r: bytes.NewReader(in)}, 100, func(topic string, size int, retained bool) {
		reported = append(reported, topic)
		if size != 300 || retained {
			t.Errorf("reported %s: size %d, retained %v", topic, size, retained)
		}
	})
	got, err := io.ReadAll(iotest{c})
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Join([][]byte{small, pingresp, publish("b", 8, nil), atLimit, small}, nil)
	if !bytes.Equal(got, want) {
		t.Errorf("got  %x\nwant %x", got, want)
	}
	if len(reported) != 1 || reported[0] != "b" {
		t.Errorf("reported %v, want [b]", reported)
	}
}

// iotest reads through c in small, odd pieces, as a client might.
type iotest struct{ c *limitConn }

func (r iotest) Read(p []byte) (int, error) { return r.c.Read(p[:min(len(p), 7)]) }

// FuzzLimitConn: no byte stream makes the connection panic; under a limit
// no packet reaches, what comes out is a prefix of what went in.
func FuzzLimitConn(f *testing.F) {
	f.Add(publish("a", 1, []byte("21.5")), 2)
	f.Add(bytes.Join([][]byte{publish("b", 0, bytes.Repeat([]byte("x"), 200)), {0xd0, 0}}, nil), 10)
	f.Add([]byte{0x32, 0xff, 0xff, 0xff, 0xff}, 1)
	f.Add([]byte{0x32, 0x03, 0x00, 0x05, 'a'}, 0)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max < 0 {
			max = -max
		}
		c := newLimitConn(readerConn{r: bytes.NewReader(in)}, max, func(string, int, bool) {})
		got, _ := io.ReadAll(iotest{c})
		if max >= len(in) && !bytes.HasPrefix(in, got) {
			t.Fatalf("under a limit of %d, %x came out of %x", max, got, in)
		}
	})
}
