package filter

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestDurationWindowIsBounded(t *testing.T) {
	r := newRing(Spec{Kind: "median", Window: time.Hour})
	// 10001 samples 1 ms apart: all within the hour.
	for i := range MaxWindowSamples + 1 {
		r.push(Sample{Time: t0.Add(time.Duration(i) * time.Millisecond), Value: float64(i)})
	}
	if r.n != MaxWindowSamples || len(r.vals) != MaxWindowSamples {
		t.Fatalf("window holds %d samples in %d slots; want %d", r.n, len(r.vals), MaxWindowSamples)
	}
	got := r.appendTo(nil)
	if got[0] != 1 || got[len(got)-1] != MaxWindowSamples {
		t.Errorf("window holds %g..%g; want 1..%d (sample 0 dropped)", got[0], got[len(got)-1], MaxWindowSamples)
	}
}

func TestDurationWindowGrowsWhileWrapped(t *testing.T) {
	r := newRing(Spec{Kind: "median", Window: 20 * time.Second})
	// Ten samples in slots 0..9, then a jump so that all fall out and the
	// head is at slot 10; then 18 samples 1 s apart, all in the window:
	// they take slots 10..15 and 0..9, and the 17th grows the ring to 32
	// slots while its head is at 10.
	for i := range 10 {
		r.push(Sample{Time: at(float64(i)), Value: -1})
	}
	for i := range 18 {
		r.push(Sample{Time: at(float64(100 + i)), Value: float64(i)})
	}
	want := []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}
	if got := r.appendTo(nil); !slices.Equal(got, want) {
		t.Errorf("window = %v; want %v", got, want)
	}
	if len(r.vals) != 32 {
		t.Errorf("ring has %d slots; want 32", len(r.vals))
	}
}

// TestWindowsAgainstReference checks median, moving_average and outlier over
// random series against a plain implementation that keeps every sample.
func TestWindowsAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	specs := []Spec{
		{Kind: "median", N: 4}, {Kind: "median", N: 7}, {Kind: "median", N: 20}, {Kind: "outlier", N: 21, MADs: 3},
		{Kind: "median", Window: 25 * time.Second},
		{Kind: "moving_average", N: 5}, {Kind: "moving_average", Window: 40 * time.Second},
		{Kind: "outlier", N: 9, MADs: 3}, {Kind: "outlier", Window: 33 * time.Second, MADs: 2},
	}
	for _, spec := range specs {
		f := newFilter(spec)
		var all []Sample
		sec := 0.0
		for i := range 2000 {
			sec += float64(rng.IntN(12)) // gaps of 0..11 s, some equal times
			switch i % 500 {
			case 499:
				sec += 100 // everything falls out of a duration window
			case 250:
				sec -= 7 // the clock steps back: a duration window starts again
			}
			s := Sample{Time: at(sec), Value: math.Round(rng.NormFloat64()*20) / 10}
			all = append(all, s)
			got, err := f.Apply(s)
			win := referenceWindow(spec, all)
			switch spec.Kind {
			case "median":
				if want := referenceMedian(win); got.Value != want {
					t.Fatalf("%s sample %d: got %g; want %g over %v", spec, i, got.Value, want, win)
				}
			case "moving_average":
				var sum float64
				for _, v := range win {
					sum += v
				}
				if want := sum / float64(len(win)); math.Abs(got.Value-want) > 1e-12 {
					t.Fatalf("%s sample %d: got %g; want %g over %v", spec, i, got.Value, want, win)
				}
			case "outlier":
				m := referenceMedian(win)
				devs := make([]float64, len(win))
				for j, v := range win {
					devs[j] = math.Abs(v - m)
				}
				drop := len(win) >= 3 && math.Abs(s.Value-m) > spec.MADs*1.4826*referenceMedian(devs)
				if (err != nil) != drop {
					t.Fatalf("%s sample %d: got %v; want drop %v over %v", spec, i, err, drop, win)
				}
			}
		}
	}
}

// referenceWindow returns the values of the window after the last of all.
func referenceWindow(spec Spec, all []Sample) []float64 {
	newest := all[len(all)-1]
	var win []float64
	for i := len(all) - 1; i >= 0; i-- {
		s := all[i]
		if spec.Window == 0 && len(win) == spec.N {
			break
		}
		if spec.Window > 0 && (newest.Time.Sub(s.Time) >= spec.Window || s.Time.After(newest.Time) || (i < len(all)-1 && s.Time.After(all[i+1].Time))) {
			break
		}
		win = append(win, s.Value)
	}
	slices.Reverse(win)
	return win
}

func referenceMedian(v []float64) float64 {
	v = slices.Sorted(slices.Values(v))
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
