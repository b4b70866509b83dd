package filter

import (
	"slices"
	"time"
)

// ring is the sliding window of median, moving_average and outlier. The
// count form is a fixed ring of N values, allocated once. The duration form
// also keeps times, holds the samples in (newest-span, newest], starts small
// and grows by doubling up to MaxWindowSamples, after which the oldest is
// overwritten.
type ring struct {
	vals    []float64
	times   []time.Time // nil for the count form
	head    int         // index of the oldest sample
	n       int         // samples held
	limit   int         // most samples held
	span    time.Duration
	scratch []float64 // sorted copy for the medians
}

func newRing(s Spec) *ring {
	if s.Window > 0 {
		const start = 16
		return &ring{
			vals:    make([]float64, start),
			times:   make([]time.Time, start),
			limit:   MaxWindowSamples,
			span:    s.Window,
			scratch: make([]float64, 0, start),
		}
	}
	return &ring{vals: make([]float64, s.N), limit: s.N, scratch: make([]float64, 0, s.N)}
}

func (r *ring) index(i int) int {
	i += r.head
	if i >= len(r.vals) {
		i -= len(r.vals)
	}
	return i
}

func (r *ring) dropOldest() {
	r.head = r.index(1)
	r.n--
}

// push adds s as the newest sample, evicting what falls out of the window.
// In the duration form a sample older than the newest one held (the clock
// stepped back) empties the window first.
func (r *ring) push(s Sample) {
	if r.times != nil {
		if r.n > 0 && s.Time.Before(r.times[r.index(r.n-1)]) {
			r.head, r.n = 0, 0
		}
		for r.n > 0 && s.Time.Sub(r.times[r.head]) >= r.span {
			r.dropOldest()
		}
		if r.n == len(r.vals) && len(r.vals) < r.limit {
			r.grow()
		}
	}
	if r.n == len(r.vals) {
		r.dropOldest()
	}
	i := r.index(r.n)
	r.vals[i] = s.Value
	if r.times != nil {
		r.times[i] = s.Time
	}
	r.n++
}

func (r *ring) grow() {
	c := min(2*len(r.vals), r.limit)
	vals := r.appendTo(make([]float64, 0, c))
	times := make([]time.Time, c)
	for i := range r.n {
		times[i] = r.times[r.index(i)]
	}
	r.vals, r.times, r.head = vals[:c], times, 0
	r.scratch = make([]float64, 0, c)
}

// appendTo appends the values held, oldest first, to dst.
func (r *ring) appendTo(dst []float64) []float64 {
	end := r.head + r.n
	if end <= len(r.vals) {
		return append(dst, r.vals[r.head:end]...)
	}
	dst = append(dst, r.vals[r.head:]...)
	return append(dst, r.vals[:end-len(r.vals)]...)
}

// sorted returns the values held, sorted, in r.scratch.
func (r *ring) sorted() []float64 {
	r.scratch = r.appendTo(r.scratch[:0])
	sortFloats(r.scratch)
	return r.scratch
}

// sortFloats sorts v, which holds no NaN, in place: by insertion for the
// short windows users write most, without the NaN checks of slices.Sort.
func sortFloats(v []float64) {
	if len(v) > 16 {
		slices.Sort(v)
		return
	}
	for i := 1; i < len(v); i++ {
		x, j := v[i], i
		for ; j > 0 && v[j-1] > x; j-- {
			v[j] = v[j-1]
		}
		v[j] = x
	}
}

// mean returns the mean of the values held: their sum, added oldest
// first, divided by their count; when the sum overflows (values near
// ±math.MaxFloat64), the sum of each value divided by the count, which
// cannot. It is finite when every value is.
func (r *ring) mean() float64 {
	var t float64
	for i := range r.n {
		t += r.vals[r.index(i)]
	}
	n := float64(r.n)
	if finite(t) {
		return t / n
	}
	t = 0
	for i := range r.n {
		t += r.vals[r.index(i)] / n
	}
	return t
}

// median returns the middle of sorted values, or the mean of the two middle
// ones for an even count. v must not be empty.
func median(v []float64) float64 {
	h := len(v) / 2
	if len(v)%2 == 1 {
		return v[h]
	}
	return weigh(0.5, v[h-1], v[h])
}

// weigh returns w·x + (1−w)·y for w in [0,1], without overflow: the result
// lies between x and y, so it is finite when they are.
func weigh(w, x, y float64) float64 {
	if v := w*x + (1-w)*y; finite(v) {
		return v
	}
	return 2 * (w*(x/2) + (1-w)*(y/2))
}
