package filter

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Sample is one value at one time, as it moves through a chain. Value is in
// the quantity's fixed unit (°C, %RH, Pa); Time is when it was read.
type Sample struct {
	Time  time.Time
	Value float64
}

// Filter transforms or rejects one sample. On success it returns the sample
// to pass on; on rejection it returns its input and an error matching
// ErrDropped, ErrUnchanged or ErrOutOfRange with errors.Is. A Filter keeps
// state from one sample to the next, so it is not safe for concurrent use:
// build one chain per sensor quantity.
type Filter interface {
	Apply(s Sample) (Sample, error)
}

// Reasons a chain rejects a sample, matched with errors.Is. Chain.Apply wraps
// them with the filter that rejected the sample, without allocating.
var (
	// ErrDropped is a sample rejected as implausible by outlier or
	// max_rate. It is not a sensor fault: the sample is just not published.
	ErrDropped = errors.New("sample dropped as implausible")
	// ErrUnchanged is a sample delta held back because it did not move
	// enough since the last one passed. It is not a fault.
	ErrUnchanged = errors.New("sample unchanged")
	// ErrOutOfRange is a value outside clamp's range, or a value that is not
	// a finite number. The agent treats it as a sensor fault.
	ErrOutOfRange = errors.New("value out of range")
	// ErrNotFinite is the ErrOutOfRange of a NaN or infinite input, or of
	// a filter's result that is not finite (calibrate_linear or offset
	// overflowing): it matches ErrOutOfRange too, and tells it from clamp's.
	ErrNotFinite = fmt.Errorf("not a finite number: %w", ErrOutOfRange)
)

// Kinds lists the filter names users may write, in the order of the docs.
// It is a constant table: do not modify it.
var Kinds = []string{"median", "moving_average", "ema", "clamp", "offset", "calibrate_linear", "outlier", "max_rate", "delta", "heartbeat", "round"}

// MaxWindowSamples is the most samples a window filter keeps: the largest N
// Validate accepts, and the bound of a duration window, which drops its
// oldest samples beyond it.
const MaxWindowSamples = 10000

// MaxDigits is the most decimal places round accepts.
const MaxDigits = 10

// Spec is one filter as the user configured it. Kind selects the filter and
// which fields it reads; the others are ignored. The zero value of a field
// means "not set". A Spec is a plain value, safe to copy and share.
type Spec struct {
	Kind     string        // one of Kinds
	N        int           // window in samples (median, moving_average, outlier) ...
	Window   time.Duration // ... or as a duration (exactly one of N, Window is set)
	Alpha    float64       // ema: weight of the new sample, in (0,1]
	Min, Max float64       // clamp: inclusive range, in the quantity's unit
	Offset   float64       // offset: added to the value, in the quantity's unit
	Points   [2][2]float64 // calibrate_linear: {{raw1,true1},{raw2,true2}}
	MADs     float64       // outlier: threshold in scaled median absolute deviations (conventionally 3)
	Rate     float64       // max_rate: units per second
	Delta    float64       // delta: minimum change to publish, in the quantity's unit
	Every    time.Duration // heartbeat: longest time delta may hold back samples
	Digits   int           // round: decimal places, 0..MaxDigits
}

