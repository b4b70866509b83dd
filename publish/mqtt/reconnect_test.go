package mqtt

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// TestRetryDelayIsCapped: connection retries double from 0.5 s to at most
// 4 s (a broker that is back is found within seconds), session takeovers to
// at most 30 s, and the jitter draws each from [d/2, d].
func TestRetryDelayIsCapped(t *testing.T) {
	full := func(d time.Duration) time.Duration { return d }
	ms := time.Millisecond
	for _, tc := range []struct {
		limit time.Duration
		want  []time.Duration
	}{
		{retryMax, []time.Duration{500 * ms, 1000 * ms, 2000 * ms, 4000 * ms, 4000 * ms, 4000 * ms}},
		{takeoverMax, []time.Duration{500 * ms, 1000 * ms, 2000 * ms, 4000 * ms, 8000 * ms, 16000 * ms, 30000 * ms, 30000 * ms}},
	} {
		for i, w := range tc.want {
			if got := retryDelay(i+1, tc.limit, full); got != w {
				t.Errorf("limit %v, attempt %d: %v, want %v", tc.limit, i+1, got, w)
			}
		}
		if got := retryDelay(1<<20, tc.limit, full); got != tc.limit {
			t.Errorf("limit %v, attempt 2^20: %v", tc.limit, got)
		}
	}
	c, err := New(Config{URL: "tcp://127.0.0.1:1883"}, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		if d := retryDelay(10, retryMax, c.jitter); d < retryMax/2 || d > retryMax {
			t.Fatalf("jittered delay %v outside [%v, %v]", d, retryMax/2, retryMax)
		}
	}
}

// delays records the retry delays a client asked its jitter for, and
// waits the least the jitter allows.
type delays struct {
	mu  sync.Mutex
	got []time.Duration
}

func (d *delays) jitter(x time.Duration) time.Duration {
	d.mu.Lock()
	d.got = append(d.got, x)
	d.mu.Unlock()
	return x / 2
}

func (d *delays) max() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	var m time.Duration
	for _, x := range d.got {
		m = max(m, x)
	}
	return m
}

// runClient starts c's Run until the test ends.
func runClient(t *testing.T, c *Client) *started {
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{Client: c, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- c.Run(ctx) }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// TestReconnectAfterLongOutage: a broker down long enough for the retry
// delay to reach its cap is found again within that cap once it is back.
func TestReconnectAfterLongOutage(t *testing.T) {
	m := testenv.StartMosquitto(t)
	cfg := DefaultConfig()
	cfg.URL = m.URL
	c, err := New(cfg, "r1", testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	d := &delays{}
	c.jitter = d.jitter
	s := runClient(t, c)
	s.waitConnected(t)
	m.Stop()
	testenv.WaitFor(t, "the retry delay to reach its cap", func() bool { return d.max() >= retryMax })
	m.Start()
	s.waitConnected(t)
	if got := d.max(); got != retryMax {
		t.Errorf("largest retry delay %v, want the cap %v", got, retryMax)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.got[0] != retryMin {
		t.Errorf("first delay after the loss %v, want a jittered %v (not the whole fleet at once)", d.got[0], retryMin)
	}
}

// TestSameClientIDTakeover: two gateways with one client id take turns on
// the broker, which closes the older connection each time. They back off
// rather than loop, and each says once what is wrong.
func TestSameClientIDTakeover(t *testing.T) {
	m := testenv.StartMosquitto(t)
	cfg := DefaultConfig()
	cfg.URL = m.URL
	var logs [2]*testenv.SyncBuffer
	var ds [2]*delays
	for i := range 2 {
		logs[i], ds[i] = &testenv.SyncBuffer{}, &delays{}
		c, err := New(cfg, "twin", slog.New(slog.NewTextHandler(logs[i], &slog.HandlerOptions{Level: slog.LevelDebug})))
		if err != nil {
			t.Fatal(err)
		}
		c.jitter = ds[i].jitter
		runClient(t, c)
	}
	const told = "another client with the same client id keeps taking over the session"
	either := func(s string) bool {
		return strings.Contains(logs[0].String(), s) || strings.Contains(logs[1].String(), s)
	}
	testenv.WaitFor(t, "a client to name the takeover", func() bool { return either(told) })
	// Then it backs off further, and says it no more.
	testenv.WaitFor(t, "the takeover backoff to grow", func() bool { return max(ds[0].max(), ds[1].max()) >= 4*time.Second })
	for i, l := range logs {
		s := l.String()
		if n := strings.Count(s, told); n > 1 {
			t.Errorf("client %d named the takeover %d times", i, n)
		}
		if n := strings.Count(s, `level=WARN msg="mqtt connection lost`); n > takeoverWarn {
			t.Errorf("client %d warned of %d lost connections, want at most %d before it names the cause:\n%s", i, n, takeoverWarn, s)
		}
		if strings.Contains(s, told) && !strings.Contains(s, "client_id=kelvin-twin") {
			t.Errorf("client %d: the message does not name the client id:\n%s", i, s)
		}
	}
}

// TestRunAgain: the agent restarts an output that failed by calling Run
// again; the client then connects as the first time.
func TestRunAgain(t *testing.T) {
	m := testenv.StartMosquitto(t)
	cfg := DefaultConfig()
	cfg.URL = m.URL
	c, err := New(cfg, "again", testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	s := runClient(t, c)
	s.waitConnected(t)
	s.stop(t)
	if c.Status().Connected {
		t.Fatal("connected after Run returned")
	}
	s = runClient(t, c)
	s.waitConnected(t)
	s.publish(t, testReadings("again", 3))
}
