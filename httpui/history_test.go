package httpui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
)

// get serves one request through s's handler.
func get(t *testing.T, s *Server, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Host = "localhost"
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

// wantReadings checks that /api/readings (with query) returns exactly
// want, as JSON, oldest first.
func wantReadings(t *testing.T, s *Server, query string, want ...reading.Reading) {
	t.Helper()
	rec := get(t, s, "/api/readings"+query)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api/readings%s: %d %s", query, rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	parts := make([]string, len(want))
	for i, r := range want {
		parts[i] = jsonOf(r)
	}
	if got, exp := strings.TrimSpace(rec.Body.String()), "["+strings.Join(parts, ",")+"]"; got != exp {
		t.Errorf("GET /api/readings%s =\n%s\nwant\n%s", query, got, exp)
	}
}

func TestReadingsCountBound(t *testing.T) {
	c := &clock{t0.Add(time.Minute)}
	s := New(Config{HistoryMax: 5}, nil, c.now, nil)
	var all []reading.Reading
	for i := range 12 { // past the ring's size, so it wraps
		r := rd("air", reading.Temperature, uint64(i+1), 20+float64(i), time.Duration(i)*time.Second)
		all = append(all, r)
		s.Publish(r)
	}
	wantReadings(t, s, "", all[7:]...)
}

func TestReadingsAgeBound(t *testing.T) {
	c := &clock{t0}
	s := New(Config{History: time.Minute}, nil, c.now, nil)
	var all []reading.Reading
	for i := range 30 { // one every 10 s for 5 min, the clock following
		r := rd("air", reading.Temperature, uint64(i+1), 20, time.Duration(i)*10*time.Second)
		c.t = r.Time
		all = append(all, r)
		s.Publish(r)
	}
	// At 290 s the last minute is 230 s…290 s: readings 23…29.
	wantReadings(t, s, "", all[23:]...)
	// Time passes without readings: the window moves on.
	c.t = c.t.Add(35 * time.Second)
	wantReadings(t, s, "", all[27:]...)
	c.t = c.t.Add(time.Hour)
	wantReadings(t, s, "")
}

func TestReadingsFilterAndOrder(t *testing.T) {
	c := &clock{t0.Add(time.Minute)}
	s := New(Config{}, nil, c.now, nil)
	a1 := rd("air", reading.Temperature, 1, 21.5, 1*time.Second)
	h1 := rd("air", reading.Humidity, 1, 40, 1*time.Second)
	w1 := rd("water", reading.Temperature, 1, 12.25, 2*time.Second)
	a2 := rd("air", reading.Temperature, 2, 21.75, 3*time.Second)
	w2 := rd("water", reading.Temperature, 2, 12.5, 3*time.Second)
	h2 := rd("air", reading.Humidity, 2, 41, 4*time.Second)
	for _, r := range []reading.Reading{w1, a1, h1, w2, h2, a2} {
		s.Publish(r)
	}
	// Series by series (by sensor, then quantity), each oldest first.
	wantReadings(t, s, "", h1, h2, a1, a2, w1, w2)
	wantReadings(t, s, "?sensor=air", h1, h2, a1, a2)
	wantReadings(t, s, "?sensor=water", w1, w2)
	// An unknown sensor is an empty array, not null.
	wantReadings(t, s, "?sensor=nope")
	if got := strings.TrimSpace(get(t, s, "/api/readings?sensor=nope").Body.String()); got != "[]" {
		t.Errorf("unknown sensor: %q, want []", got)
	}
}

func TestReadingsJSONShape(t *testing.T) {
	c := &clock{t0.Add(time.Minute)}
	s := New(Config{}, nil, c.now, nil)
	r := reading.Reading{Agent: `green "house" <1>`, Sensor: "28-0316a2b8ff01", Quantity: reading.Temperature,
		Value: 21.4375, Raw: 21.5, Unit: "°C", Time: t0.Add(123 * time.Millisecond), Seq: 42}
	s.Publish(r)
	rec := get(t, s, "/api/readings")
	var got []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	json.Unmarshal(r.AppendJSON(nil), &want)
	if len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(want) {
		t.Errorf("got %v, want [%v]", got, want)
	}
	if rec.Header().Get("X-Kelvin-History-Seconds") != "3600" || rec.Header().Get("X-Kelvin-History-Max") != "3600" {
		t.Errorf("history headers: %v", rec.Header())
	}
}

func TestReadingsGzip(t *testing.T) {
	c := &clock{t0.Add(time.Hour)}
	s := New(Config{}, nil, c.now, nil)
	for i := range 100 {
		s.Publish(rd("air", reading.Temperature, uint64(i+1), 20, time.Duration(i)*time.Second))
	}
	rec := get(t, s, "/api/readings", "Accept-Encoding", "gzip")
	if rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding = %q, want gzip", rec.Header().Get("Content-Encoding"))
	}
	if got, want := gunzip(t, rec.Body.Bytes()), get(t, s, "/api/readings").Body.String(); got != want {
		t.Errorf("gzipped body differs from plain one")
	}
}

