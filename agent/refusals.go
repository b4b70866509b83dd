package agent

import (
	"log/slog"
	"sync"
	"time"
)

// refusalSummaryEvery is how often a buffer that keeps refusing readings
// says so again.
const refusalSummaryEvery = time.Minute

// refusals follows the buffer refusing readings (a full disk, a full
// budget with full: block_newest): it logs the change of state once, a
// summary every refusalSummaryEvery while it lasts and the recovery once,
// rather than a line per refused reading; and it tells /readyz. Safe for
// concurrent use.
type refusals struct {
	log   *slog.Logger
	now   func() time.Time // monotonic time for the summaries, not readings
	every time.Duration

	mu      sync.Mutex
	reason  string    // the last refusal's error; empty while storing
	since   time.Time // start of the refusal
	lastLog time.Time
	count   uint64 // readings refused since since
	logged  uint64 // of count, already in a log line
}

func newRefusals(log *slog.Logger) *refusals {
	return &refusals{log: log, now: time.Now, every: refusalSummaryEvery}
}

// refused records n readings the buffer refused with err.
func (f *refusals) refused(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	f.count += uint64(n)
	if f.reason == "" {
		f.reason, f.since, f.lastLog, f.logged = err.Error(), now, now, f.count
		f.log.Warn("buffer refusing readings: they are not stored until it takes them again (summary every minute)",
			"err", err, "readings", n)
		return
	}
	f.reason = err.Error()
	if now.Sub(f.lastLog) >= f.every {
		f.log.Warn("buffer still refusing readings", "err", err, "refused", f.count-f.logged,
			"refused_total", f.count, "for_seconds", now.Sub(f.since).Seconds())
		f.lastLog, f.logged = now, f.count
	}
}

// stored records that the buffer took readings again.
func (f *refusals) stored() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reason == "" {
		return
	}
	f.log.Info("buffer storing readings again", "refused_total", f.count,
		"for_seconds", f.now().Sub(f.since).Seconds())
	f.reason, f.count, f.logged = "", 0, 0
}

// state returns why readings are being refused; empty while they are not.
func (f *refusals) state() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reason
}
