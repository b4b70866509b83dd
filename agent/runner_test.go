package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kelvin-gw/kelvin/filter"
	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/reading"
	"github.com/kelvin-gw/kelvin/sensors"
)

// scripted is a wired sensor that returns the next of its values, stamped
// with the test's clock.
type scripted struct {
	vals []float64
	now  func() time.Time
}

func (s *scripted) Read(context.Context) ([]reading.Reading, error) {
	v := s.vals[0]
	s.vals = s.vals[1:]
	return []reading.Reading{{Quantity: reading.Temperature, Raw: v, Time: s.now()}}, nil
}

// testRunner is a runner of a wired sensor with filters, on a clock the
// test moves, that publishes into *out.
func testRunner(t *testing.T, specs []filter.Spec, vals ...float64) (r *runner, step func() runStatus, out *[]reading.Reading) {
	t.Helper()
	now := wallclock.Now()
	clock := func() time.Time { return now }
	cfg := &SensorConfig{ID: "s", Type: "sim", Interval: 10 * time.Second, Filters: Filters{All: specs}}
	out = new([]reading.Reading)
	sensor := &scripted{vals: vals, now: clock}
	r, err := newRunner(cfg, func() (sensors.Sensor, error) { return sensor, nil },
		func(rs []reading.Reading) { *out = append(*out, rs...) }, clock, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	step = func() runStatus {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.readOnce(ctx)
		now = now.Add(cfg.Interval)
		st := r.status()
		return runStatus{st.State, st.Reason, st.Error}
	}
	return r, step, out
}

type runStatus struct{ state, reason, err string }

// TestSensorHeldBackIsNotOK: a sensor whose readings a data-quality filter
// drops one after the other (here max_rate, against noise no level can be
// found in) is faulty with reason held_back after three intervals, and ok
// again as soon as a reading passes.
func TestSensorHeldBackIsNotOK(t *testing.T) {
	_, step, out := testRunner(t, []filter.Spec{{Kind: "max_rate", Rate: 2}},
		20, 1000, 2000, 1000, 2000, 1000, 21)
	if st := step(); st.state != stateOK {
		t.Fatalf("first reading: %+v", st)
	}
	for i := range 3 { // dropped for 0, 10, 20 s
		if st := step(); st.state != stateOK {
			t.Fatalf("drop %d: %+v, want ok within three intervals", i+1, st)
		}
	}
	st := step() // dropped for 30 s: three intervals
	if st.state != stateFaulty || st.reason != "held_back" || !strings.Contains(st.err, "4 readings in a row for 30s, the last by filter: filters[0] max_rate(2/s)") {
		t.Fatalf("after three intervals of drops: %+v, want faulty, held_back, with what and how long", st)
	}
	if st := step(); st.state != stateFaulty {
		t.Fatalf("still dropping: %+v", st)
	}
	if st := step(); st.state != stateOK || len(*out) != 2 {
		t.Fatalf("a reading passed: %+v, %d published; want ok and 2", st, len(*out))
	}
}

// TestSensorRefusesImplausibleValues: a wired sensor's value that is not
// a measurement of its quantity is a bad_data fault, never published; an
// overflow in a filter is reported as that, not as the clamp range.
func TestSensorRefusesImplausibleValues(t *testing.T) {
	_, step, out := testRunner(t, nil, 21, 1e308, -300, 22)
	step()
	for _, want := range []string{"temperature 1e+308 °C is outside the plausible -273.15..5000 °C", "temperature -300 °C is outside"} {
		if st := step(); st.state != stateFaulty || st.reason != "bad_data" || !strings.Contains(st.err, want) {
			t.Errorf("%+v, want faulty, bad_data, %q", st, want)
		}
	}
	step()
	if len(*out) != 2 || (*out)[1].Raw != 22 {
		t.Errorf("published %+v, want 21 and 22", *out)
	}

	_, step, _ = testRunner(t, []filter.Spec{{Kind: "calibrate_linear", Points: [2][2]float64{{0, 0}, {1, 1.7e308}}}}, 21)
	st := step()
	if st.state != stateFaulty || strings.Contains(st.err, "clamp") || !strings.Contains(st.err, "result is not a finite number") {
		t.Errorf("an overflowing calibration: %+v, want faulty with the filter's reason, not the clamp range", st)
	}
	_, step, out = testRunner(t, []filter.Spec{{Kind: "calibrate_linear", Points: [2][2]float64{{0, 0}, {1, 1e10}}}}, 21)
	st = step()
	if st.state != stateFaulty || st.reason != "out_of_range" || !strings.Contains(st.err, "raw 21 after the filters: temperature 2.1e+11 °C is outside the plausible") || len(*out) != 0 {
		t.Errorf("a calibration to an implausible value: %+v, %d published; want faulty, out_of_range", st, len(*out))
	}
}

// stamped is a sensor that records when it was read.
type stamped struct {
	mu    sync.Mutex
	times []time.Time
}

func (s *stamped) Read(context.Context) ([]reading.Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.times = append(s.times, now)
	return []reading.Reading{{Quantity: reading.Temperature, Raw: float64(len(s.times)), Time: now}}, nil
}

// TestRunnersShareTheGrid: runners with the same interval started at
// different moments read at the same instants, those of the agent's start,
// so that the process wakes once per tick for all of them.
func TestRunnersShareTheGrid(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := slog.New(slog.DiscardHandler)
		start := time.Now()
		ctx, cancel := context.WithCancel(t.Context())
		var sensors2 [2]*stamped
		var wg sync.WaitGroup
		for i := range sensors2 {
			s := &stamped{}
			sensors2[i] = s
			cfg := &SensorConfig{ID: fmt.Sprint("s", i), Type: "sim", Interval: time.Second}
			r, err := newRunner(cfg, func() (sensors.Sensor, error) { return s, nil }, func([]reading.Reading) {}, time.Now, log)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond) // each starts later (fake time)
			wg.Go(func() { r.run(ctx, start) })
		}
		time.Sleep(3500 * time.Millisecond)
		cancel()
		wg.Wait()
		a, b := sensors2[0].times, sensors2[1].times
		// Each missed the first tick (started 300 and 600 ms late) and read
		// at once; after that both read on the grid of start.
		if len(a) != 5 || len(b) != 5 {
			t.Fatalf("reads %v and %v, want 5 each", a, b)
		}
		for i := 1; i < 5; i++ {
			want := start.Add(time.Duration(i) * time.Second)
			if !a[i].Equal(want) || !b[i].Equal(want) {
				t.Errorf("read %d at %v and %v, want both at %v", i, a[i].Sub(start), b[i].Sub(start), want.Sub(start))
			}
		}
	})
}
