package filter

import (
	"errors"
	"math"
	"testing"
	"time"
)

// t0 is the time of the first sample of every table.
var t0 = time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)

// at returns t0 plus sec seconds.
func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

// step is one sample fed to a chain and what the chain must return: want
// when err is nil, else an error matching err.
type step struct {
	sec  float64 // time since t0
	in   float64
	want float64
	err  error
}

// ok is a step that passes with the value want.
func ok(sec, in, want float64) step { return step{sec: sec, in: in, want: want} }

// rejected is a step the chain rejects with err.
func rejected(sec, in float64, err error) step { return step{sec: sec, in: in, err: err} }

// run feeds steps through a chain of specs. Values are compared to 1e-9, as
// the expected ones are decimal hand computations.
func run(t *testing.T, specs []Spec, steps []step) {
	t.Helper()
	c, err := NewChain(specs)
	if err != nil {
		t.Fatalf("NewChain: %v", err)
	}
	for i, st := range steps {
		got, err := c.Apply(Sample{Time: at(st.sec), Value: st.in})
		switch {
		case st.err != nil && !errors.Is(err, st.err):
			t.Errorf("step %d (t=%gs, in %g): got %g, %v; want error %v", i, st.sec, st.in, got.Value, err, st.err)
		case st.err == nil && err != nil:
			t.Errorf("step %d (t=%gs, in %g): got error %v; want %g", i, st.sec, st.in, err, st.want)
		case st.err == nil && math.Abs(got.Value-st.want) > 1e-9:
			t.Errorf("step %d (t=%gs, in %g): got %.12g; want %g", i, st.sec, st.in, got.Value, st.want)
		case err == nil && !got.Time.Equal(at(st.sec)):
			t.Errorf("step %d: time changed to %v", i, got.Time)
		}
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name  string
		spec  Spec
		steps []step
	}{
		{"odd count", Spec{Kind: "median", N: 3}, []step{
			ok(0, 5, 5),   // [5]
			ok(1, 1, 3),   // [5 1]: even, (1+5)/2
			ok(2, 3, 3),   // [5 1 3] sorted 1 3 5
			ok(3, 10, 3),  // [1 3 10]
			ok(4, 2, 3),   // [3 10 2] sorted 2 3 10
			ok(5, 8, 8),   // [10 2 8] sorted 2 8 10
			ok(6, -4, 2),  // [2 8 -4] sorted -4 2 8
			ok(7, -4, -4), // [8 -4 -4] sorted -4 -4 8
		}},
		{"even count", Spec{Kind: "median", N: 4}, []step{
			ok(0, 4, 4),  // [4]
			ok(1, 8, 6),  // [4 8]: (4+8)/2
			ok(2, 6, 6),  // [4 8 6] sorted 4 6 8
			ok(3, 2, 5),  // [4 8 6 2] sorted 2 4 6 8: (4+6)/2
			ok(4, 10, 7), // [8 6 2 10] sorted 2 6 8 10: (6+8)/2
		}},
		{"window of one", Spec{Kind: "median", N: 1}, []step{
			ok(0, 4, 4),
			ok(1, 8, 8),
		}},
		{"duration", Spec{Kind: "median", Window: 30 * time.Second}, []step{
			ok(0, 1, 1),  // (-30,0]: [1]
			ok(10, 9, 5), // (-20,10]: [1 9]: (1+9)/2
			ok(20, 5, 5), // (-10,20]: [1 9 5]
			ok(30, 7, 7), // (0,30]: t=0 is out: [9 5 7]
			ok(40, 3, 5), // (10,40]: [5 7 3]
			ok(75, 4, 4), // (45,75]: all older are out: [4]
			ok(80, 6, 5), // (50,80]: [4 6]: (4+6)/2
			ok(80, 2, 4), // same time, kept: [4 6 2] sorted 2 4 6
			ok(70, 8, 8), // clock stepped back: window emptied: [8]
			ok(71, 0, 4), // [8 0]: (0+8)/2
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { run(t, []Spec{tt.spec}, tt.steps) })
	}
}

func TestMovingAverage(t *testing.T) {
	tests := []struct {
		name  string
		spec  Spec
		steps []step
	}{
		{"count", Spec{Kind: "moving_average", N: 3}, []step{
			ok(0, 3, 3),     // [3]
			ok(1, 6, 4.5),   // [3 6]: 9/2
			ok(2, 9, 6),     // [3 6 9]: 18/3
			ok(3, 12, 9),    // [6 9 12]: 27/3
			ok(4, -3, 6),    // [9 12 -3]: 18/3
			ok(5, 0.3, 3.1), // [12 -3 0.3]: 9.3/3
		}},
		{"count with decimals", Spec{Kind: "moving_average", N: 2}, []step{
			ok(0, 21.1, 21.1),  // [21.1]
			ok(1, 21.4, 21.25), // [21.1 21.4]: 42.5/2
			ok(2, 21.3, 21.35), // [21.4 21.3]: 42.7/2
			ok(3, -0.3, 10.5),  // [21.3 -0.3]: 21/2
			ok(4, -0.5, -0.4),  // [-0.3 -0.5]: -0.8/2
			ok(5, 100.5, 50),   // [-0.5 100.5]: 100/2
		}},
		{"duration", Spec{Kind: "moving_average", Window: 20 * time.Second}, []step{
			ok(0, 10, 10),  // (-20,0]: [10]
			ok(10, 20, 15), // (-10,10]: [10 20]: 30/2
			ok(20, 30, 25), // (0,20]: t=0 is out: [20 30]: 50/2
			ok(25, 40, 30), // (5,25]: [20 30 40]: 90/3
			ok(45, 50, 50), // (25,45]: [50]
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { run(t, []Spec{tt.spec}, tt.steps) })
	}
}

func TestEMA(t *testing.T) {
	tests := []struct {
		name  string
		alpha float64
		steps []step
	}{
		{"half", 0.5, []step{
			ok(0, 10, 10),      // first sample passes unchanged
			ok(1, 20, 15),      // 0.5·20 + 0.5·10
			ok(2, 20, 17.5),    // 0.5·20 + 0.5·15
			ok(3, 0, 8.75),     // 0.5·0 + 0.5·17.5
			ok(4, -10, -0.625), // 0.5·-10 + 0.5·8.75 = -5 + 4.375
		}},
		{"0.3", 0.3, []step{
			ok(0, 10, 10),    // first sample passes unchanged
			ok(1, 20, 13),    // 0.3·20 + 0.7·10 = 6 + 7
			ok(2, 20, 15.1),  // 0.3·20 + 0.7·13 = 6 + 9.1
			ok(3, 10, 13.57), // 0.3·10 + 0.7·15.1 = 3 + 10.57
		}},
		{"one passes everything", 1, []step{
			ok(0, 3, 3),
			ok(1, 7, 7),
			ok(2, -1, -1),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { run(t, []Spec{{Kind: "ema", Alpha: tt.alpha}}, tt.steps) })
	}
}

func TestClamp(t *testing.T) {
	run(t, []Spec{{Kind: "clamp", Min: -55, Max: 125}}, []step{
		ok(0, 21.5, 21.5),
		ok(1, -55, -55), // lower bound is inclusive
		ok(2, 125, 125), // upper bound is inclusive
		rejected(3, -55.0001, ErrOutOfRange),
		rejected(4, 125.5, ErrOutOfRange), // a fault: not clamped to 125
		rejected(5, 1e300, ErrOutOfRange),
		ok(6, 0, 0),
	})
}

func TestOffset(t *testing.T) {
	run(t, []Spec{{Kind: "offset", Offset: -0.4}}, []step{
		ok(0, 21.5, 21.1), // 21.5 - 0.4
		ok(1, 0, -0.4),
		ok(2, -10, -10.4),
		ok(3, 0.4, 0),
	})
}

func TestCalibrateLinear(t *testing.T) {
	// The line through (0, 0.3) and (100, 99.1): slope (99.1-0.3)/100 = 0.988,
	// y = 0.3 + x·0.988.
	example := [2][2]float64{{0, 0.3}, {100, 99.1}}
	swapped := [2][2]float64{{100, 99.1}, {0, 0.3}}
	for name, p := range map[string][2][2]float64{"example": example, "points swapped": swapped} {
		t.Run(name, func(t *testing.T) {
			run(t, []Spec{{Kind: "calibrate_linear", Points: p}}, []step{
				ok(0, 50, 49.7),      // 0.3 + 49.4
				ok(1, 0, 0.3),        // the first point
				ok(2, 100, 99.1),     // the second point
				ok(3, -10, -9.58),    // 0.3 - 9.88
				ok(4, 25, 25),        // 0.3 + 24.7
				ok(5, 200, 197.9),    // 0.3 + 197.6
				ok(6, 19.6, 19.6648), // 0.3 + 19.3648
			})
		})
	}
	// A falling line: (10, 0) and (20, -5), slope -0.5.
	run(t, []Spec{{Kind: "calibrate_linear", Points: [2][2]float64{{10, 0}, {20, -5}}}}, []step{
		ok(0, 14, -2), // 0 + 4·-0.5
		ok(1, 0, 5),   // 0 + -10·-0.5
	})
}

func TestOutlier(t *testing.T) {
	// σ = 1.4826·MAD; a sample is dropped when |x-m| > 3σ.
	tests := []struct {
		name  string
		spec  Spec
		steps []step
	}{
		{"spike in noise", Spec{Kind: "outlier", N: 7, MADs: 3}, []step{
			ok(0, 20.1, 20.1), // 1 sample: passes
			ok(1, 20.3, 20.3), // 2 samples: passes
			// [20.1 20.3 19.9] m 20.1, |dev| 0 .2 .2: MAD .2, 3σ .88956;
			// |19.9-20.1| = .2
			ok(2, 19.9, 19.9),
			// sorted 19.9 20.1 20.2 20.3: m 20.15; |dev| .05 .05 .15 .25:
			// MAD .1, 3σ .44478; |20.2-20.15| = .05
			ok(3, 20.2, 20.2),
			// sorted 19.9 20.1 20.2 20.3 35: m 20.2; |dev| 0 .1 .1 .3 14.8:
			// MAD .1, 3σ .44478; |35-20.2| = 14.8: dropped
			rejected(4, 35, ErrDropped),
			// the spike is in the window: sorted 19.9 20.0 20.1 20.2 20.3 35:
			// m 20.15; |dev| .05 .05 .15 .15 .25 14.85: MAD .15, 3σ .66717;
			// |20.0-20.15| = .15
			ok(5, 20.0, 20.0),
			// sorted 19.9 20.0 20.1 20.1 20.2 20.3 35: m 20.1; MAD .1
			ok(6, 20.1, 20.1),
			// window full, 20.1 falls out: sorted 19.9 20.0 20.1 20.2 20.3
			// 35 45: m 20.2; |dev| 0 .1 .1 .2 .3 14.8 24.8: MAD .2, 3σ .88956
			rejected(7, 45, ErrDropped),
		}},
		{"genuine step accepted after half a window", Spec{Kind: "outlier", N: 5, MADs: 3}, []step{
			ok(0, 20.0, 20.0),
			ok(1, 20.2, 20.2),
			// [20 20.2 20]: m 20, |dev| 0 0 .2: MAD 0, σ 0; x = m passes
			ok(2, 20.0, 20.0),
			// sorted 20 20 20.2 20.2: m 20.1, |dev| all .1: MAD .1,
			// 3σ .44478; |20.2-20.1| = .1
			ok(3, 20.2, 20.2),
			// sorted 20 20 20 20.2 20.2: m 20, MAD 0; x = m passes
			ok(4, 20.0, 20.0),
			// [20.2 20 20.2 20 25] sorted 20 20 20.2 20.2 25: m 20.2;
			// |dev| 0 0 .2 .2 4.8: MAD .2, 3σ .88956; |25-20.2| = 4.8
			rejected(5, 25.0, ErrDropped),
			// [20 20.2 20 25 25.2] sorted 20 20 20.2 25 25.2: m 20.2;
			// |dev| 0 .2 .2 4.8 5: MAD .2; |25.2-20.2| = 5
			rejected(6, 25.2, ErrDropped),
			// [20.2 20 25 25.2 25] sorted 20 20.2 25 25 25.2: m 25 = x
			ok(7, 25.0, 25.0),
			// sorted 20 25 25 25.2 25.2: m 25; |dev| 0 0 .2 .2 5: MAD .2,
			// 3σ .88956; |25.2-25| = .2
			ok(8, 25.2, 25.2),
		}},
		{"MAD zero", Spec{Kind: "outlier", N: 5, MADs: 3}, []step{
			ok(0, 10, 10),
			ok(1, 10, 10),
			ok(2, 10, 10), // [10 10 10]: m 10, MAD 0: x = m passes
			// sorted 10 10 10 10.5: m 10, |dev| 0 0 0 .5: MAD 0, σ 0; x ≠ m
			rejected(3, 10.5, ErrDropped),
			ok(4, 10, 10), // m 10 = x
		}},
		{"fewer than 3 samples pass", Spec{Kind: "outlier", N: 5, MADs: 3}, []step{
			ok(0, 10, 10),
			ok(1, 11, 11), // 2 samples, although σ would be 0
			// [10 11 50] sorted: m 11, |dev| 0 1 39: MAD 1, 3σ 4.4478
			rejected(2, 50, ErrDropped),
		}},
		{"duration", Spec{Kind: "outlier", Window: 30 * time.Second, MADs: 3}, []step{
			ok(0, 10, 10),
			ok(10, 10, 10),
			ok(20, 10, 10), // [10 10 10]: x = m
			// (0,30]: [10 10 50]: m 10, MAD 0, x ≠ m
			rejected(30, 50, ErrDropped),
			ok(40, 10, 10), // (10,40]: [10 50 10]: m 10 = x
			// (170,200]: the window holds only this sample: passes
			ok(200, 50, 50),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { run(t, []Spec{tt.spec}, tt.steps) })
	}
}

func TestMaxRate(t *testing.T) {
	run(t, []Spec{{Kind: "max_rate", Rate: 2}}, []step{
		ok(0, 20, 20),                  // first sample passes
		ok(1, 21, 21),                  // |21-20|/1 s = 1/s
		rejected(2, 30, ErrDropped),    // |30-21|/1 s = 9/s
		ok(3, 22, 22),                  // vs 21 at 1 s: 1/2 s = 0.5/s
		rejected(4, 40, ErrDropped),    // a step: vs 22 at 3 s: 18/1 s = 18/s
		rejected(5, 40, ErrDropped),    // 18/2 s = 9/s
		ok(12, 40, 40),                 // a gap: 18/9 s = 2/s: not above 2, accepted
		ok(12, 40, 40),                 // same time, same value
		rejected(12, 40.5, ErrDropped), // same time, different value
		ok(11, 40, 40),                 // earlier time, same value
		rejected(11, 39, ErrDropped),   // vs 40 at 11 s: same time, different value
		ok(10.5, 40, 40),               // earlier again, same value
		ok(11.5, 41, 41),               // vs 40 at 10.5 s: 1/1 s
	})
}

// TestMaxRateRecovers: max_rate never takes a sample it dropped as its
// reference, and takes a change that lasts ReanchorAfter samples, each
// within the rate of the one before, as the new level: one wrong sample
// cannot silence a sensor.
func TestMaxRateRecovers(t *testing.T) {
	rate := []Spec{{Kind: "max_rate", Rate: 2}}
	t.Run("a spike", func(t *testing.T) {
		run(t, rate, []step{
			ok(0, 20, 20),
			rejected(1, 1e300, ErrDropped),
			ok(2, 20.5, 20.5), // vs 20 at 0 s, not vs the spike
			rejected(3, 1e300, ErrDropped),
			rejected(4, 1e300, ErrDropped),
			ok(5, 21, 21), // two spikes are not a level
		})
	})
	t.Run("a wrong first sample", func(t *testing.T) {
		run(t, rate, []step{
			ok(0, 1e300, 1e300),
			rejected(1, 20, ErrDropped),
			rejected(2, 20.5, ErrDropped),
			ok(3, 21, 21), // third in a row within 2/s of the one before
			ok(4, 21.5, 21.5),
		})
	})
	t.Run("a reference stamped in the future", func(t *testing.T) {
		run(t, rate, []step{
			ok(300, 20, 20), // five minutes ahead
			rejected(1, 20.1, ErrDropped),
			rejected(2, 20.2, ErrDropped),
			ok(3, 20.3, 20.3),
			ok(4, 20.4, 20.4),
		})
	})
	t.Run("noise is no level", func(t *testing.T) {
		run(t, rate, []step{
			ok(0, 20, 20),
			rejected(1, 100, ErrDropped),
			rejected(2, 200, ErrDropped),
			rejected(3, 100, ErrDropped),
			rejected(4, 200, ErrDropped),
			rejected(5, 100, ErrDropped),
			ok(6, 21, 21),
		})
	})
}

func TestDelta(t *testing.T) {
	tests := []struct {
		name  string
		specs []Spec
		steps []step
	}{
		{"with heartbeat", []Spec{{Kind: "delta", Delta: 0.1}, {Kind: "heartbeat", Every: time.Minute}}, []step{
			ok(0, 21.0, 21.0),                  // first sample passes
			rejected(10, 21.05, ErrUnchanged),  // moved .05
			ok(20, 21.1, 21.1),                 // moved .1
			rejected(30, 21.15, ErrUnchanged),  // moved .05 from 21.1
			ok(80, 21.12, 21.12),               // moved .02, but 80-20 = 60 s passed
			rejected(90, 21.2, ErrUnchanged),   // moved .08 from 21.12, 10 s passed
			rejected(139, 21.15, ErrUnchanged), // moved .03, 139-80 = 59 s passed
			ok(140, 21.15, 21.15),              // 140-80 = 60 s passed
			ok(150, 21.25, 21.25),              // moved .1
			ok(151, 21.14, 21.14),              // moved -.11
			ok(100, 21.14, 21.14),              // clock stepped back: heartbeat due
			rejected(110, 21.14, ErrUnchanged), // 10 s after the new anchor
		}},
		{"without heartbeat", []Spec{{Kind: "delta", Delta: 0.1}}, []step{
			ok(0, 21.0, 21.0),
			rejected(1000, 21.05, ErrUnchanged), // no heartbeat: never due
			ok(2000, 20.9, 20.9),                // moved -.1
			rejected(2001, 20.85, ErrUnchanged), // moved -.05
			rejected(1, 20.9, ErrUnchanged),     // clock stepped back: nothing due
		}},
		{"float64 differences", []Spec{{Kind: "delta", Delta: 0.1}}, []step{
			ok(0, 21.3, 21.3),
			ok(1, 21.4, 21.4), // 21.4-21.3 is 0.09999999999999787 in float64
			rejected(2, 21.45, ErrUnchanged),
			ok(3, 21.3, 21.3), // moved -.1
			ok(4, 101325.3, 101325.3),
			ok(5, 101325.4, 101325.4), // 0.09999999999126885 in float64
			rejected(6, 101325.49, ErrUnchanged),
		}},
		{"heartbeat after another filter", []Spec{{Kind: "delta", Delta: 1}, {Kind: "offset", Offset: 1}, {Kind: "heartbeat", Every: 10 * time.Second}}, []step{
			ok(0, 5, 6),                    // 5 + 1
			rejected(5, 5.5, ErrUnchanged), // moved .5, 5 s
			ok(10, 5.5, 6.5),               // 10 s passed
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { run(t, tt.specs, tt.steps) })
	}
}

func TestHeartbeatPassesEverything(t *testing.T) {
	f := newFilter(Spec{Kind: "heartbeat", Every: time.Minute})
	for i, v := range []float64{1, 1, 1} {
		got, err := f.Apply(Sample{Time: at(float64(i)), Value: v})
		if err != nil || got.Value != v {
			t.Errorf("heartbeat.Apply(%g) = %g, %v; want %g, nil", v, got.Value, err, v)
		}
	}
}

func TestRound(t *testing.T) {
	tests := []struct {
		in     float64
		digits int
		want   float64
	}{
		// The float64 nearest each decimal half is a little above or below
		// it; math.Round(x*100)/100 gets the ones below wrong.
		{2.345, 2, 2.35},   // stored as 2.34500000000000019…
		{-2.345, 2, -2.35}, // half away from zero
		{21.435, 2, 21.44}, // stored as 21.43499999999999872…
		{1.005, 2, 1.01},   // stored as 1.00499999999999989…; scaling gives 1
		{8.325, 2, 8.33},   // stored as 8.32499999999999929…; scaling gives 8.32
		{-8.325, 2, -8.33},
		{2.675, 2, 2.68}, // stored as 2.67499999999999982…
		{0.125, 2, 0.13}, // exactly representable half
		{-0.125, 2, -0.13},
		{21.4349, 2, 21.43},
		{19.6648, 2, 19.66},
		{22.5, 2, 22.5}, // fewer decimals already
		{9.995, 2, 10},  // carries into a new digit
		{-9.995, 2, -10},
		{101325.125, 2, 101325.13},
		{0.006, 2, 0.01}, // rounds up from below the first kept digit
		{0.004, 2, 0},
		{2.5, 0, 3},
		{-2.5, 0, -3},
		{1234.5, 0, 1235},
		{1234.49, 0, 1234},
		{0.4, 0, 0},
		{0.05, 1, 0.1},
		{0.006, 1, 0},
		{1.23456789012345, 10, 1.2345678901},
		{1.23456789016, 10, 1.2345678902},
		{1e20, 2, 1e20},
		{1e-300, 3, 0},
		{0, 2, 0},
	}
	for _, tt := range tests {
		got := roundDecimal(tt.in, tt.digits)
		if got != tt.want {
			t.Errorf("round(%v, %d) = %v; want %v", tt.in, tt.digits, got, tt.want)
		}
	}
	// Small negatives round to +0, not -0 (which JSON would show as "-0").
	for _, in := range []float64{-0.4, -0.004, -1e-300} {
		digits := 2
		if in == -0.4 {
			digits = 0
		}
		if got := roundDecimal(in, digits); got != 0 || math.Signbit(got) {
			t.Errorf("round(%v, %d) = %v; want +0", in, digits, got)
		}
	}
	// Through a chain.
	run(t, []Spec{{Kind: "round", Digits: 2}}, []step{
		ok(0, 2.345, 2.35),
		ok(1, -2.345, -2.35),
		ok(2, 21.435, 21.44),
		ok(3, 1.005, 1.01),
		ok(4, 8.325, 8.33),
	})
}
