// Package bytesize is a number of bytes as a config value: "64MiB",
// "500 MB" or a plain "1048576" in YAML.
//
// It is its own package so that a config section can take a size without
// importing the buffer, whose buffer.Size is an alias of it.
package bytesize

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Size is a number of bytes. In YAML it is written as a plain number of
// bytes ("1048576") or with a decimal (kB, MB, GB, TB) or binary (KiB, MiB,
// GiB, TiB) unit, case-insensitive, with an optional space ("64MiB",
// "500 MB", "1.5GiB").
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   float64
}{
	// Longest suffixes first, so "mib" is not read as "b".
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"b", 1},
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Size) UnmarshalText(text []byte) error {
	v, err := ParseSize(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseSize parses a size as described on Size.
func ParseSize(text string) (Size, error) {
	t := strings.ToLower(strings.TrimSpace(text))
	mult := 1.0
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	bad := fmt.Errorf("want a size like \"64MiB\", \"500MB\" or \"1048576\", got %q", text)
	if t == "" || strings.ContainsAny(t, "+-") {
		return 0, bad
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil && mult == 1 {
		return Size(n), nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f*mult >= math.MaxInt64 {
		return 0, bad
	}
	return Size(math.Round(f * mult)), nil
}

// MarshalText implements encoding.TextMarshaler with String.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// String returns s in the largest binary unit that divides it exactly
// ("64MiB"), or as a plain number of bytes.
func (s Size) String() string {
	for _, u := range []struct {
		name string
		mult int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && int64(s)%u.mult == 0 {
			return strconv.FormatInt(int64(s)/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}
