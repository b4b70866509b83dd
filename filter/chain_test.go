package filter

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"
)

// exampleSpecs is the example chain of the docs:
//
//	median: 3, moving_average: 5, ema: 0.3, clamp: [-55, 125], offset: -0.4,
//	calibrate_linear: [[0.0, 0.3], [100.0, 99.1]], outlier: {window: 7, mads: 3},
//	max_rate: 2, delta: 0.1, heartbeat: 60s, round: 2
func exampleSpecs() []Spec {
	return []Spec{
		{Kind: "median", N: 3},
		{Kind: "moving_average", N: 5},
		{Kind: "ema", Alpha: 0.3},
		{Kind: "clamp", Min: -55, Max: 125},
		{Kind: "offset", Offset: -0.4},
		{Kind: "calibrate_linear", Points: [2][2]float64{{0.0, 0.3}, {100.0, 99.1}}},
		{Kind: "outlier", N: 7, MADs: 3},
		{Kind: "max_rate", Rate: 2},
		{Kind: "delta", Delta: 0.1},
		{Kind: "heartbeat", Every: 60 * time.Second},
		{Kind: "round", Digits: 2},
	}
}

func TestExampleChain(t *testing.T) {
	// Raw 20 every 10 s with a spike and a NaN, then a step to 25.
	//
	// A steady 20 comes out of median, moving_average and ema as 20, of
	// offset as 19.6 and of calibrate_linear as 0.3 + 19.6·0.988 = 19.6648.
	//
	// The step: median turns 20 20 25 25… into 20 25 25…, moving_average
	// into 21 22 23 24 25 25…, and ema (y = 0.3·x + 0.7·y_prev) into
	//   0.3·21 + 0.7·20      = 20.3
	//   0.3·22 + 0.7·20.3    = 20.81
	//   0.3·23 + 0.7·20.81   = 21.467
	//   0.3·24 + 0.7·21.467  = 22.2269
	//   0.3·25 + 0.7·22.2269 = 23.05883
	//   7.5 + 0.7·23.05883   = 23.641181
	//   7.5 + 0.7·23.641181  = 24.0488267
	//   7.5 + 0.7·24.0488267 = 24.33417869
	// and offset and calibrate_linear (0.3 + (y-0.4)·0.988) into
	//   19.9612, 20.46508, 21.114196, 21.8649772, 22.68692404,
	//   23.262286828, 23.6650407796, 23.94696854572.
	//
	// outlier (window 7, σ = 1.4826·MAD) sees at least four 19.6648 in its
	// window until 21.114196 (MAD 0: all different values dropped). At
	// 21.8649772 the window sorted is 19.6648×3 19.9612 20.46508 21.114196
	// 21.8649772: m 19.9612, MAD .2964, 3σ 1.3183 < 1.9038: dropped. At
	// 22.68692404: 19.6648×2 19.9612 20.46508 21.114196 21.8649772
	// 22.68692404: m 20.46508, |dev| 0 .50388 .649116 .80028 .80028
	// 1.3998972 2.22184404: MAD .80028, 3σ 3.5595 > 2.2218: passes, and
	// so do the next (MAD 1.152996, 1.397309628, 0.9781167396).
	//
	// max_rate (2/s) only sees changes below 0.1/s. delta (0.1) passes
	// the first sample, and then the step; its heartbeat (60 s) passes the
	// steady value at 60 s; round (2) shows 2 decimals.
	steps := []step{
		ok(0, 20, 19.66),                        // 19.6648
		rejected(10, 20, ErrUnchanged),          // delta
		rejected(20, 80, ErrUnchanged),          // median [20 20 80] = 20
		rejected(30, 20, ErrUnchanged),          // median [20 80 20] = 20
		rejected(40, math.NaN(), ErrOutOfRange), // not a number: nothing changes
		rejected(50, 20, ErrUnchanged),          // median [80 20 20] = 20
		ok(60, 20, 19.66),                       // heartbeat: 60 s since the last passed
		rejected(70, 20, ErrUnchanged),          //
		rejected(80, 25, ErrUnchanged),          // median [20 20 25] = 20
		rejected(90, 25, ErrDropped),            // 19.9612: outlier, MAD 0
		rejected(100, 25, ErrDropped),           // 20.46508: outlier, MAD 0
		rejected(110, 25, ErrDropped),           // 21.114196: outlier, MAD 0
		rejected(120, 25, ErrDropped),           // 21.8649772: outlier, 3σ 1.3183
		ok(130, 25, 22.69),                      // 22.68692404; max_rate vs 19.6648 at 80 s: 0.06/s
		ok(140, 25, 23.26),                      // 23.262286828
		ok(150, 25, 23.67),                      // 23.6650407796
		ok(160, 25, 23.95),                      // 23.94696854572
	}
	run(t, exampleSpecs(), steps)
}

