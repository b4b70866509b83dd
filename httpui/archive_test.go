package httpui

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
)

func openArchive(t *testing.T, dir string, keep time.Duration) *Archive {
	t.Helper()
	a, err := OpenArchive(dir, keep, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func query(t *testing.T, a *Archive, sensor string, step time.Duration) []ArchiveSeries {
	t.Helper()
	got, err := a.Query(sensor, t0.Add(-365*24*time.Hour), t0.Add(365*24*time.Hour), step)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func sameBucket(b Bucket, start time.Duration, lo, mean, hi float64, n uint32) bool {
	return b.Start.Equal(t0.Add(start)) && b.Min == lo && b.Max == hi && b.N == n && b.Mean > mean-1e-9 && b.Mean < mean+1e-9
}

// TestArchiveMinuteBuckets: values are summarised per minute (min, mean,
// max, count, computed here by hand), wider steps merge minutes weighting
// each by its count, and the minute being filled is part of the answer.
func TestArchiveMinuteBuckets(t *testing.T) {
	a := openArchive(t, t.TempDir(), 7*24*time.Hour)
	defer a.Close()
	for _, r := range []reading.Reading{
		rd("air", "temperature", 1, 20, 0),
		rd("air", "temperature", 2, 22, 30*time.Second),
		rd("air", "temperature", 3, 30, 61*time.Second),
		rd("air", "temperature", 4, 18, 119*time.Second),
		rd("air", "temperature", 5, 25, 125*time.Second), // the open minute
		rd("air", "humidity", 1, 55, 0),
		rd("tank", "temperature", 1, 10, 0),
	} {
		a.Add(r)
	}
	got := query(t, a, "air", time.Minute)
	if len(got) != 2 || got[0].Quantity != "humidity" || got[1].Quantity != "temperature" || got[1].Unit != "°C" {
		t.Fatalf("series = %+v, want air's humidity then temperature", got)
	}
	bs := got[1].Buckets
	if len(bs) != 3 ||
		!sameBucket(bs[0], 0, 20, 21, 22, 2) ||
		!sameBucket(bs[1], time.Minute, 18, 24, 30, 2) ||
		!sameBucket(bs[2], 2*time.Minute, 25, 25, 25, 1) {
		t.Errorf("1-minute buckets = %+v", bs)
	}
	// 5-minute steps: one bucket, mean of the five values (20+22+30+18+25)/5.
	bs = query(t, a, "air", 5*time.Minute)[1].Buckets
	if len(bs) != 1 || !sameBucket(bs[0], 0, 18, 23, 30, 5) {
		t.Errorf("5-minute bucket = %+v, want min 18 mean 23 max 30 n 5", bs)
	}
	if all := query(t, a, "", time.Minute); len(all) != 3 {
		t.Errorf("all series: %d, want 3", len(all))
	}
}

// TestArchiveSurvivesRestart: a clean close writes the open minute; after
// reopening, the same history is there, and new readings of the same
// minute merge with it.
func TestArchiveSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	a := openArchive(t, dir, 7*24*time.Hour)
	a.Add(rd("air", "temperature", 1, 20, 0))
	a.Add(rd("air", "temperature", 2, 24, 70*time.Second))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a = openArchive(t, dir, 7*24*time.Hour)
	defer a.Close()
	bs := query(t, a, "air", time.Minute)[0].Buckets
	if len(bs) != 2 || !sameBucket(bs[0], 0, 20, 20, 20, 1) || !sameBucket(bs[1], time.Minute, 24, 24, 24, 1) {
		t.Fatalf("after restart: %+v", bs)
	}
	a.Add(rd("air", "temperature", 3, 26, 80*time.Second))
	bs = query(t, a, "air", time.Minute)[0].Buckets
	if len(bs) != 2 || !sameBucket(bs[1], time.Minute, 24, 25, 26, 2) {
		t.Errorf("the restarted minute = %+v, want min 24 mean 25 max 26 n 2", bs)
	}
}

// TestArchiveTornAndCorrupt: a torn last record (power cut mid-write) is
// cut off at open; a record whose CRC fails is skipped, never the others.
func TestArchiveTornAndCorrupt(t *testing.T) {
	dir := t.TempDir()
	a := openArchive(t, dir, 7*24*time.Hour)
	for i := range 4 {
		a.Add(rd("air", "temperature", uint64(i+1), float64(20+i), time.Duration(i)*time.Minute))
	}
	a.Close()
	path := filepath.Join(dir, "air.temperature.hist")
	data, err := os.ReadFile(path)
	if err != nil || len(data) != 4*recSize {
		t.Fatalf("file: %d bytes, %v; want 4 records", len(data), err)
	}
	data[recSize+9] ^= 0xff                  // corrupt the second record
	data = append(data, data[:recSize-3]...) // and a torn fifth
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	a = openArchive(t, dir, 7*24*time.Hour)
	defer a.Close()
	if st, _ := os.Stat(path); st.Size() != 4*recSize {
		t.Errorf("file is %d bytes after open, want the torn record cut (%d)", st.Size(), 4*recSize)
	}
	bs := query(t, a, "air", time.Minute)[0].Buckets
	if len(bs) != 3 || bs[0].Mean != 20 || bs[1].Mean != 22 || bs[2].Mean != 23 {
		t.Errorf("buckets = %+v, want minutes 0, 2 and 3 (the corrupt one skipped)", bs)
	}
}

// TestArchiveRetention: the file is compacted to the retention once it
// holds a day more, so it stays bounded however long the agent runs.
func TestArchiveRetention(t *testing.T) {
	dir := t.TempDir()
	a := openArchive(t, dir, time.Hour)
	defer a.Close()
	const minutes = 26 * 60
	for i := range minutes {
		a.Add(rd("air", "temperature", uint64(i+1), 20, time.Duration(i)*time.Minute))
	}
	st, err := os.Stat(filepath.Join(dir, "air.temperature.hist"))
	if err != nil {
		t.Fatal(err)
	}
	if limit := int64((25*60 + 1) * recSize); st.Size() > limit {
		t.Errorf("file is %d bytes, want at most %d (retention + a day)", st.Size(), limit)
	}
	bs := query(t, a, "air", time.Minute)[0].Buckets
	if len(bs) >= minutes || len(bs) < 61 {
		t.Errorf("%d buckets kept of %d minutes, want the old ones gone and the last hour kept", len(bs), minutes)
	}
	if last := bs[len(bs)-1]; !last.Start.Equal(t0.Add((minutes - 1) * time.Minute)) {
		t.Errorf("newest bucket %v, want %v", last.Start, t0.Add((minutes-1)*time.Minute))
	}
}

// TestHistoryAPI: /api/history answers columns per series for a window and
// a step, defaults to the last 24 h, and refuses bad parameters.
func TestHistoryAPI(t *testing.T) {
	c := &clock{t0.Add(10 * time.Minute)}
	s := New(Config{}, nil, c.now, nil)
	a := openArchive(t, t.TempDir(), 7*24*time.Hour)
	defer a.Close()
	s.SetArchive(a)
	for i := range 10 {
		s.Publish(rd("air", "temperature", uint64(i+1), float64(20+i), time.Duration(i)*time.Minute))
	}
	base := "http://" + serve(t, s, nil)
	get := func(q string) (int, string) {
		resp, err := http.Get(base + "/api/history" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
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
