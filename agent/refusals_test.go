package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/httpui"
	"github.com/kelvin-gw/kelvin/ingest"
	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

// TestRefusedReadingsLogStateNotEachReading: a buffer that refuses every
// reading (here: closed; in the field a full disk) logs the change once,
// then a summary a minute, then the recovery once, and /readyz says the
// agent is not ready meanwhile.
func TestRefusedReadingsLogStateNotEachReading(t *testing.T) {
	cfg, err := Parse("test.yaml", []byte(fmt.Sprintf(`
agent: { id: gh1, data_dir: %s }
sensors:
  - { id: air, type: sim, interval: 1s }
  - { id: shed, type: http }
http: { listen: "127.0.0.1:0" }
`, t.TempDir())), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.SyncBuffer{}
	a, err := New(cfg, Options{Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.archive.Close()
	var mu sync.Mutex
	now := time.Unix(1e9, 0)
	a.refusals.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	a.store.Close() // every Append now fails
	rd := func() []reading.Reading {
		return []reading.Reading{{Sensor: "air", Quantity: reading.Temperature, Value: 20, Raw: 20, Time: time.Now()}}
	}
	for range 1000 {
		a.accept(rd())
		advance(10 * time.Millisecond)
	}
	// Pushed readings too (HTTP and the MQTT input): the client is told,
	// the log is not told again.
	for i := range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := a.ingest(ctx, []ingest.Item{{Sensor: "shed", Value: float64(i)}}, viaPage)
		cancel()
		var ie *httpui.IngestError
		if !errors.As(err, new(refusedError)) || !errors.As(err, &ie) || ie.Status != 503 {
			t.Fatalf("pushed reading: %v, want a refusal with status 503", err)
		}
		advance(10 * time.Millisecond)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("1100 refused readings in 11 s logged %d warnings, want 1:\n%s", n, logs)
	}
	ready := func() string {
		w := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/readyz", nil)
		req.Host = "localhost" // httptest's example.com is a foreign name to the page
		httpui.New(cfg.HTTP, a.Status, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil))).Handler().
			ServeHTTP(w, req)
		return fmt.Sprint(w.Code, " ", w.Body.String())
	}
	if got := ready(); !strings.HasPrefix(got, "503 ") || !strings.Contains(got, "buffer: refusing new readings: buffer: closed") {
		t.Errorf("/readyz while refusing: %s", got)
	}
	advance(time.Minute)
	a.accept(rd())
	if n := strings.Count(logs.String(), `msg="buffer still refusing readings"`); n != 1 || !strings.Contains(logs.String(), "refused_total=1101") {
		t.Errorf("after a minute: %d summaries, want 1 with refused_total=1101:\n%s", n, logs)
	}
	a.refusals.stored() // as after an Append that succeeded
	if !strings.Contains(logs.String(), `msg="buffer storing readings again" component=buffer refused_total=1101`) {
		t.Errorf("no recovery line:\n%s", logs)
	}
	if got := ready(); strings.Contains(got, "refusing") {
		t.Errorf("/readyz after recovery: %s", got)
	}
}