func TestChainFault(t *testing.T) {
	// clamp after a median: the fault shows once the median moves.
	run(t, []Spec{{Kind: "median", N: 3}, {Kind: "clamp", Min: -55, Max: 125}, {Kind: "round", Digits: 1}}, []step{
		ok(0, 21.04, 21),                        // [21.04]
		ok(1, 127, 74),                          // [21.04 127]: 148.04/2 = 74.02
		rejected(2, 127, ErrOutOfRange),         // [21.04 127 127]: 127
		rejected(3, math.Inf(1), ErrOutOfRange), // not a number
		rejected(4, 21, ErrOutOfRange),          // [127 127 21]: 127
		ok(5, 21, 21),                           // [127 21 21]: 21
	})
}

func TestChainErrors(t *testing.T) {
	c, err := NewChain(exampleSpecs())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Apply(Sample{Time: at(0), Value: math.NaN()})
	if want := "filter: input is not a finite number: value out of range"; err == nil || err.Error() != want {
		t.Errorf("NaN: got %v; want %q", err, want)
	}
	for i, v := range []float64{20, 20} {
		_, err = c.Apply(Sample{Time: at(float64(i)), Value: v})
	}
	if want := "filter: filters[8] delta(0.1): sample unchanged"; err == nil || err.Error() != want {
		t.Errorf("unchanged: got %v; want %q", err, want)
	}

	c, err = NewChain([]Spec{{Kind: "offset", Offset: 1}, {Kind: "outlier", N: 3, MADs: 3}, {Kind: "clamp", Min: 0, Max: 100}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in     float64
		wantIs error
		want   string
	}{
		{1, nil, ""}, // 2: outlier has 1 sample
		{1, nil, ""}, // 2: outlier has 2 samples
		// 8: outlier [2 2 8]: m 2, MAD 0
		{7, ErrDropped, "filter: filters[1] outlier(3, 3 MADs): sample dropped as implausible"},
		// -4: outlier [2 8 -4]: m 2, |dev| 0 6 6: MAD 6, 3σ 26.7: passes
		{-5, ErrOutOfRange, "filter: filters[2] clamp(0, 100): value out of range"},
	}
	for i, tt := range tests {
		s, err := c.Apply(Sample{Time: at(float64(i)), Value: tt.in})
		switch {
		case tt.wantIs == nil && err != nil:
			t.Errorf("Apply(%g): %v", tt.in, err)
		case tt.wantIs != nil && (!errors.Is(err, tt.wantIs) || err.Error() != tt.want):
			t.Errorf("Apply(%g) = %v; want %q", tt.in, err, tt.want)
		case tt.wantIs != nil && s.Value != tt.in+1:
			// The sample returned is the one the rejecting filter saw.
			t.Errorf("Apply(%g) returned %g; want %g", tt.in, s.Value, tt.in+1)
		}
	}

	// A result that overflows is rejected by the filter that produced it.
	c, err = NewChain([]Spec{{Kind: "offset", Offset: 1e308}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Apply(Sample{Time: at(0), Value: 1e308})
	if want := "filter: filters[0] offset(1e+308): result is not a finite number: value out of range"; !errors.Is(err, ErrOutOfRange) || err.Error() != want {
		t.Errorf("overflow: got %v; want %q", err, want)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		spec Spec
		want string
	}{
		{Spec{Kind: "median"}, "window must be at least 1 sample"},
		{Spec{Kind: "median", N: -1}, "window must be at least 1 sample"},
		{Spec{Kind: "moving_average", N: 3, Window: time.Second}, "window must be a number of samples or a duration, not both (got 3 and 1s)"},
		{Spec{Kind: "median", Window: -time.Second}, "window must be a positive duration, got -1s"},
		{Spec{Kind: "moving_average", N: 10001}, "window must be at most 10000 samples, got 10001"},
		{Spec{Kind: "outlier", MADs: 3}, "window must be at least 1 sample"},
		{Spec{Kind: "outlier", N: 2, MADs: 3}, "window must be at least 3 samples for outlier, got 2"},
		{Spec{Kind: "outlier", N: 7}, "mads must be a positive number, got 0"},
		{Spec{Kind: "outlier", Window: time.Minute, MADs: math.NaN()}, "mads must be a positive number, got NaN"},
		{Spec{Kind: "outlier", N: 7, MADs: math.Inf(1)}, "mads must be a positive number, got +Inf"},
		{Spec{Kind: "ema", Alpha: 1.5}, "alpha must be in (0,1], got 1.5"},
		{Spec{Kind: "ema"}, "alpha must be in (0,1], got 0"},
		{Spec{Kind: "ema", Alpha: math.NaN()}, "alpha must be in (0,1], got NaN"},
		{Spec{Kind: "clamp", Min: -5, Max: -10}, "min -5 must be below max -10"},
		{Spec{Kind: "clamp", Min: 5, Max: 5}, "min 5 must be below max 5"},
		{Spec{Kind: "clamp", Min: math.NaN(), Max: 5}, "min NaN must be below max 5"},
		{Spec{Kind: "offset", Offset: math.Inf(1)}, "offset must be a finite number, got +Inf"},
		{Spec{Kind: "calibrate_linear", Points: [2][2]float64{{10, 0.3}, {10, 99.1}}}, "the two points need different raw values"},
		{Spec{Kind: "calibrate_linear"}, "the two points need different raw values"},
		{Spec{Kind: "calibrate_linear", Points: [2][2]float64{{0, 5}, {100, 5}}}, "the two points need different true values"},
		{Spec{Kind: "calibrate_linear", Points: [2][2]float64{{math.NaN(), 0.3}, {100, 99.1}}}, "the points must be finite numbers, got (NaN, 0.3), (100, 99.1)"},
		{Spec{Kind: "max_rate"}, "rate must be a positive number of units per second, got 0"},
		{Spec{Kind: "max_rate", Rate: math.Inf(1)}, "rate must be a positive number of units per second, got +Inf"},
		{Spec{Kind: "delta", Delta: -0.1}, "delta must be a positive number, got -0.1"},
		{Spec{Kind: "delta"}, "delta must be a positive number, got 0"},
		{Spec{Kind: "heartbeat"}, "heartbeat must be a positive duration, got 0s"},
		{Spec{Kind: "round", Digits: 11}, "digits must be 0..10"},
		{Spec{Kind: "round", Digits: -1}, "digits must be 0..10"},
		{Spec{}, "filter kind is empty"},
		{Spec{Kind: "smooth"}, `unknown filter "smooth"`},
	}
	for _, tt := range tests {
		err := tt.spec.Validate()
		if err == nil || err.Error() != tt.want {
			t.Errorf("%+v.Validate() = %v; want %q", tt.spec, err, tt.want)
		}
		_, err = NewChain([]Spec{{Kind: "offset", Offset: 1}, tt.spec})
		if want := "filters[1]: " + tt.want; err == nil || err.Error() != want {
			t.Errorf("NewChain with %+v = %v; want %q", tt.spec, err, want)
		}
	}
}

func TestValidSpecs(t *testing.T) {
	// One valid spec per kind, in the order of Kinds, and how it prints.
	tests := []struct {
		spec Spec
		want string
	}{
		{Spec{Kind: "median", Window: 30 * time.Second}, "median(30s)"},
		{Spec{Kind: "moving_average", N: 5}, "moving_average(5)"},
		{Spec{Kind: "ema", Alpha: 1}, "ema(1)"},
		{Spec{Kind: "clamp", Min: math.Inf(-1), Max: 125}, "clamp(-Inf, 125)"},
		{Spec{Kind: "offset"}, "offset(0)"},
		{Spec{Kind: "calibrate_linear", Points: [2][2]float64{{0, 0.3}, {100, 99.1}}}, "calibrate_linear((0, 0.3), (100, 99.1))"},
		{Spec{Kind: "outlier", Window: time.Minute, MADs: 3}, "outlier(1m0s, 3 MADs)"},
		{Spec{Kind: "max_rate", Rate: 0.5}, "max_rate(0.5/s)"},
		{Spec{Kind: "delta", Delta: 0.1}, "delta(0.1)"},
		{Spec{Kind: "heartbeat", Every: time.Minute}, "heartbeat(1m0s)"},
		{Spec{Kind: "round", Digits: 0}, "round(0)"},
	}
	var kinds []string
	for _, tt := range tests {
		kinds = append(kinds, tt.spec.Kind)
		if err := tt.spec.Validate(); err != nil {
			t.Errorf("%+v.Validate() = %v", tt.spec, err)
		}
		if got := tt.spec.String(); got != tt.want {
			t.Errorf("String() = %q; want %q", got, tt.want)
		}
		if f := newFilter(tt.spec); f == nil {
			t.Errorf("newFilter(%+v) = nil", tt.spec)
		}
	}
	if !slices.Equal(kinds, Kinds) {
		t.Errorf("Kinds = %v; this test covers %v", Kinds, kinds)
	}
}

func TestNewChain(t *testing.T) {
	c, err := NewChain(exampleSpecs())
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != 11 {
		t.Errorf("Len() = %d; want 11", c.Len())
	}
	want := "median(3) → moving_average(5) → ema(0.3) → clamp(-55, 125) → offset(-0.4) → calibrate_linear((0, 0.3), (100, 99.1)) → outlier(7, 3 MADs) → max_rate(2/s) → delta(0.1) → heartbeat(1m0s) → round(2)"
	if got := c.String(); got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}

	hb := Spec{Kind: "heartbeat", Every: time.Minute}
	d := Spec{Kind: "delta", Delta: 0.1}
	tests := []struct {
		name  string
		specs []Spec
		want  string // "" for no error
	}{
		{"empty", nil, ""},
		{"heartbeat alone", []Spec{hb}, "filters[0]: heartbeat needs a delta filter before it"},
		{"heartbeat before delta", []Spec{{Kind: "round", Digits: 1}, hb, d}, "filters[1]: heartbeat needs a delta filter before it"},
		{"two heartbeats", []Spec{d, hb, hb}, "filters[2]: the delta filter at filters[0] already has a heartbeat"},
		{"a heartbeat per delta", []Spec{d, hb, d, hb}, ""},
		{"invalid delta and heartbeat", []Spec{{Kind: "delta"}, hb}, "filters[0]: delta must be a positive number, got 0\nfilters[1]: heartbeat needs a delta filter before it"},
		{"every problem", []Spec{{Kind: "ema", Alpha: 2}, {Kind: "median", N: 3}, {Kind: "round", Digits: 12}}, "filters[0]: alpha must be in (0,1], got 2\nfilters[2]: digits must be 0..10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewChain(tt.specs)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("NewChain: %v", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Errorf("NewChain = %v; want %q", err, tt.want)
			case tt.want != "" && c != nil:
				t.Errorf("NewChain returned a chain with an error")
			}
		})
	}
}

