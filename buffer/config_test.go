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
	c := Config{Sync: "x", MaxBytes: 1000, MaxAge: -time.Second, Full: "never", HotDir: "run/kelvin", HotMaxBytes: 1000, DrainRate: -1, SegmentBytes: 10}
	want := []string{
		`sync: want a duration like "1s" or "always", got "x"`,
		`max_bytes: want at least 64KiB, got 1000`,
		`max_age: want a positive duration, got -1s`,
		`full: want "drop_oldest" or "block_newest", got "never"`,
		`drain_rate: want readings per second, 0 or more (0 is unlimited), got -1`,
		`hot_dir: want "auto", "off" or an absolute directory, got "run/kelvin"`,
		`hot_max_bytes: want 0 (auto) or at least 8KiB (two segments), got 1000`,
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
