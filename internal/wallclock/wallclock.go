// Package wallclock is the wall clock Kelvin's parts read when they are not
// given one: time.Now, except in a test build with the tag kelvin_skew,
// where it is time.Now moved by $KELVIN_CLOCK_SKEW (a Go duration, e.g.
// "9600h" for 400 days ahead).
//
// The skewed build exists so that the test suite can prove it does not
// depend on the calendar: scripts/test.sh runs the packages with age,
// expiry, retention and clock-sanity logic once more with the clock far
// ahead. Tests that stamp readings "now" use Now, not time.Now, so that
// both sides of every comparison read the same clock.
package wallclock

import "time"

// Now returns the current wall-clock time (see the package doc for the
// test build that moves it). Safe for concurrent use.
func Now() time.Time { return time.Now().Add(skew) }
