package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

// TestReload is SIGHUP's contract: a bad new config is refused with a log
// line and the agent keeps running the old one; a good one is applied
// (a new sensor, a changed filter) and nothing buffered is lost on the way:
// the broker sees every seq of the sensor that ran throughout.
func TestReload(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	sub := subscribe(t, broker.URL, "kelvin/#")
	dir := t.TempDir()
	file := filepath.Join(dir, "kelvin.yaml")
	port := testenv.FreePort(t)
	head := fmt.Sprintf(`
agent: { id: rl, data_dir: %s }
mqtt: { url: %q, qos: 1 }
http: { listen: "127.0.0.1:%d" }
sensors:
`, filepath.Join(dir, "data"), broker.URL, port)
	write := func(sensors string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(head+sensors), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("  - { id: a, type: sim, interval: 50ms, base: 20, noise: 0 }\n")
	cfg, err := LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}

	var logs testenv.SyncBuffer
	var mu sync.Mutex
	var agents []*Agent
	ready := make(chan struct{}, 4)
	reload := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, cfg, reload, func() (*Config, error) { return LoadFile(file) }, Options{
			Log: slog.New(slog.NewTextHandler(&logs, nil)),
			OnReady: func(a *Agent) {
				mu.Lock()
				agents = append(agents, a)
				mu.Unlock()
				ready <- struct{}{}
			},
		})
	}()
	waitReady := func() {
		t.Helper()
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			t.Fatalf("no agent ready within 10s\n%s", logs.String())
		}
	}
	waitReady()
	testenv.WaitForWithin(t, 10*time.Second, "readings of a", func() bool { return len(sub.get("kelvin/rl/a")) >= 5 })

	// A bad config: refused, logged, the old agent keeps publishing.
	write("  - { id: a, type: sim, interval: 50ms, colour: blue }\n")
	reload <- struct{}{}
	testenv.WaitForWithin(t, 5*time.Second, "the refusal in the log", func() bool { return strings.Contains(logs.String(), "reload refused") })
	if !strings.Contains(logs.String(), "colour") {
		t.Errorf("the refusal does not name the bad key:\n%s", logs.String())
	}
	n := len(sub.get("kelvin/rl/a"))
	testenv.WaitForWithin(t, 5*time.Second, "a to keep publishing", func() bool { return len(sub.get("kelvin/rl/a")) > n+3 })

	// A good config: a new sensor, and a changed filter on the old one.
	write("  - { id: a, type: sim, interval: 50ms, base: 20, noise: 0, filters: [ {offset: 100} ] }\n" +
		"  - { id: b, type: sim, interval: 50ms, base: 5, noise: 0 }\n")
	reload <- struct{}{}
	waitReady()
	testenv.WaitForWithin(t, 10*time.Second, "readings of b", func() bool { return len(sub.get("kelvin/rl/b")) >= 3 })
	testenv.WaitForWithin(t, 10*time.Second, "a with the new offset", func() bool {
		got := sub.get("kelvin/rl/a")
		var r reading.Reading
		json.Unmarshal([]byte(got[len(got)-1]), &r)
		return r.Value > 100
	})
	cancel()
	testenv.WaitReturn(t, "Serve", done)
	mu.Lock()
	if len(agents) != 2 {
		t.Errorf("%d agents started, want 2 (the first, and one on reload)", len(agents))
	}
	mu.Unlock()

	// Every seq of a from 1 to the last one published, none missing across
	// the reload (duplicates are allowed: delivery is at least once).
	seen := map[uint64]bool{}
	var last uint64
	for _, p := range sub.get("kelvin/rl/a") {
		var r reading.Reading
		if err := json.Unmarshal([]byte(p), &r); err != nil {
			t.Fatalf("payload %q: %v", p, err)
		}
		seen[r.Seq] = true
		last = max(last, r.Seq)
	}
	var missing []uint64
	for s := uint64(1); s <= last; s++ {
		if !seen[s] {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		t.Errorf("seq of a missing at the broker across the reload: %v (last %d)", missing, last)
	}
}
