package httpui

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

var t0 = time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)

// rd returns a reading of sensor/quantity with the given seq, value and
// time offset from t0.
func rd(sensor, quantity string, seq uint64, value float64, at time.Duration) reading.Reading {
	return reading.Reading{
		Agent: "greenhouse-1", Sensor: sensor, Quantity: quantity,
		Value: value, Raw: value + 0.25, Unit: reading.UnitOf(quantity),
		Time: t0.Add(at), Seq: seq,
	}
}

// jsonOf returns r in its wire form.
func jsonOf(r reading.Reading) string { return string(r.AppendJSON(nil)) }

// clock is a settable clock for tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// serve runs s.Serve on a loopback listener (wrapped by wrap when not nil)
// until the test ends, and returns the listener's address.
func serve(t testing.TB, s *Server, wrap func(net.Listener) net.Listener) string {
	t.Helper()
	addr, cancel, done := startServe(t, s, wrap)
	t.Cleanup(func() {
		cancel()
		testenv.WaitReturn(t, "Serve", done)
	})
	return addr
}

// startServe runs s.Serve on a loopback listener (wrapped by wrap when not
// nil) and returns the listener's address, the cancel that begins the
// shutdown and the channel Serve returns on: for tests of the shutdown.
func startServe(t testing.TB, s *Server, wrap func(net.Listener) net.Listener) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if wrap != nil {
		l = wrap(l)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	return addr, cancel, done
}

// smallBuffers shrinks the kernel send buffer of every accepted
// connection, so that a client that stops reading stalls the server's
// writes quickly.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// handlers returns the number of /ws handlers running.
func (s *Server) handlers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
