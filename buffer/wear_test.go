package buffer

import (
	"testing"
	"time"
)

func TestWearDay(t *testing.T) {
	start := t0.Truncate(time.Hour)
	var w wear
	at := func(h float64) time.Time { return start.Add(time.Duration(h * float64(time.Hour))) }
	want := func(when string, now time.Time, fsyncs, bytes uint64) {
		t.Helper()
		if got := w.day(now); got != (WearStats{Fsyncs: fsyncs, BytesWritten: bytes}) {
			t.Errorf("%s: day = %+v, want %d fsyncs and %d bytes", when, got, fsyncs, bytes)
		}
	}
	want("nothing counted", at(0), 0, 0)
	w.add(at(0.5), 2, 100)
	w.add(at(0.9), 1, 50)
	want("within the hour", at(0.95), 3, 150)
	w.add(at(5.5), 4, 1000)
	want("five hours on", at(5.6), 7, 1150)
	want("read 23 h after the first count, nothing counted since", at(23.9), 7, 1150)
	want("the first hour is more than a day old", at(24.1), 4, 1000)
	want("read without a count: the 23 hours of nothing in between", at(28.9), 4, 1000)
	want("the hour of the last count is more than 23 hours before this one", at(29.1), 0, 0)
	w.add(at(30), 1, 10)
	want("counted again after a day of nothing", at(30.1), 1, 10)

	// A clock that jumps back counts into the newest hour; one that jumps
	// forward by more than a day clears it.
	w.add(at(10), 1, 1)
	want("counted at a time before the newest hour", at(30.2), 2, 11)
	want("read at a time before the newest hour", at(3), 2, 11)
	w.add(at(24*400), 5, 5)
	want("counted a year later", at(24*400), 5, 5)
}

func TestWearYearOne(t *testing.T) {
	// A clock that reads year 1 (hours before the Unix epoch) must not
	// index out of the day's slots.
	var w wear
	year1 := time.Time{}.Add(90 * time.Minute)
	w.add(year1, 1, 2)
	w.add(year1.Add(3*time.Hour), 1, 2)
	if got := w.day(year1.Add(3 * time.Hour)); got != (WearStats{Fsyncs: 2, BytesWritten: 4}) {
		t.Errorf("day = %+v, want 2 fsyncs and 4 bytes", got)
	}
}

// TestStatsLastDay checks the log's own counts: its fsyncs and bytes of
// the last 24 hours follow the clock, while the totals since Open stay.
func TestStatsLastDay(t *testing.T) {
	clk := newClock()
	e := newEnv(t, Config{}, options{})
	e.now = clk.Now
	e.reopen()
	e.append(many("air", 0, 10)...)
	e.sync()
	st := e.l.Stats()
	if st.Fsyncs == 0 || st.BytesWritten == 0 {
		t.Fatalf("nothing written: %+v", st)
	}
	if st.LastDay != (WearStats{Fsyncs: st.Fsyncs, BytesWritten: st.BytesWritten}) {
		t.Fatalf("last day %+v, want the totals since Open: %d fsyncs, %d bytes", st.LastDay, st.Fsyncs, st.BytesWritten)
	}
	clk.Add(25 * time.Hour)
	e.append(many("air", 10, 1)...)
	e.sync()
	st2 := e.l.Stats()
	if d := st2.LastDay; d.Fsyncs != st2.Fsyncs-st.Fsyncs || d.BytesWritten != st2.BytesWritten-st.BytesWritten || d.BytesWritten == 0 {
		t.Fatalf("a day later: last day %+v, want only the new commit's %d fsyncs and %d bytes",
			d, st2.Fsyncs-st.Fsyncs, st2.BytesWritten-st.BytesWritten)
	}
}
