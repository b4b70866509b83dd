package buffer

import (
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	want := Config{Sync: "1s", MaxBytes: 64 << 20, MaxAge: 7 * 24 * time.Hour, Full: "drop_oldest", HotDir: "auto", SegmentBytes: 4 << 20}
	if c != want {
		t.Fatalf("defaults = %+v, want %+v", c, want)
	}
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("defaults do not validate: %v", errs)
	}
}

func TestConfigValidate(t *testing.T) {
	c := Config{Sync: "x", MaxBytes: 1000, MaxAge: -time.Second, Full: "never", HotDir: "run/kelvin", DrainRate: -1, SegmentBytes: 10}
	want := []string{
		`sync: want a duration like "1s" or "always", got "x"`,
		`max_bytes: want at least 64KiB, got 1000`,
		`max_age: want a positive duration, got -1s`,
		`full: want "drop_oldest" or "block_newest", got "never"`,
		`drain_rate: want readings per second, 0 or more (0 is unlimited), got -1`,
		`hot_dir: want "auto", "off" or an absolute directory, got "run/kelvin"`,
		`segment_bytes: want at least 4096, got 10`,
	}
	errs := c.Validate()
	if len(errs) != len(want) {
		t.Fatalf("%d errors, want %d: %v", len(errs), len(want), errs)
	}
	for i, err := range errs {
		if err.Error() != want[i] {
			t.Errorf("error %d = %q, want %q", i, err, want[i])
		}
	}
	for _, ok := range []string{"always", "250ms", "1s", "1m"} {
		c := Config{Sync: ok}
		c.SetDefaults()
		if errs := c.Validate(); len(errs) != 0 {
			t.Errorf("sync %q: %v", ok, errs)
		}
	}
	for _, bad := range []string{"0s", "-1s", "never", "1"} {
		c := Config{Sync: bad}
		c.SetDefaults()
		if errs := c.Validate(); len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "sync: ") {
			t.Errorf("sync %q: %v", bad, errs)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Size
	}{
		{"64MiB", 64 << 20}, {"500MB", 500e6}, {"1GiB", 1 << 30}, {"1048576", 1 << 20},
		{"64 MiB", 64 << 20}, {"64mib", 64 << 20}, {"1.5GiB", 3 << 29}, {"10kB", 10e3},
		{"10KiB", 10 << 10}, {"100B", 100}, {"2TB", 2e12}, {"0", 0},
	} {
		got, err := ParseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "1 ZiB", "lots", "1e400", "0x10", "+5"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q): want an error", bad)
		} else if !strings.Contains(err.Error(), `want a size like "64MiB", "500MB" or "1048576"`) {
			t.Errorf("ParseSize(%q): %v", bad, err)
		}
	}
	for _, tc := range []struct {
		s    Size
		want string
	}{{64 << 20, "64MiB"}, {1 << 30, "1GiB"}, {1000, "1000"}, {0, "0"}, {3 << 10, "3KiB"}} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("Size(%d).String() = %q, want %q", tc.s, got, tc.want)
		}
	}
}

// TestSizeText: sizes decode from YAML through UnmarshalText, whichever
// decoder calls it (the agent's decodes whole files; see
// agent.TestSectionsDecode).
func TestSizeText(t *testing.T) {
	for _, src := range []string{"1048576", "1MiB"} {
		var s Size
		if err := s.UnmarshalText([]byte(src)); err != nil || s != 1<<20 {
			t.Errorf("%q: %d, %v", src, s, err)
		}
	}
	var bad Size
	if err := bad.UnmarshalText([]byte("lots")); err == nil || !strings.Contains(err.Error(), `want a size like "64MiB", "500MB" or "1048576", got "lots"`) {
		t.Fatalf("bad size: %v", err)
	}
}
