package sensors

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
)

// stepClock returns a clock that starts at w1TestTime and advances by step
// on every call.
func stepClock(step time.Duration) func() time.Time {
	t := w1TestTime.Add(-step)
	return func() time.Time {
		t = t.Add(step)
		return t
	}
}

// simValues reads n values from s.
func simValues(t *testing.T, s *Sim, n int) []float64 {
	t.Helper()
	vs := make([]float64, n)
	for i := range vs {
		r, err := s.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		vs[i] = r[0].Value
	}
	return vs
}

func equalFloats(a, b []float64) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

func TestSimDeterministic(t *testing.T) {
	t.Parallel()
	const n = 2000
	a := simValues(t, NewSim("a", SimConfig{Seed: 42}, stepClock(time.Second)), n)
	b := simValues(t, NewSim("b", SimConfig{Seed: 42}, stepClock(time.Second)), n)
	if !equalFloats(a, b) {
		t.Error("two sims with seed 42 differ")
	}
	if c := simValues(t, NewSim("a", SimConfig{Seed: 43}, stepClock(time.Second)), n); equalFloats(a, c) {
		t.Error("seeds 42 and 43 give the same values")
	}
	// Seed 0: derived from the id, stable across runs, different per id.
	x1 := simValues(t, NewSim("greenhouse", SimConfig{}, stepClock(time.Second)), n)
	x2 := simValues(t, NewSim("greenhouse", SimConfig{}, stepClock(time.Second)), n)
	y := simValues(t, NewSim("cellar", SimConfig{}, stepClock(time.Second)), n)
	if !equalFloats(x1, x2) {
		t.Error("seed 0 with the same id differs")
	}
	if equalFloats(x1, y) {
		t.Error("seed 0 with different ids gives the same values")
	}
	// The same seed with another read interval: the same random stream,
	// another walk.
	if d := simValues(t, NewSim("a", SimConfig{Seed: 42}, stepClock(time.Minute)), n); equalFloats(a, d) {
		t.Error("1 s and 1 min read intervals give the same values")
	}
}

func TestSimReading(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  SimConfig
		unit string
		res  float64
	}{
		{SimConfig{}, "°C", 1.0 / 16},
		{SimConfig{Quantity: reading.Humidity}, "%RH", 1.0 / 1024},
		{SimConfig{Quantity: reading.Pressure}, "Pa", 1.0 / 256},
	} {
		clock := stepClock(10 * time.Second)
		s := NewSim("s", tc.cfg, clock)
		for i := range 100 {
			rs, err := s.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 1 {
				t.Fatalf("%q: %d readings", tc.cfg.Quantity, len(rs))
			}
			r := rs[0]
			wantQ := tc.cfg.Quantity
			if wantQ == "" {
				wantQ = reading.Temperature
			}
			wantTime := w1TestTime.Add(time.Duration(i) * 10 * time.Second)
			if r.Quantity != wantQ || r.Unit != tc.unit || r.Raw != r.Value || !r.Time.Equal(wantTime) ||
				r.Agent != "" || r.Sensor != "" || r.Seq != 0 {
				t.Fatalf("%q: reading %+v", tc.cfg.Quantity, r)
			}
			if q := r.Value / tc.res; q != math.Trunc(q) {
				t.Fatalf("%q: %v is not a multiple of %v", tc.cfg.Quantity, r.Value, tc.res)
			}
		}
	}
}

// TestSimRange reads 100k values one second apart (28 h, 170 time
// constants of the walk) and checks they stay near Base, wander visibly,
// average to Base, and include spikes.
func TestSimRange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg      SimConfig
		base     float64
		maxDev   float64 // bound on |v - base|
		minDrift float64 // the 1-minute means must span at least this much
		spike    float64 // a jump of this size is a spike
	}{
		{SimConfig{Seed: 1}, 21, 10, 2, 2.5},
		{SimConfig{Seed: 2, Base: -18, Noise: 0.3}, -18, 10, 2, 2.5},
		{SimConfig{Seed: 3, Quantity: reading.Humidity}, 55, 30, 6, 7},
		{SimConfig{Seed: 4, Quantity: reading.Pressure}, 101325, 1100, 200, 250},
	} {
		const n = 100_000
		vs := simValues(t, NewSim("s", tc.cfg, stepClock(time.Second)), n)
		var sum float64
		lo, hi := math.Inf(1), math.Inf(-1) // range of 1-minute means
		spikes := 0
		for i, v := range vs {
			if math.Abs(v-tc.base) > tc.maxDev {
				t.Fatalf("%+v: read %d: %v is more than %v from %v", tc.cfg, i, v, tc.maxDev, tc.base)
			}
			sum += v
			if i%60 == 59 {
				var m float64
				for _, x := range vs[i-59 : i+1] {
					m += x
				}
				lo, hi = min(lo, m/60), max(hi, m/60)
			}
			// A spike: one value far from both neighbours.
			if i > 0 && i < n-1 && math.Abs(v-vs[i-1]) > tc.spike && math.Abs(v-vs[i+1]) > tc.spike {
				spikes++
			}
		}
		if mean := sum / n; math.Abs(mean-tc.base) > tc.maxDev/10 {
			t.Errorf("%+v: mean %v, want about %v", tc.cfg, mean, tc.base)
		}
		if hi-lo < tc.minDrift {
			t.Errorf("%+v: 1-minute means span only %v..%v", tc.cfg, lo, hi)
		}
		// One read in 300 on average: expect ~333; any is enough to
		// exercise the outlier filter, too many would be noise.
		if spikes < 50 || spikes > 1000 {
			t.Errorf("%+v: %d spikes in %d reads", tc.cfg, spikes, n)
		}
		t.Logf("%+v: 1-minute means %.3f..%.3f, %d spikes", tc.cfg, lo, hi, spikes)
	}
}

func TestSimErrors(t *testing.T) {
	t.Parallel()
	s := NewSim("s", SimConfig{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Read(ctx); err != context.Canceled {
		t.Errorf("Read with a cancelled context: %v", err)
	}
	if _, err := s.Read(context.Background()); err != nil {
		t.Errorf("Read with time.Now: %v", err)
	}

	bad := SimConfig{Quantity: "wind", Noise: -1, Base: math.NaN()}
	err := bad.Validate()
	for _, want := range []string{
		`sim: quantity "wind": want temperature, humidity or pressure`,
		`sim: base NaN: want a finite number`,
		`sim: noise -1: want a finite number >= 0`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to contain %q", err, want)
		}
	}
	if _, err := NewSim("windy", bad, nil).Read(context.Background()); err == nil || !strings.HasPrefix(err.Error(), `sim: windy: quantity "wind": want temperature, humidity or pressure`) {
		t.Errorf("Read of an invalid sim: %v", err)
	}
	for _, ok := range []SimConfig{{}, {Quantity: reading.Humidity}, {Quantity: reading.Pressure, Base: 95000, Noise: 1, Seed: -5}} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	if errors.Is(bad.Validate(), ErrBadData) {
		t.Error("a config error wraps a sensor fault")
	}
}
