package fleet

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

func dialFleet(t *testing.T, f *Fleet) (*websocket.Conn, context.Context) {
	t.Helper()
	srv := httptest.NewServer(f.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(f.hub.close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/fleet/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, ctx
}

// TestWebsocketFollowsSubscribedGateways: a page gets the readings of the
// gateways it subscribed to, and no others.
func TestWebsocketFollowsSubscribedGateways(t *testing.T) {
	f, c := newTestFleet(t, nil)
	conn, ctx := dialFleet(t, f)
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"agents":["gw-b"]}`)); err != nil {
		t.Fatal(err)
	}
	seq := uint64(0)
	testenv.WaitFor(t, "the subscription", func() bool { return following(f, "gw-b") == 1 })
	for _, a := range []string{"gw-a", "gw-b", "gw-a", "gw-b"} {
		seq++
		f.Handle("kelvin/x/y", payload(reading.FormatJSON, a, "air", seq, 1, c.now()))
	}
	for _, want := range []string{`"seq":2`, `"seq":4`} {
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"agent":"gw-b"`) || !strings.Contains(string(b), want) {
			t.Fatalf("got %s, want gw-b's reading with %s", b, want)
		}
	}
}

// TestWebsocketSlowClientDropped: a page that does not read is dropped
// once its queue is full; publishing never blocks on it.
func TestWebsocketSlowClientDropped(t *testing.T) {
	f, c := newTestFleet(t, nil)
	conn, ctx := dialFleet(t, f)
	conn.Write(ctx, websocket.MessageText, []byte(`{"agents":["gw-a"]}`))
	testenv.WaitFor(t, "the subscription", func() bool { return f.hub.clients() == 1 && following(f, "gw-a") == 1 })
	seq := uint64(0)
	testenv.WaitFor(t, "the slow client to be dropped", func() bool {
		for range 1000 {
			seq++
			f.Handle("kelvin/x/y", payload(reading.FormatJSON, "gw-a", "air", seq, 1, c.now()))
		}
		return f.hub.clients() == 0
	})
	// The connection ends: read what was queued until it does.
	var err error
	for err == nil {
		_, _, err = conn.Read(ctx)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("the dropped client's connection stayed open")
	}
}

// following returns how many clients follow agent.
func following(f *Fleet, agent string) int {
	f.hub.mu.RLock()
	defer f.hub.mu.RUnlock()
	return len(f.hub.byAgent[agent])
}
