package httpui

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

// dial opens a websocket client to the server at addr.
func dial(t *testing.T, addr string, hdr http.Header) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", addr, err, code)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// dialStatus tries to open a websocket and returns the HTTP status of the
// handshake's answer.
func dialStatus(t *testing.T, addr string, hdr http.Header) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPHeader: hdr})
	if err == nil {
		c.CloseNow()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return resp.StatusCode
}

// receiver reads every message of c into a channel until c fails.
func receiver(t *testing.T, c *websocket.Conn) <-chan string {
	t.Helper()
	ch := make(chan string, 20000)
	go func() {
		defer close(ch)
		for {
			typ, msg, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if typ != websocket.MessageText {
				t.Errorf("message type %v, want text", typ)
			}
			ch <- string(msg)
		}
	}()
	return ch
}

// expect receives the next message from ch and compares it with want.
func expect(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	select {
	case got, ok := <-ch:
		if !ok {
			t.Fatalf("connection ended, want %s", want)
		}
		if got != want {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no message within 10s, want %s", want)
	}
}

func TestWebsocketInOrder(t *testing.T) {
	s := New(Config{}, nil, nil, nil)
	addr := serve(t, s, nil)
	c := dial(t, addr, nil)
	// The client joins the hub before its handshake completes.
	if n := s.Clients(); n != 1 {
		t.Fatalf("Clients() = %d after dial, want 1", n)
	}
	ch := receiver(t, c)
	seq := uint64(0)
	for range 5 { // windows smaller than the client queue
		var sent []reading.Reading
		for range 40 {
			seq++
			r := rd("air", reading.Temperature, seq, 20+float64(seq)/100, time.Duration(seq)*time.Second)
			sent = append(sent, r)
			s.Publish(r)
		}
		for _, r := range sent {
			expect(t, ch, jsonOf(r))
		}
	}
	c.Close(websocket.StatusNormalClosure, "bye")
	testenv.WaitFor(t, "the client to be gone", func() bool { return s.Clients() == 0 && s.handlers() == 0 })
}

// TestWebsocketStalledClient connects a client that never reads: its
// writes stall, it is dropped within the write timeout and its connection
// closed, while a second client receives every reading and Publish never
// waits.
func TestWebsocketStalledClient(t *testing.T) {
	s := New(Config{}, nil, nil, nil)
	s.writeTimeout = 300 * time.Millisecond // tear the stalled one down quickly
	addr := serve(t, s, func(l net.Listener) net.Listener { return smallBuffers{l} })

	// The stalled client: a raw TCP connection with a tiny receive buffer
	// that does the handshake by hand and then never reads.
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(raw, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	br := bufio.NewReader(raw)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}

	normal := dial(t, addr, nil)
	ch := receiver(t, normal)
	if n := s.Clients(); n != 2 {
		t.Fatalf("Clients() = %d, want 2", n)
	}

	// Big readings, so the stalled connection's buffers fill fast.
	agent := strings.Repeat("g", 1000)
	const total, window = 10000, 32
	dropped := 0
	start := time.Now()
	var sent []reading.Reading
	for i := 1; i <= total; i++ {
		r := rd("air", reading.Temperature, uint64(i), 20, time.Duration(i)*time.Millisecond)
		r.Agent = agent
		s.Publish(r)
		sent = append(sent, r)
		if i%window == 0 || i == total {
			// Pace on the normal client only (so it never lags a full
			// queue behind); the stalled one holds nothing up.
			for _, r := range sent {
				expect(t, ch, jsonOf(r))
			}
			sent = sent[:0]
		}
		if dropped == 0 && s.Clients() == 1 {
			dropped = i
		}
	}
	// It is dropped within the write timeout of its writes stalling.
	testenv.WaitFor(t, "the stalled client to be dropped", func() bool { return s.Clients() == 1 })
	t.Logf("stalled client dropped after %d readings; %d published in %v", dropped, total, time.Since(start))
	if n := s.Clients(); n != 1 {
		t.Errorf("Clients() = %d, want 1", n)
	}
	// Its connection is closed within the write timeout: reading what the
	// buffers hold ends in EOF or a reset.
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, br); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("stalled connection: %v, want it closed by the server", err)
	}
	testenv.WaitFor(t, "the stalled handler to end", func() bool { return s.handlers() == 1 })
	t.Logf("torn down after %v", time.Since(start))
}

