//go:build kelvin_skew

package wallclock

import (
	"fmt"
	"os"
	"time"
)

// skew is $KELVIN_CLOCK_SKEW, read once when the test binary starts.
var skew = func() time.Duration {
	s := os.Getenv("KELVIN_CLOCK_SKEW")
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(fmt.Sprintf("wallclock: KELVIN_CLOCK_SKEW=%q: %v", s, err))
	}
	return d
}()

// Skewed reports that this is the skewed test build.
const Skewed = true