func TestEmptyChain(t *testing.T) {
	var zero Chain
	empty, err := NewChain(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Chain{&zero, empty} {
		if s, err := c.Apply(Sample{Time: t0, Value: 21.5}); err != nil || s.Value != 21.5 {
			t.Errorf("Apply(21.5) = %g, %v", s.Value, err)
		}
		if _, err := c.Apply(Sample{Time: t0, Value: math.Inf(-1)}); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("Apply(-Inf) = %v; want ErrOutOfRange", err)
		}
		if c.String() != "" || c.Len() != 0 {
			t.Errorf("String() = %q, Len() = %d", c.String(), c.Len())
		}
	}
}

// series returns n samples a second apart: a slow wave with noise and an
// occasional spike, so that every filter of the example chain both passes
// and rejects.
func series(n int) []Sample {
	ss := make([]Sample, n)
	for i := range ss {
		v := 20 + 2*math.Sin(float64(i)/50) + 0.05*float64(i*7919%13-6)
		if i%97 == 0 {
			v += 30
		}
		ss[i] = Sample{Time: t0.Add(time.Duration(i) * time.Second), Value: v}
	}
	return ss
}

func TestApplyDoesNotAllocate(t *testing.T) {
	tests := []struct {
		name  string
		specs []Spec
	}{
		{"median", []Spec{{Kind: "median", N: 5}}},
		{"moving_average", []Spec{{Kind: "moving_average", N: 5}}},
		{"outlier", []Spec{{Kind: "outlier", N: 7, MADs: 3}}},
		{"median duration", []Spec{{Kind: "median", Window: 30 * time.Second}}},
		{"example chain", exampleSpecs()},
	}
	ss := series(1000)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewChain(tt.specs)
			if err != nil {
				t.Fatal(err)
			}
			// Warm up: the windows fill (and a duration window grows).
			for _, s := range ss[:100] {
				c.Apply(s)
			}
			i := 100
			allocs := testing.AllocsPerRun(800, func() {
				c.Apply(ss[i])
				i++
			})
			if allocs != 0 {
				t.Errorf("Apply allocates %v times per sample", allocs)
			}
		})
	}
}

