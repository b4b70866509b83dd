package wallclock

import (
	"os"
	"testing"
	"time"
)

func TestNowFollowsSkew(t *testing.T) {
	want := time.Duration(0)
	if Skewed {
		want, _ = time.ParseDuration(os.Getenv("KELVIN_CLOCK_SKEW"))
	}
	d := Now().Sub(time.Now())
	if d < want-time.Minute || d > want+time.Minute {
		t.Fatalf("Now is %v from time.Now, want about %v", d, want)
	}
}