// TestWebsocketBurst: a burst far beyond the old per-client queue of 64
// (an ingest batch of 70, then 5,000 readings at once) reaches every
// client whole and in order, and disconnects none (issue 15, item 6).
func TestWebsocketBurst(t *testing.T) {
	s := New(Config{}, nil, nil, nil)
	addr := serve(t, s, nil)
	var chans []<-chan string
	for range 3 {
		chans = append(chans, receiver(t, dial(t, addr, nil)))
	}
	seq := uint64(0)
	for _, burst := range []int{70, 5000} {
		var sent []reading.Reading
		for range burst {
			seq++
			r := rd("air", reading.Temperature, seq, 20, time.Duration(seq)*time.Millisecond)
			sent = append(sent, r)
			s.Publish(r)
		}
		for _, ch := range chans {
			for _, r := range sent {
				expect(t, ch, jsonOf(r))
			}
		}
		if n := s.Clients(); n != 3 {
			t.Fatalf("after a burst of %d: %d clients, want 3", burst, n)
		}
	}
	if n := s.wsSkipped.Load(); n != 0 {
		t.Errorf("%d readings skipped, want none", n)
	}
}

// TestWebsocketSlowClientSkips: a client that falls further behind than
// the hub holds is not disconnected: it gets the readings it can, then
// {"skipped":N} for the ones it missed, then the rest; every reading is
// either received or counted as skipped (issue 15, item 6).
func TestWebsocketSlowClientSkips(t *testing.T) {
	s := New(Config{}, nil, nil, nil)
	s.hubBytes = 16 << 10
	addr := serve(t, s, func(l net.Listener) net.Listener { return smallBuffers{l} })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A client with a tiny receive buffer that does not read for a while.
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			c.(*net.TCPConn).SetReadBuffer(4096)
		}
		return c, err
	}}
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	const total = 2000
	for i := 1; i <= total; i++ {
		r := rd("air", reading.Temperature, uint64(i), 20, time.Duration(i)*time.Millisecond)
		r.Agent = strings.Repeat("g", 200)
		s.Publish(r)
	}
	s.Publish(rd("air", reading.Temperature, total+1, 20, time.Hour)) // the last one
	got, skipped, notices := 0, 0, 0
	last := uint64(0)
	for last != total+1 {
		_, msg, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("after %d readings and %d skipped: %v", got, skipped, err)
		}
		var m struct {
			Skipped *int
			Seq     uint64
		}
		if err := json.Unmarshal(msg, &m); err != nil {
			t.Fatalf("message %s: %v", msg, err)
		}
		if m.Skipped != nil {
			skipped += *m.Skipped
			notices++
			continue
		}
		if m.Seq <= last {
			t.Fatalf("reading %d after %d", m.Seq, last)
		}
		got++
		last = m.Seq
	}
	t.Logf("received %d, skipped %d in %d notices", got, skipped, notices)
	if notices == 0 || got+skipped != total+1 {
		t.Errorf("received %d and skipped %d (%d notices), want %d in all with some skipped", got, skipped, notices, total+1)
	}
	if n := s.wsSkipped.Load(); int(n) != skipped {
		t.Errorf("wsSkipped = %d, want %d", n, skipped)
	}
	// Still connected: the next reading arrives.
	r := rd("air", reading.Temperature, total+2, 21, time.Hour+time.Second)
	s.Publish(r)
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != jsonOf(r) {
		t.Fatalf("after catching up: %s %v", msg, err)
	}
}

func TestWebsocketMaxClients(t *testing.T) {
	s := New(Config{MaxClients: 2}, nil, nil, nil)
	addr := serve(t, s, nil)
	a := dial(t, addr, nil)
	dial(t, addr, nil)
	if code := dialStatus(t, addr, nil); code != http.StatusServiceUnavailable {
		t.Fatalf("third client: HTTP %d, want 503", code)
	}
	a.Close(websocket.StatusNormalClosure, "")
	testenv.WaitFor(t, "a slot to free up", func() bool { return s.handlers() == 1 })
	dial(t, addr, nil)
}

