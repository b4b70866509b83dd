package filter

import (
	"math"
	"strconv"
	"time"
)

// newFilter returns the filter of a valid spec.
func newFilter(s Spec) Filter {
	switch s.Kind {
	case "median":
		return &medianFilter{w: newRing(s)}
	case "moving_average":
		return &movingAverage{w: newRing(s)}
	case "ema":
		return &ema{alpha: s.Alpha}
	case "clamp":
		return &clamp{min: s.Min, max: s.Max}
	case "offset":
		return &offset{by: s.Offset}
	case "calibrate_linear":
		p := s.Points
		return &linear{raw1: p[0][0], true1: p[0][1], slope: (p[1][1] - p[0][1]) / (p[1][0] - p[0][0])}
	case "outlier":
		return &outlier{w: newRing(s), mads: s.MADs}
	case "max_rate":
		return &maxRate{rate: s.Rate}
	case "delta":
		return &delta{min: s.Delta}
	case "heartbeat":
		return heartbeat{}
	case "round":
		return &round{digits: s.Digits}
	}
	panic("filter: newFilter of an invalid spec " + strconv.Quote(s.Kind))
}

type medianFilter struct{ w *ring }

func (f *medianFilter) Apply(s Sample) (Sample, error) {
	f.w.push(s)
	s.Value = median(f.w.sorted())
	return s, nil
}

type movingAverage struct{ w *ring }

func (f *movingAverage) Apply(s Sample) (Sample, error) {
	f.w.push(s)
	s.Value = f.w.mean()
	return s, nil
}

type ema struct {
	alpha   float64
	started bool
	y       float64
}

func (f *ema) Apply(s Sample) (Sample, error) {
	if f.started {
		s.Value = weigh(f.alpha, s.Value, f.y)
	}
	f.started, f.y = true, s.Value
	return s, nil
}

type clamp struct{ min, max float64 }

func (f *clamp) Apply(s Sample) (Sample, error) {
	if s.Value < f.min || s.Value > f.max {
		return s, ErrOutOfRange
	}
	return s, nil
}

type offset struct{ by float64 }

func (f *offset) Apply(s Sample) (Sample, error) {
	s.Value += f.by
	return s, nil
}

type linear struct{ raw1, true1, slope float64 }

func (f *linear) Apply(s Sample) (Sample, error) {
	s.Value = f.true1 + (s.Value-f.raw1)*f.slope
	return s, nil
}

// madScale turns a median absolute deviation into an estimate of the
// standard deviation of normally distributed data.
const madScale = 1.4826

type outlier struct {
	w    *ring
	mads float64
}

func (f *outlier) Apply(s Sample) (Sample, error) {
	f.w.push(s)
	if f.w.n < 3 {
		return s, nil
	}
	v := f.w.sorted()
	m := median(v)
	for i, x := range v {
		v[i] = math.Abs(x - m)
	}
	sortFloats(v)
	sigma := madScale * median(v)
	if math.Abs(s.Value-m) > f.mads*sigma {
		return s, ErrDropped
	}
	return s, nil
}

// ReanchorAfter is how many consecutive samples max_rate drops, each
// within its rate of the one before, before it takes the last of them as
// its new reference and passes it: a change that lasts is data, however
// fast it came (a sensor replugged, a first sample that was wrong, a
// reference stamped in the future).
const ReanchorAfter = 3

type maxRate struct {
	rate    float64
	started bool
	last    Sample // the reference: the last sample passed
	cand    Sample // the last sample dropped
	streak  int    // consecutive drops, each within rate of the one before
}

// within reports whether s is within the rate of ref.
func (f *maxRate) within(ref, s Sample) bool {
	dt := max(s.Time.Sub(ref.Time).Seconds(), 0)
	return math.Abs(s.Value-ref.Value) <= f.rate*dt
}

func (f *maxRate) Apply(s Sample) (Sample, error) {
	if f.started && !f.within(f.last, s) {
		if f.streak > 0 && f.within(f.cand, s) {
			f.streak++
		} else {
			f.streak = 1
		}
		f.cand = s
		if f.streak < ReanchorAfter {
			return s, ErrDropped
		}
	}
	f.started, f.last, f.streak = true, s, 0
	return s, nil
}

// deltaTolerance is the relative tolerance of delta's comparison, so that
// 21.3 → 21.4 counts as a move of 0.1 although the float64 difference is
// 0.09999999999999787.
const deltaTolerance = 1e-9

type delta struct {
	min     float64
	every   time.Duration // from the heartbeat after it; 0 for none
	started bool
	last    float64
	at      time.Time
}

func (f *delta) Apply(s Sample) (Sample, error) {
	if f.started && !f.moved(s.Value) && !f.due(s.Time) {
		return s, ErrUnchanged
	}
	f.started, f.last, f.at = true, s.Value, s.Time
	return s, nil
}

func (f *delta) moved(x float64) bool {
	tol := deltaTolerance * max(math.Abs(x), math.Abs(f.last), f.min)
	return math.Abs(x-f.last) >= f.min-tol
}

func (f *delta) due(t time.Time) bool {
	return f.every > 0 && (t.Sub(f.at) >= f.every || t.Before(f.at))
}

// heartbeat passes every sample: NewChain gives its period to the delta
// before it, which does the work.
type heartbeat struct{}

func (heartbeat) Apply(s Sample) (Sample, error) { return s, nil }

type round struct{ digits int }

func (f *round) Apply(s Sample) (Sample, error) {
	s.Value = roundDecimal(s.Value, f.digits)
	return s, nil
}

// pow10 holds the exact powers of ten round divides by.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10}

// roundDecimal rounds x to digits decimal places, half away from zero, as
// written in its shortest decimal form (strconv's 'g', -1: the digits a user
// sees), not as the binary float64 it is: 1.005 is stored as
// 1.00499999999999989…, yet rounds to 1.01. It returns +0 rather than -0,
// and x itself when x already has at most digits decimals or the rounding
// position lies beyond the 15th significant digit, where float64 cannot
// hold the difference. It does not allocate.
func roundDecimal(x float64, digits int) float64 {
	if x == 0 || !finite(x) {
		return x
	}
	var buf [32]byte
	b := strconv.AppendFloat(buf[:0], math.Abs(x), 'e', -1, 64) // d[.ddd]e±XX
	e := len(b) - 1
	for b[e] != 'e' {
		e--
	}
	exp := 0
	for _, c := range b[e+2:] {
		exp = exp*10 + int(c-'0')
	}
	if b[e+1] == '-' {
		exp = -exp
	}
	ds := b[:e] // the significant digits, with a '.' after the first
	if len(ds) > 1 {
		ds = append(ds[:1], ds[2:]...)
	}
	keep := exp + 1 + digits // significant digits left of the rounding position
	switch {
	case keep >= len(ds) || keep > 15:
		return x
	case keep < 0:
		return 0
	}
	var m uint64
	for _, c := range ds[:keep] {
		m = m*10 + uint64(c-'0')
	}
	if ds[keep] >= '5' {
		m++
	}
	if m == 0 {
		return 0
	}
	// m and 10^digits are exact in float64 and IEEE division rounds
	// correctly, so this is the float64 nearest the rounded decimal.
	v := float64(m) / pow10[digits]
	if x < 0 {
		v = -v
	}
	return v
}
