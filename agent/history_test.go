package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/archive"
	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/internal/wallclock"
)

// TestHistoryFromSensorsSurvivesRestart: a sensor's readings reach the
// page's long history through the archive's queue (visible in
// /api/history before anything is written), a clean stop writes them, and
// an agent started on the same data directory answers them from disk.
func TestHistoryFromSensorsSurvivesRestart(t *testing.T) {
	data := t.TempDir()
	port := testenv.FreePort(t)
	yaml := fmt.Sprintf(`
agent: { id: gh1, data_dir: %s, clock: trust }
sensors: [ { id: air, type: sim, interval: 100ms } ]
http: { listen: "127.0.0.1:%d" }
`, data, port)
	history := func() (n int) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/history?sensor=air", port))
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		var h struct{ Series []struct{ N []int } }
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			t.Fatalf("/api/history: %v", err)
		}
		for _, s := range h.Series {
			for _, c := range s.N {
				n += c
			}
		}
		return n
	}
	run := func(wait func() bool, what string) int {
		cfg, err := Parse("test.yaml", []byte(yaml), os.LookupEnv)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Run(ctx, cfg, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}) }()
		testenv.WaitForWithin(t, 15*time.Second, what, wait)
		n := history()
		cancel()
		testenv.WaitReturn(t, "Run", done)
		return n
	}
	before := run(func() bool { return history() >= 5 }, "five readings in /api/history")
	// What the stopped agent left on disk holds at least those readings.
	// Its clock is the agent's (Options.Now unset: wallclock.Now).
	a, err := archive.Open(filepath.Join(data, "history"), archive.Options{Now: wallclock.Now})
	if err != nil {
		t.Fatal(err)
	}
	now := wallclock.Now()
	series, err := a.Query("air", now.Add(-time.Hour), now.Add(time.Hour), time.Hour)
	a.Close()
	if err != nil || len(series) != 1 || len(series[0].Buckets) != 1 || int(series[0].Buckets[0].N) < before {
		t.Fatalf("on disk after the stop: %+v, %v; want the %d readings /api/history had", series, err, before)
	}
	// A new agent on the same directory answers them.
	run(func() bool { return history() >= before }, fmt.Sprintf("the %d readings of before the restart", before))
}
