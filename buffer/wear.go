package buffer

import "time"

// wear counts what the log sends to storage in each hour of the last day,
// so that the page can say what the SD card pays per day now, not the
// average since the start: a long outage a month ago would weigh on that
// for weeks. It needs no timer: an hour's slot is cleared when the first
// count or read after that hour comes.
//
// Hours are the wall clock's (the Log's now). A clock that jumps forward
// (NTP at boot on a Pi without a real-time clock) clears the day; one that
// jumps back counts into the newest hour until the clock catches up. Either
// way only this figure is blurred, and only for a day.
type wear struct {
	hour   int64 // the newest hour counted, in hours since the Unix epoch
	fsyncs [24]uint64
	bytes  [24]uint64
}

// WearStats is what the log sent to storage in the last 24 hours: the
// current hour so far and the 23 before it (less while the log is younger).
type WearStats struct {
	Fsyncs       uint64 `json:"fsyncs"`        // fsync calls, files and directory
	BytesWritten uint64 `json:"bytes_written"` // bytes written to segment files
}

// hourOf returns the hours since the Unix epoch of t, rounded down.
func hourOf(t time.Time) int64 {
	s := t.Unix()
	h := s / 3600
	if s < 0 && s%3600 != 0 {
		h--
	}
	return h
}

// advance moves the newest hour to h, clearing the slots of the hours it
// passes; an h before the newest hour counts as the newest hour.
func (w *wear) advance(h int64) int {
	if h > w.hour {
		for n := min(h-w.hour, 24); n > 0; n-- {
			i := slot(h - n + 1)
			w.fsyncs[i], w.bytes[i] = 0, 0
		}
		w.hour = h
	}
	return slot(w.hour)
}

// slot is the index of hour h in wear's arrays.
func slot(h int64) int { return int((h%24 + 24) % 24) }

// add counts fsyncs and bytes at time now.
func (w *wear) add(now time.Time, fsyncs, bytes uint64) {
	i := w.advance(hourOf(now))
	w.fsyncs[i] += fsyncs
	w.bytes[i] += bytes
}

// day returns the counts of the 24 hours up to now: the slots of the
// hours from 23 before now up to the newest counted. (The slots of the
// hours after the newest counted still hold the day before's counts, until
// advance clears them.)
func (w *wear) day(now time.Time) WearStats {
	var s WearStats
	for h := max(w.hour, hourOf(now)) - 23; h <= w.hour; h++ {
		s.Fsyncs += w.fsyncs[slot(h)]
		s.BytesWritten += w.bytes[slot(h)]
	}
	return s
}

// fsynced counts n fsync calls: in the totals and in the day. Under mu, or
// before the Log is shared (Open).
func (l *Log) fsynced(n int) {
	l.st.Fsyncs += uint64(n)
	l.wear.add(l.now(), uint64(n), 0)
}

// wrote counts n bytes written to segment files, as fsynced.
func (l *Log) wrote(n int64) {
	l.st.BytesWritten += uint64(n)
	l.wear.add(l.now(), 0, uint64(n))
}
