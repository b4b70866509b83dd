package archive

import (
	"math"
	"time"
)

// Step is the width of an archive bucket: one minute.
const Step = time.Minute

// Bucket is the summary of the readings of one series over one step.
// Min, Mean and Max are finite and Min <= Mean <= Max when N > 0.
type Bucket struct {
	Start time.Time
	Min   float64
	Mean  float64
	Max   float64
	N     uint32
}

// add takes one finite value into b.
func (b *Bucket) add(v float64) {
	b.merge(Bucket{Min: v, Mean: v, Max: v, N: 1})
}

// merge folds o into b, weighting the means by their counts. The mean is a
// weighted average of two finite values computed so that it cannot overflow
// (each term is at most the larger magnitude) and is kept within
// [Min, Max] against rounding.
func (b *Bucket) merge(o Bucket) {
	if o.N == 0 {
		return
	}
	if b.N == 0 {
		b.Min, b.Mean, b.Max, b.N = o.Min, o.Mean, o.Max, o.N
		return
	}
	b.Min, b.Max = min(b.Min, o.Min), max(b.Max, o.Max)
	n := float64(b.N) + float64(o.N)
	b.Mean = min(max(b.Mean*(float64(b.N)/n)+o.Mean*(float64(o.N)/n), b.Min), b.Max)
	if b.N > math.MaxUint32-o.N {
		b.N = math.MaxUint32
	} else {
		b.N += o.N
	}
}

// finite reports whether every value of b is a number.
func (b *Bucket) finite() bool {
	return isFinite(b.Min) && isFinite(b.Mean) && isFinite(b.Max)
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
