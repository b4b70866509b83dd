package httpui

import (
	"cmp"
	"sort"
	"sync"
	"time"
	"unsafe"

	"github.com/kelvin-gw/kelvin/reading"
)

// seriesKey identifies one series: a sensor's quantity.
type seriesKey struct{ sensor, quantity string }

// ReadingBytes is the memory one reading takes in the page history: the
// history holds the readings themselves, their strings shared per series.
const ReadingBytes = int64(unsafe.Sizeof(reading.Reading{}))

// minSeriesLen is the fewest readings a series may keep, whatever the
// budget.
const minSeriesLen = 16

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
	// The strings every reading of the series shares.
	key         seriesKey
	agent, unit string
}

// shrink keeps at most limit readings, the newest, in a buffer of that
// size.
func (r *ring) shrink(limit int) {
	if len(r.buf) <= limit {
		return
	}
	nb := make([]reading.Reading, limit)
	skip := max(0, r.n-limit)
	for i := range r.n - skip {
		nb[i] = *r.at(skip + i)
	}
	r.buf, r.head, r.n = nb, 0, r.n-skip
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
// age (maxAge), by count (maxLen per series) and by memory: all series
// together hold at most budget bytes of readings, each at most an equal
// share (and at least minSeriesLen readings). A ring grows only as its
// readings need, so a slow sensor takes little of its share. Safe for
// concurrent use.
type history struct {
	maxAge time.Duration
	maxLen int
	budget int64

	mu     sync.Mutex
	series map[seriesKey]*ring
	limit  int // readings per series: maxLen, or the budget's share
}

func newHistory(maxAge time.Duration, maxLen int, budget int64) *history {
	return &history{maxAge: maxAge, maxLen: maxLen, budget: budget, series: make(map[seriesKey]*ring), limit: maxLen}
}

// seriesLimit returns the readings each of n series may keep.
func (h *history) seriesLimit(n int) int {
	share := h.budget / (ReadingBytes * int64(max(1, n)))
	return min(h.maxLen, max(minSeriesLen, int(min(share, int64(h.maxLen)))))
}

// perSeries returns the readings each series may keep now.
func (h *history) perSeries() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.limit
}

// bytes returns the memory the rings hold, readings included.
func (h *history) bytes() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var n int64
	for _, r := range h.series {
		n += int64(len(r.buf)) * ReadingBytes
	}
	return n
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
		r = &ring{key: k}
		h.series[k] = r
		if l := h.seriesLimit(len(h.series)); l < h.limit {
			// One more series: every one gets a smaller share.
			h.limit = l
			for _, o := range h.series {
				o.shrink(l)
			}
		}
	}
	// Share the series' strings rather than keep a copy per reading.
	rd.Sensor, rd.Quantity = r.key.sensor, r.key.quantity
	if rd.Agent == r.agent {
		rd.Agent = r.agent
	} else {
		r.agent = rd.Agent
	}
	if rd.Unit == r.unit {
		rd.Unit = r.unit
	} else {
		r.unit = rd.Unit
	}
	r.dropBefore(now.Add(-h.maxAge))
	r.push(rd, h.limit)
	if !rd.Time.Before(r.newest.Time) {
		r.newest = rd
	}
}

// keys returns the series of sensor (of every sensor when it is empty),
// ordered by sensor, then quantity.
func (h *history) keys(sensor string) []seriesKey {
	h.mu.Lock()
	keys := make([]seriesKey, 0, len(h.series))
	for k := range h.series {
		if sensor == "" || k.sensor == sensor {
			keys = append(keys, k)
		}
	}
	h.mu.Unlock()
	// sort.Slice rather than slices.SortFunc: a generic sort of a struct
	// type costs about 35 KB of binary, and the binary has a size budget.
	sort.Slice(keys, func(i, j int) bool { return keyLess(keys[i], keys[j]) })
	return keys
}

// appendSeries appends to out the readings of series k not older than
// maxAge at now, ordered by time, oldest first (readings of equal time in
// arrival order). It copies at most one series' readings.
func (h *history) appendSeries(out []reading.Reading, k seriesKey, now time.Time) []reading.Reading {
	cutoff := now.Add(-h.maxAge)
	start := len(out)
	h.mu.Lock()
	if r := h.series[k]; r != nil {
		for i := range r.n {
			if rd := r.at(i); !rd.Time.Before(cutoff) {
				out = append(out, *rd)
			}
		}
	}
	h.mu.Unlock()
	// Arrival order is time order but for back-filled readings.
	part := out[start:]
	if !sort.SliceIsSorted(part, func(i, j int) bool { return part[i].Time.Before(part[j].Time) }) {
		sort.SliceStable(part, func(i, j int) bool { return part[i].Time.Before(part[j].Time) })
	}
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
