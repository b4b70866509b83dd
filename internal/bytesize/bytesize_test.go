package bytesize

import (
	"strings"
	"testing"
)

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