// TestRing covers growth, wrap-around and expiry of one series' ring.
func TestRing(t *testing.T) {
	const limit = 40
	var r ring
	for i := range 100 {
		r.push(rd("a", "q", uint64(i), 0, time.Duration(i)*time.Second), limit)
		if want := min(i+1, limit); r.n != want {
			t.Fatalf("after %d pushes n = %d, want %d", i+1, r.n, want)
		}
		if len(r.buf) > limit {
			t.Fatalf("ring grew to %d, limit %d", len(r.buf), limit)
		}
		for j := range r.n {
			if got, want := r.at(j).Seq, uint64(i+1-r.n+j); got != want {
				t.Fatalf("after %d pushes [%d].Seq = %d, want %d", i+1, j, got, want)
			}
		}
	}
	r.dropBefore(t0.Add(95 * time.Second))
	if r.n != 5 || r.at(0).Seq != 95 {
		t.Fatalf("after expiry n = %d, first %d; want 5 from 95", r.n, r.at(0).Seq)
	}
	r.push(rd("a", "q", 100, 0, 100*time.Second), limit)
	if r.n != 6 || r.at(5).Seq != 100 {
		t.Fatalf("push after expiry: n = %d, last %d", r.n, r.at(5).Seq)
	}
}

// heapNow returns the live heap after a collection.
func heapNow() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestHistoryBudget: all series together keep at most http.history_bytes
// of readings, measured on the heap, however many sensors push (here with
// strings allocated per reading, as ingest does); each keeps its newest
// readings, in time order (issue 15, item 5).
func TestHistoryBudget(t *testing.T) {
	const budget = 2 << 20
	c := &clock{t0.Add(time.Hour)}
	s := New(Config{HistoryBytes: budget}, nil, c.now, nil)
	base := heapNow()
	const series, each = 200, 1000
	for i := range each {
		for j := range series {
			r := rd(fmt.Sprintf("s%03d", j), reading.Temperature, uint64(i+1), 20, time.Duration(i)*time.Second)
			r.Agent = strings.Clone(r.Agent)
			s.Publish(r)
		}
	}
	grown := int64(heapNow() - base)
	limit := s.history.perSeries()
	t.Logf("%d series: %d readings each kept, history %d bytes, heap grown %d bytes", series, limit, s.history.bytes(), grown)
	if b := s.history.bytes(); b > budget {
		t.Errorf("history holds %d bytes, budget %d", b, budget)
	}
	// The hub's log of recent JSON is bounded apart; allow 2 MiB for the
	// map, the rings' headers and the hub's ring of slices.
	if bound := int64(budget + hubBytes + 2<<20); grown > bound {
		t.Errorf("heap grew %d bytes, want at most %d", grown, bound)
	}
	if want := budget / (series * ReadingBytes); int64(limit) != want {
		t.Errorf("%d readings per series, want %d", limit, want)
	}
	var all []reading.Reading
	for i := each - limit; i < each; i++ {
		all = append(all, rd("s007", reading.Temperature, uint64(i+1), 20, time.Duration(i)*time.Second))
	}
	// A back-filled reading is served in its place by time.
	back := rd("s007", reading.Temperature, 5000, 21, time.Duration(each-limit+5)*time.Second+time.Millisecond)
	s.Publish(back) // pushes out the oldest
	all = append(append(all[1:6:6], back), all[6:]...)
	wantReadings(t, s, "?sensor=s007", all...)
}

// stallWriter is a ResponseWriter that blocks once after stallAt bytes
// until released, counting what it was given.
type stallWriter struct {
	h                 http.Header
	n, stallAt        int
	stalled, released chan struct{}
	tail              []byte
}

func (w *stallWriter) Header() http.Header { return w.h }
func (w *stallWriter) WriteHeader(int)     {}
func (w *stallWriter) Write(b []byte) (int, error) {
	w.n += len(b)
	if w.n >= w.stallAt && w.stalled != nil {
		close(w.stalled)
		w.stalled = nil
		<-w.released
	}
	w.tail = append(w.tail[:0], b[max(0, len(b)-2):]...)
	return len(b), nil
}

// TestReadingsBoundedMemory: GET /api/readings of 100 sensors' 2,000
// readings each (about 36 MB of JSON) holds a bounded amount of memory
// while it is being sent, plain or gzipped: the answer is streamed, not
// built whole (issue 15, item 5).
func TestReadingsBoundedMemory(t *testing.T) {
	c := &clock{t0.Add(time.Hour)}
	s := New(Config{HistoryBytes: 64 << 20}, nil, c.now, nil)
	const series, each = 100, 2000
	for i := range each {
		for j := range series {
			s.Publish(rd(fmt.Sprintf("s%03d", j), reading.Temperature, uint64(i+1), 20.125, time.Duration(i)*time.Second))
		}
	}
	for _, enc := range []string{"", "gzip"} {
		base := heapNow()
		w := &stallWriter{h: http.Header{}, stallAt: 256 << 10, stalled: make(chan struct{}), released: make(chan struct{})}
		stalled := w.stalled
		req := httptest.NewRequest(http.MethodGet, "/api/readings", nil)
		req.Host = "localhost"
		req.Header.Set("Accept-Encoding", enc)
		done := make(chan struct{})
		go func() { defer close(done); s.Handler().ServeHTTP(w, req) }()
		select {
		case <-stalled:
		case <-done:
			t.Fatalf("%q: the answer was %d bytes, want more than %d", enc, w.n, w.stallAt)
		}
		grown := int64(heapNow()) - int64(base)
		close(w.released)
		<-done
		t.Logf("%q: %d bytes sent, heap grown %d bytes while sending", enc, w.n, grown)
		if grown > 4<<20 {
			t.Errorf("%q: the request holds %d bytes of heap, want at most 4 MiB", enc, grown)
		}
		if enc == "" && (w.n < series*each*140 || string(w.tail) != "]\n") {
			t.Errorf("the answer: %d bytes ending %q", w.n, w.tail)
		}
	}
}
