package agent

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/kelvin-gw/kelvin/publish"
)

// Restart delays of a part that failed: restartMin doubling to restartMax,
// each drawn from [d/2, d] so that parts (and gateways) failing together do
// not retry in lock-step. A part that ran for restartReset before failing
// starts again from restartMin.
const (
	restartMin   = time.Second
	restartMax   = 30 * time.Second
	restartReset = time.Minute
)

// stateFailed is an output's or input's state while it is down after a
// failure, waiting to be restarted.
const stateFailed = "failed"

// part is one output's or input's goroutines, run by supervise: each lives
// and fails alone.
type part struct {
	kind, name string // "output", "mqtt"

	mu       sync.Mutex
	failed   bool // down, waiting to be restarted
	lastErr  string
	errTime  time.Time
	restarts uint64
}

// overlay marks st with the part's failure: a failed part is down whatever
// its connection says.
func (p *part) overlay(st *publish.Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st.Restarts = p.restarts
	if p.failed {
		st.State, st.Connected = stateFailed, false
		st.LastError, st.ErrorTime = p.lastErr, p.errTime
	}
}

// restartDelay is the wait before restart n (1, 2, …) given jitter, which
// returns a duration in [d/2, d].
func restartDelay(n int, jitter func(time.Duration) time.Duration) time.Duration {
	d := restartMin << min(n-1, 16)
	return jitter(min(d, restartMax))
}

// jitterHalf returns a random duration in [d/2, d].
func jitterHalf(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }

// supervise runs fn until ctx is done. When fn returns an error (or nil, or
// panics) before that, the failure is logged at once, the part shows as
// failed, and fn is started again after restartDelay. Other parts are not
// touched.
func supervise(ctx context.Context, p *part, fn func(context.Context) error, log *slog.Logger) {
	fails := 0
	for {
		start := time.Now()
		err := runPart(ctx, fn)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = fmt.Errorf("stopped without an error")
		}
		if time.Since(start) >= restartReset {
			fails = 0
		}
		fails++
		wait := restartDelay(fails, jitterHalf)
		p.mu.Lock()
		p.failed, p.lastErr, p.errTime = true, err.Error(), time.Now()
		p.mu.Unlock()
		log.Error(p.kind+" failed, restarting it", "err", err, "failures", fails, "restart_in_seconds", wait.Seconds())
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		p.mu.Lock()
		p.failed = false
		p.restarts++
		p.mu.Unlock()
		log.Info(p.kind+" restarted", "restarts", fails)
	}
}

// runPart calls fn, turning a panic into an error.
func runPart(ctx context.Context, fn func(context.Context) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v\n%s", v, debug.Stack())
		}
	}()
	return fn(ctx)
}
