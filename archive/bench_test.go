package archive

import (
	"testing"
	"time"
)

// BenchmarkQueryWeek: /api/history's cost for the page's 7-day window (every
// series, 10-minute steps) over a full week of 8 series, a block every 15
// minutes: the day files of the window are read and decoded per query.
func BenchmarkQueryWeek(b *testing.B) {
	c := newClock(t0)
	a, err := Open(b.TempDir(), Options{Now: c.now})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	const minutes = 7 * 24 * 60
	for m := range minutes {
		at := time.Duration(m) * time.Minute
		c.set(t0.Add(at))
		for i := range 8 {
			a.Add(rd(string(rune('a'+i)), "temperature", float64(m%50), at))
		}
		if (m+1)%15 == 0 {
			a.Flush()
		}
	}
	a.Flush()
	to := t0.Add(minutes * time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		s, err := a.Query("", to.Add(-7*24*time.Hour), to, 10*time.Minute)
		if err != nil || len(s) != 8 || len(s[0].Buckets) < 1000 {
			b.Fatalf("%d series, %v", len(s), err)
		}
	}
}