func BenchmarkChain(b *testing.B) {
	c, err := NewChain(exampleSpecs())
	if err != nil {
		b.Fatal(err)
	}
	ss := series(4096)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s := ss[i%len(ss)]
		s.Time = t0.Add(time.Duration(i) * time.Second)
		c.Apply(s)
		i++
	}
}

// TestMeansDoNotOverflow: moving_average, ema and the median of an even
// window are finite whenever their inputs are, even at ±math.MaxFloat64,
// where the plain sum overflows; and a result that does overflow is
// ErrNotFinite, which tells it from clamp's ErrOutOfRange.
func TestMeansDoNotOverflow(t *testing.T) {
	const big = 1.7e308
	for _, spec := range []Spec{
		{Kind: "moving_average", N: 3},
		{Kind: "moving_average", Window: time.Minute},
		{Kind: "ema", Alpha: 0.5},
		{Kind: "median", N: 2},
	} {
		c, err := NewChain([]Spec{spec})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range []float64{big, big, -big, -big, -big, math.MaxFloat64, math.MaxFloat64, 21} {
			s, err := c.Apply(Sample{Time: at(float64(i)), Value: v})
			if err != nil || !finite(s.Value) || math.Abs(s.Value) > math.MaxFloat64 {
				t.Errorf("%s: sample %d (%g) = %g, %v; want a finite mean", spec, i, v, s.Value, err)
			}
		}
	}
	c, _ := NewChain([]Spec{{Kind: "moving_average", N: 2}})
	for i, v := range []float64{big, big} {
		if s, _ := c.Apply(Sample{Time: at(float64(i)), Value: v}); s.Value != big {
			t.Errorf("mean of %g and %g = %g", big, big, s.Value)
		}
	}
	c, _ = NewChain([]Spec{{Kind: "calibrate_linear", Points: [2][2]float64{{0, 0}, {1, 1e300}}}})
	_, err := c.Apply(Sample{Time: at(0), Value: 1e10})
	if !errors.Is(err, ErrNotFinite) || !errors.Is(err, ErrOutOfRange) {
		t.Errorf("overflowing calibration: %v; want ErrNotFinite", err)
	}
	c, _ = NewChain([]Spec{{Kind: "clamp", Min: 0, Max: 1}})
	if _, err := c.Apply(Sample{Time: at(0), Value: 2}); errors.Is(err, ErrNotFinite) {
		t.Errorf("clamp: %v is ErrNotFinite", err)
	}
}
