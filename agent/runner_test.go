package agent

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
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
