package httpui

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

// rawHandshake opens a websocket by hand on a raw connection that then
// never reads, never answers a ping.
func rawHandshake(t *testing.T, addr string) net.Conn {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	fmt.Fprintf(raw, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	resp, err := http.ReadResponse(bufio.NewReader(raw), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	return raw
}

// closedByServer reports whether the server closes c (EOF or a reset
// after whatever it answered) within 10 s.
func closedByServer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

// TestWebsocketIdleDropped: websocket clients that never read (nor answer
// pings) lose their max_clients slot after a ping timeout, so the next
// viewer gets in; a client that reads stays connected through pings and
// past the server's request read timeout (issue 15, item 7).
func TestWebsocketIdleDropped(t *testing.T) {
	s := New(Config{MaxClients: 3}, nil, nil, nil)
	s.pingInterval, s.pingTimeout, s.readTimeout = 50*time.Millisecond, time.Second, 100*time.Millisecond
	addr := serve(t, s, nil)
	healthy := receiver(t, dial(t, addr, nil))
	rawHandshake(t, addr)
	rawHandshake(t, addr) // every slot taken
	testenv.WaitFor(t, "the idle clients to be dropped", func() bool { return s.handlers() == 1 })
	if n := s.wsPingDrops.Load(); n != 2 {
		t.Errorf("%d clients dropped for pings, want 2", n)
	}
	// The healthy client is still there, past pings and the read timeout,
	// and the two slots are free again.
	r := rd("air", reading.Temperature, 1, 20, 0)
	s.Publish(r)
	expect(t, healthy, jsonOf(r))
	dial(t, addr, nil)
	dial(t, addr, nil)
}

// TestSlowBodyTimedOut: a client that trickles a request body is cut off
// at the read timeout, on ingest and elsewhere (issue 15, item 7).
func TestSlowBodyTimedOut(t *testing.T) {
	s := New(Config{}, nil, nil, nil)
	recordIngest(s)
	s.readTimeout = 200 * time.Millisecond
	addr := serve(t, s, nil)
	for _, p := range []string{"/api/ingest", "/api/status"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nt", p, addr)
		if !closedByServer(c) {
			t.Errorf("POST %s with a stalled body: still open after 10 s", p)
		}
	}
}

// TestConnectionLimits: connections over http.max_connections_per_address
// from one address, or over http.max_connections in all, are closed at
// once; a freed slot is reused; and 100 trickling POSTs from one address
// hold at most the per-address cap, each only until the read timeout
// (issue 15, item 7).
func TestConnectionLimits(t *testing.T) {
	for _, tc := range []struct {
		name            string
		total, per, cap int
	}{
		{"per address", 100, 4, 4},
		{"overall", 3, 100, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{MaxClients: 2, MaxConnections: tc.total, MaxConnectionsPerAddress: tc.per}, nil, nil, nil)
			addr := serve(t, s, nil)
			var conns []net.Conn
			for range tc.cap {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				conns = append(conns, c)
			}
			ll := s.listener.Load()
			testenv.WaitFor(t, "the connections to be accepted", func() bool { return ll.open() == tc.cap })
			extra, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer extra.Close()
			if !closedByServer(extra) || ll.refused.Load() != 1 {
				t.Fatalf("a connection over the cap of %d: not closed (refused %d)", tc.cap, ll.refused.Load())
			}
			conns[0].Close()
			testenv.WaitFor(t, "the slot to be freed", func() bool { return ll.open() == tc.cap-1 })
			resp, err := http.Get("http://" + addr + "/healthz")
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET /healthz in the freed slot: %v %v", resp, err)
			}
			resp.Body.Close()
		})
	}

	t.Run("trickling posts", func(t *testing.T) {
		s := New(Config{}, nil, nil, nil)
		recordIngest(s)
		s.readTimeout = 500 * time.Millisecond
		addr := serve(t, s, nil)
		const n = 100
		for range n {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "POST /api/ingest HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000\r\n\r\nt", addr)
		}
		ll := s.listener.Load()
		testenv.WaitFor(t, "the connections over the cap to be refused", func() bool {
			return ll.refused.Load() == n-DefaultMaxConnectionsPerAddress
		})
		if got := ll.open(); got > DefaultMaxConnectionsPerAddress {
			t.Errorf("%d connections open, want at most %d", got, DefaultMaxConnectionsPerAddress)
		}
		testenv.WaitFor(t, "the stalled requests to time out", func() bool { return ll.open() == 0 })
		if body := get(t, s, "/metrics").Body.String(); !strings.Contains(body, fmt.Sprintf("kelvin_http_connections_refused_total %d\n", n-DefaultMaxConnectionsPerAddress)) {
			t.Errorf("/metrics does not count the refused connections")
		}
	})
}
