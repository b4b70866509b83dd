package reading

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// ErrImplausible is a value that cannot be a measurement of its quantity:
// not a finite number, or outside the quantity's plausible range.
var ErrImplausible = errors.New("implausible value")

// Plausible ranges, in each quantity's fixed unit. They are physical
// bounds with a generous margin, not the range of any one sensor (a clamp
// filter narrows them per sensor):
//
//   - temperature: −273.15 °C (absolute zero: nothing is colder) to
//     5000 °C (above the melting point of every material a contact sensor
//     is made of, tungsten's 3422 °C, with room for pyrometers).
//   - humidity: −10 to 110 %RH: relative humidity is 0..100 by definition;
//     the margin lets through what a device that does not crop its
//     conversion reports near the ends.
//   - pressure: 0 to 10 MPa (100 bar, 1e7 Pa): an absolute pressure is
//     never negative, and 100 bar is far above any weather or process
//     sensor a gateway reads.
//
// A quantity without a range here only has to be finite.
var plausible = map[string][2]float64{
	Temperature: {-273.15, 5000},
	Humidity:    {-10, 110},
	Pressure:    {0, 1e7},
}

// PlausibleRange returns the plausible range of quantity in its unit, and
// false when it has none.
func PlausibleRange(quantity string) (lo, hi float64, ok bool) {
	r, ok := plausible[quantity]
	return r[0], r[1], ok
}

// CheckPlausible returns nil when v can be a measurement of quantity (in
// its fixed unit), else an error matching ErrImplausible that says why,
// e.g. "temperature 1e+308 °C is outside the plausible -273.15..5000 °C:
// implausible value". Non-finite values are always implausible.
func CheckPlausible(quantity string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%s %v is not a finite number: %w", quantity, v, ErrImplausible)
	}
	lo, hi, ok := PlausibleRange(quantity)
	if ok && (v < lo || v > hi) {
		u := UnitOf(quantity)
		return fmt.Errorf("%s %s %s is outside the plausible %s..%s %s: %w", quantity, g(v), u, g(lo), g(hi), u, ErrImplausible)
	}
	return nil
}

func g(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }
