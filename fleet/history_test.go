package fleet

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/archive"
	"github.com/kelvin-gw/kelvin/reading"
)

// setArchive gives f a one-day archive in a temporary directory, on the
// test's clock c.
func setArchive(t *testing.T, f *Fleet, c *clock) *archive.Archive {
	t.Helper()
	arch, err := archive.Open(t.TempDir(), archive.Options{Keep: 24 * time.Hour, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { arch.Close() })
	f.SetArchive(arch)
	return arch
}

// TestHistoryFromArchive: fleet readings go into the one-minute archive,
// under names safe for files whatever the gateway calls itself, and
// /api/fleet/history serves their min, mean and max per step.
func TestHistoryFromArchive(t *testing.T) {
	f, c := newTestFleet(t, nil)
	arch := setArchive(t, f, c)
	t0 := c.now().Truncate(time.Minute).Add(-10 * time.Minute)
	agent := "gw.1/../x" // not a file name
	for i := range 180 { // three minutes at 1 Hz: 20..22.99
		ts := t0.Add(time.Duration(i) * time.Second)
		f.Handle("kelvin/x/y", payload(reading.FormatJSON, agent, "air", uint64(i+1), 20+float64(i)/60, ts))
	}
	arch.Flush()
	srv := httptest.NewServer(f.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/fleet/history?window=24h&sensor=air&agent=" + "gw.1%2F..%2Fx")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		Step   float64 `json:"step_seconds"`
		Series []struct {
			Quantity, Unit string
			Points         [][4]float64
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %v", resp.Status, err)
	}
	if h.Step != 240 || len(h.Series) != 1 || h.Series[0].Quantity != "temperature" || h.Series[0].Unit != "°C" || len(h.Series[0].Points) == 0 {
		t.Fatalf("got %+v, want one temperature series in steps of 4 minutes", h)
	}
	lo, hi := h.Series[0].Points[0][1], h.Series[0].Points[0][3]
	for _, p := range h.Series[0].Points {
		lo, hi = min(lo, p[1]), max(hi, p[3])
	}
	if lo != 20 || hi != 20+179.0/60 {
		t.Fatalf("min %v max %v, want 20 and %v", lo, hi, 20+179.0/60)
	}
	if got := archiveName(agent, "air"); got != "gw%2E1%2F%2E%2E%2Fx~air" {
		t.Fatalf("archive name %q", got)
	}
}
