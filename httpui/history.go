package httpui

import (
	"cmp"
	"sort"
	"sync"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
)

// seriesKey identifies one series: a sensor's quantity.
type seriesKey struct{ sensor, quantity string }

// ring is the recent readings of one series, oldest first. Its buffer grows
// on demand (doubling) up to max readings and then stays that size, the
// newest reading overwriting the oldest.
type ring struct {
	buf  []reading.Reading
	head int // index of the oldest reading
	n    int // readings held
	// newest is the reading with the latest time seen, the series' current
	// value: a back-filled older reading arrives last but is not current.
	newest reading.Reading
}

func (r *ring) at(i int) *reading.Reading { return &r.buf[(r.head+i)%len(r.buf)] }

func (r *ring) push(rd reading.Reading, limit int) {
	if r.n == len(r.buf) {
		if len(r.buf) >= limit {
			// Full at its bound: overwrite the oldest.
			r.buf[r.head] = rd
			r.head = (r.head + 1) % len(r.buf)
			return
		}
		nb := make([]reading.Reading, min(limit, max(16, 2*len(r.buf))))
		for i := range r.n {
			nb[i] = *r.at(i)
		}
		r.buf, r.head = nb, 0
	}
	*r.at(r.n) = rd
	r.n++
}

// dropBefore removes the readings older than cutoff from the front.
func (r *ring) dropBefore(cutoff time.Time) {
	for r.n > 0 && r.buf[r.head].Time.Before(cutoff) {
		r.buf[r.head] = reading.Reading{} // let go of its strings
		r.head = (r.head + 1) % len(r.buf)
		r.n--
	}
}

// history is the in-memory recent history, one ring per series, bounded by
// age (maxAge) and by count (maxLen per series). Safe for concurrent use.
type history struct {
	maxAge time.Duration
	maxLen int

	mu     sync.Mutex
	series map[seriesKey]*ring
}

func newHistory(maxAge time.Duration, maxLen int) *history {
	return &history{maxAge: maxAge, maxLen: maxLen, series: make(map[seriesKey]*ring)}
}

// add records rd; now is the current time, used to drop expired readings.
func (h *history) add(rd reading.Reading, now time.Time) {
	if h.maxLen <= 0 || h.maxAge <= 0 {
		return
	}
	k := seriesKey{rd.Sensor, rd.Quantity}
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.series[k]
	if r == nil {
		r = &ring{}
		h.series[k] = r
	}
	r.dropBefore(now.Add(-h.maxAge))
	r.push(rd, h.maxLen)
	if !rd.Time.Before(r.newest.Time) {
		r.newest = rd
	}
}

// snapshot returns the readings not older than maxAge at now, of sensor
// only when sensor is not empty, ordered by time, oldest first (readings
// of equal time in series order, then arrival order). It never returns
// nil.
func (h *history) snapshot(sensor string, now time.Time) []reading.Reading {
	cutoff := now.Add(-h.maxAge)
	h.mu.Lock()
	keys := make([]seriesKey, 0, len(h.series))
	total := 0
	for k, r := range h.series {
		if sensor == "" || k.sensor == sensor {
			keys = append(keys, k)
			total += r.n
		}
	}
	// sort.Slice rather than slices.SortFunc: a generic sort of a struct
	// type costs about 35 KB of binary, and the binary has a size budget.
	sort.Slice(keys, func(i, j int) bool { return keyLess(keys[i], keys[j]) })
	out := make([]reading.Reading, 0, total)
	for _, k := range keys {
		r := h.series[k]
		for i := range r.n {
			if rd := r.at(i); !rd.Time.Before(cutoff) {
				out = append(out, *rd)
			}
		}
	}
	h.mu.Unlock()
	// Each series is in arrival order and the series are in key order, so
	// a stable sort by time merges them deterministically.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// keyLess orders series by sensor, then quantity.
func keyLess(a, b seriesKey) bool {
	return cmp.Or(cmp.Compare(a.sensor, b.sensor), cmp.Compare(a.quantity, b.quantity)) < 0
}

// latest returns the newest reading by time of every series (not the
// last to arrive), whatever its age.
func (h *history) latest() map[seriesKey]reading.Reading {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[seriesKey]reading.Reading, len(h.series))
	for k, r := range h.series {
		if !r.newest.Time.IsZero() {
			out[k] = r.newest
		}
	}
	return out
}

// sortedKeys returns the keys of m by sensor, then quantity.
func sortedKeys[V any](m map[seriesKey]V) []seriesKey {
	keys := make([]seriesKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keyLess(keys[i], keys[j]) })
	return keys
}
