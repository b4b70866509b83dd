package httpui

import (
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/archive"
)

// openArchive opens an archive in dir whose retention runs on c.
func openArchive(t *testing.T, dir string, c *clock) *archive.Archive {
	t.Helper()
	a, err := archive.Open(dir, archive.Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// getHistory returns the status and body of GET base/api/history?q.
func getHistory(t *testing.T, base, q string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + "/api/history" + q)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHistoryAPI: /api/history answers columns per series for a window and
// a step, defaults to the last 24 h, and refuses bad parameters.
func TestHistoryAPI(t *testing.T) {
	c := &clock{t0.Add(10 * time.Minute)}
	s := New(Config{}, nil, c.now, nil)
	a := openArchive(t, t.TempDir(), c)
	s.SetArchive(a)
	for i := range 10 {
		a.Add(rd("air", "temperature", uint64(i+1), float64(20+i), time.Duration(i)*time.Minute))
	}
	a.Flush()
	base := "http://" + serve(t, s, nil)
	get := func(q string) (int, string) { return getHistory(t, base, q) }
	code, body := get("?sensor=air&step=5m")
	var h struct {
		From, To    int64
		StepSeconds int64 `json:"step_seconds"`
		Series      []struct {
			Sensor, Quantity, Unit string
			T                      []int64
			Min, Mean, Max         []float64
			N                      []int
		}
	}
	if code != 200 || json.Unmarshal([]byte(body), &h) != nil {
		t.Fatalf("GET ?sensor=air&step=5m: %d %s", code, body)
	}
	if h.StepSeconds != 300 || h.To != c.t.Unix() || h.From != c.t.Add(-24*time.Hour).Unix() || len(h.Series) != 1 {
		t.Fatalf("answer %s", body)
	}
	se := h.Series[0]
	if se.Sensor != "air" || se.Unit != "°C" || len(se.T) != 2 || se.T[0] != t0.Unix() ||
		se.Min[0] != 20 || se.Mean[0] != 22 || se.Max[0] != 24 || se.N[0] != 5 ||
		se.Min[1] != 25 || se.Mean[1] != 27 || se.Max[1] != 29 || se.N[1] != 5 {
		t.Errorf("series %+v", se)
	}
	if code, body := get("?sensor=air&from=" + t0.Add(5*time.Minute).Format(time.RFC3339) + "&step=60"); code != 200 || !strings.Contains(body, `"n":[1,1,1,1,1]`) {
		t.Errorf("from=RFC 3339, step=60: %d %s", code, body)
	}
	for _, q := range []string{"?from=yesterday", "?step=0", "?step=-5m", "?from=" + itoa(c.t.Unix()) + "&to=" + itoa(c.t.Unix()-60), "?from=0&step=1m"} {
		if code, body := get(q); code != http.StatusBadRequest {
			t.Errorf("GET %s: %d %s, want 400", q, code, body)
		}
	}

	s2 := New(Config{}, nil, c.now, nil)
	base = "http://" + serve(t, s2, nil)
	if code, _ := get(""); code != http.StatusNotFound {
		t.Errorf("without an archive: %d, want 404", code)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// TestHistoryAPINonFinite: readings of ±1.7e308 in one minute, and a file
// of the older format holding the -Inf mean such readings used to make
// and a NaN, still give valid JSON with finite numbers for every series.
func TestHistoryAPINonFinite(t *testing.T) {
	dir := t.TempDir()
	var old []byte
	for i, v := range [][3]float64{{20, 21, 22}, {-1.7e308, math.Inf(-1), 1.7e308}, {math.NaN(), math.NaN(), math.NaN()}} {
		var r [40]byte
		binary.LittleEndian.PutUint64(r[0:], uint64(t0.Add(time.Duration(i)*time.Minute).Unix()))
		for j, x := range v {
			binary.LittleEndian.PutUint64(r[8+8*j:], math.Float64bits(x))
		}
		binary.LittleEndian.PutUint32(r[32:], 2)
		binary.LittleEndian.PutUint32(r[36:], crc32.Checksum(r[:36], crc32.MakeTable(crc32.Castagnoli)))
		old = append(old, r[:]...)
	}
	if err := os.WriteFile(filepath.Join(dir, "tank.temperature.hist"), old, 0o640); err != nil {
		t.Fatal(err)
	}
	c := &clock{t0.Add(10 * time.Minute)}
	s := New(Config{}, nil, c.now, nil)
	a := openArchive(t, dir, c)
	s.SetArchive(a)
	a.Add(rd("air", "temperature", 1, 1.7e308, 5*time.Minute))
	a.Add(rd("air", "temperature", 2, -1.7e308, 5*time.Minute+time.Second))
	a.Add(rd("air", "temperature", 3, math.Inf(1), 5*time.Minute+2*time.Second))
	a.Flush()
	base := "http://" + serve(t, s, nil)
	code, body := getHistory(t, base, "?step=1m")
	var h struct {
		Series []struct {
			Sensor         string
			T              []int64
			Min, Mean, Max []float64
		}
	}
	if code != 200 || !json.Valid([]byte(body)) || json.Unmarshal([]byte(body), &h) != nil || len(h.Series) != 2 {
		t.Fatalf("GET /api/history: %d %s", code, body)
	}
	air, tank := h.Series[0], h.Series[1]
	if len(air.T) != 1 || air.Mean[0] != 0 || air.Min[0] != -1.7e308 || air.Max[0] != 1.7e308 {
		t.Errorf("air: %+v, want one minute with mean 0", air)
	}
	if len(tank.T) != 1 || tank.Mean[0] != 21 {
		t.Errorf("tank: %+v, want only the finite minute of the older file", tank)
	}
	if strings.Contains(body, "000000000000000000000") {
		t.Errorf("a huge number is written out in digits: %.200s", body)
	}
}