// Validate returns nil or an error whose message says what is wrong with
// the spec in user terms, without a prefix, e.g. "alpha must be in (0,1],
// got 1.5". It checks only the fields Kind uses.
func (s Spec) Validate() error {
	switch s.Kind {
	case "median", "moving_average", "outlier":
		if err := s.validateWindow(); err != nil {
			return err
		}
		if s.Kind == "outlier" {
			if s.Window == 0 && s.N < 3 {
				return fmt.Errorf("window must be at least 3 samples for outlier, got %d", s.N)
			}
			if !(s.MADs > 0) || math.IsInf(s.MADs, 0) {
				return fmt.Errorf("mads must be a positive number, got %s", num(s.MADs))
			}
		}
	case "ema":
		if !(s.Alpha > 0 && s.Alpha <= 1) {
			return fmt.Errorf("alpha must be in (0,1], got %s", num(s.Alpha))
		}
	case "clamp":
		if !(s.Min < s.Max) {
			return fmt.Errorf("min %s must be below max %s", num(s.Min), num(s.Max))
		}
	case "offset":
		if !finite(s.Offset) {
			return fmt.Errorf("offset must be a finite number, got %s", num(s.Offset))
		}
	case "calibrate_linear":
		for _, p := range s.Points {
			if !finite(p[0]) || !finite(p[1]) {
				return fmt.Errorf("the points must be finite numbers, got %s", pointsString(s.Points))
			}
		}
		if s.Points[0][0] == s.Points[1][0] {
			return errors.New("the two points need different raw values")
		}
		if s.Points[0][1] == s.Points[1][1] {
			return errors.New("the two points need different true values")
		}
	case "max_rate":
		if !(s.Rate > 0) || math.IsInf(s.Rate, 0) {
			return fmt.Errorf("rate must be a positive number of units per second, got %s", num(s.Rate))
		}
	case "delta":
		if !(s.Delta > 0) || math.IsInf(s.Delta, 0) {
			return fmt.Errorf("delta must be a positive number, got %s", num(s.Delta))
		}
	case "heartbeat":
		if s.Every <= 0 {
			return fmt.Errorf("heartbeat must be a positive duration, got %s", s.Every)
		}
	case "round":
		if s.Digits < 0 || s.Digits > MaxDigits {
			return errors.New("digits must be 0..10")
		}
	case "":
		return errors.New("filter kind is empty")
	default:
		return fmt.Errorf("unknown filter %q", s.Kind)
	}
	return nil
}

func (s Spec) validateWindow() error {
	switch {
	case s.N != 0 && s.Window != 0:
		return fmt.Errorf("window must be a number of samples or a duration, not both (got %d and %s)", s.N, s.Window)
	case s.Window < 0:
		return fmt.Errorf("window must be a positive duration, got %s", s.Window)
	case s.Window > 0:
		return nil
	case s.N < 1:
		return errors.New("window must be at least 1 sample")
	case s.N > MaxWindowSamples:
		return fmt.Errorf("window must be at most %d samples, got %d", MaxWindowSamples, s.N)
	}
	return nil
}

// String returns the spec as the chain shows it, e.g. "median(3)",
// "median(30s)", "clamp(-55, 125)" or "outlier(7, 3 MADs)".
func (s Spec) String() string {
	switch s.Kind {
	case "median", "moving_average":
		return s.Kind + "(" + s.windowString() + ")"
	case "outlier":
		return "outlier(" + s.windowString() + ", " + num(s.MADs) + " MADs)"
	case "ema":
		return "ema(" + num(s.Alpha) + ")"
	case "clamp":
		return "clamp(" + num(s.Min) + ", " + num(s.Max) + ")"
	case "offset":
		return "offset(" + num(s.Offset) + ")"
	case "calibrate_linear":
		return "calibrate_linear(" + pointsString(s.Points) + ")"
	case "max_rate":
		return "max_rate(" + num(s.Rate) + "/s)"
	case "delta":
		return "delta(" + num(s.Delta) + ")"
	case "heartbeat":
		return "heartbeat(" + s.Every.String() + ")"
	case "round":
		return "round(" + strconv.Itoa(s.Digits) + ")"
	}
	return strconv.Quote(s.Kind)
}

func (s Spec) windowString() string {
	if s.Window > 0 {
		return s.Window.String()
	}
	return strconv.Itoa(s.N)
}

func pointsString(p [2][2]float64) string {
	return "(" + num(p[0][0]) + ", " + num(p[0][1]) + "), (" + num(p[1][0]) + ", " + num(p[1][1]) + ")"
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
