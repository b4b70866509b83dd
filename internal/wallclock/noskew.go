//go:build !kelvin_skew

package wallclock

// skew is zero in every build but the kelvin_skew test build.
const skew = 0

// Skewed reports whether this is the kelvin_skew test build.
const Skewed = false