func TestWebsocketOrigin(t *testing.T) {
	s := New(Config{AllowedOrigins: []string{"dash.example.com", "https://*.example.org"}}, nil, nil, nil)
	addr := serve(t, s, nil)
	for _, tc := range []struct {
		origin string
		want   int
	}{
		{"", http.StatusSwitchingProtocols}, // not a browser
		{"http://" + addr, http.StatusSwitchingProtocols},
		{"http://evil.example.net", http.StatusForbidden},
		{"http://dash.example.com", http.StatusSwitchingProtocols},
		{"https://a.example.org", http.StatusSwitchingProtocols},
		{"http://a.example.org", http.StatusForbidden},
	} {
		hdr := http.Header{}
		if tc.origin != "" {
			hdr.Set("Origin", tc.origin)
		}
		if got := dialStatus(t, addr, hdr); got != tc.want {
			t.Errorf("Origin %q: HTTP %d, want %d", tc.origin, got, tc.want)
		}
	}
	testenv.WaitFor(t, "the handlers to end", func() bool { return s.handlers() == 0 })
}

// TestWebsocketClientMessages: what a client sends is read and discarded;
// more than 1 KiB in one message closes the connection.
func TestWebsocketClientMessages(t *testing.T) {
	s := New(Config{}, nil, nil, nil)
	addr := serve(t, s, nil)
	c := dial(t, addr, nil)
	ctx := context.Background()
	if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	r := rd("air", reading.Temperature, 1, 20, 0)
	s.Publish(r)
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != jsonOf(r) {
		t.Fatalf("read: %q %v", msg, err)
	}
	// From now on one goroutine reads: it drives the pong and sees the end.
	end := make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.Read(ctx); err != nil {
				end <- err
				return
			}
		}
	}()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Ping(pctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	c.Write(ctx, websocket.MessageBinary, make([]byte, 2000))
	select {
	case err := <-end:
		if got := websocket.CloseStatus(err); got != websocket.StatusMessageTooBig {
			t.Fatalf("after 2000 bytes: %v, want close %v", err, websocket.StatusMessageTooBig)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("connection still open after a 2000-byte message")
	}
	testenv.WaitFor(t, "the handler to end", func() bool { return s.handlers() == 0 && s.Clients() == 0 })
}

func TestShutdownGoingAway(t *testing.T) {
	s := New(Config{}, nil, nil, nil)
	addr, cancel, done := startServe(t, s, nil)
	c := dial(t, addr, nil)
	cancel()
	rctx, rcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer rcancel()
	_, _, err := c.Read(rctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
		t.Errorf("read: %v, want close %v", err, websocket.StatusGoingAway)
	}
	testenv.WaitReturn(t, "Serve", done)
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("still listening after shutdown")
	}
}

// TestShutdownStalled: a client that never reads cannot hold shutdown up
// for more than its timeout.
func TestShutdownStalled(t *testing.T) {
	s := New(Config{}, nil, nil, nil)
	s.shutdownTimeout = 300 * time.Millisecond
	addr, cancel, done := startServe(t, s, func(l net.Listener) net.Listener { return smallBuffers{l} })
	c := dial(t, addr, nil) // never read
	_ = c
	big := rd("air", reading.Temperature, 1, 20, 0)
	big.Agent = strings.Repeat("x", 60000)
	for range 50 { // fills the buffers, not the queue
		s.Publish(big)
	}
	cancel()
	testenv.WaitReturn(t, "Serve", done)
	testenv.WaitFor(t, "the handler to end", func() bool { return s.handlers() == 0 })
}

func TestRunListenError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := New(Config{Listen: l.Addr().String()}, nil, nil, nil)
	err = s.Run(context.Background())
	if err == nil {
		t.Fatal("Run on a busy port: nil error")
	}
	if want := "httpui: listen " + l.Addr().String() + ": "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Run: %q, want prefix %q", err, want)
	}
	if runtime.GOOS == "linux" {
		if want := "httpui: listen " + l.Addr().String() + ": address already in use"; err.Error() != want || !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("Run: %q, want %q wrapping EADDRINUSE", err, want)
		}
	}
	if err := New(Config{}, nil, nil, nil).Run(context.Background()); err != nil {
		t.Errorf("Run with no address: %v, want nil", err)
	}
}

func TestRun(t *testing.T) {
	port := testenv.FreePort(t)
	s := New(Config{Listen: fmt.Sprintf("127.0.0.1:%d", port)}, nil, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = s.Run(ctx) })
	url := fmt.Sprintf("http://127.0.0.1:%d/api/status", port)
	testenv.WaitFor(t, "the server to listen", func() bool {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	cancel()
	wg.Wait()
	if runErr != nil {
		t.Errorf("Run: %v, want nil", runErr)
	}
}
