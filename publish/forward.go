package publish

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// ForwardOptions tune Forward; zero values take the defaults.
type ForwardOptions struct {
	// Batch is the most readings passed to one Publish call; default 256.
	Batch int
	// MinBackoff is the first retry delay after a failed Publish; default
	// 500ms.
	MinBackoff time.Duration
	// MaxBackoff caps the retry delay, which doubles after each failure of a
	// streak (with jitter: each delay is drawn from [d/2, d]); default 5s,
	// so that a remote side that is back is used again within seconds.
	MaxBackoff time.Duration
}

// Defaults of ForwardOptions.
const (
	DefaultBatch      = 256
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
)

func (o ForwardOptions) withDefaults() ForwardOptions {
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	return o
}

// Waiter is implemented by outputs that can say when they are connected:
// WaitConnected returns a channel closed when the output is connected, or
// its connection state changed (then Status tells which).
type Waiter interface {
	WaitConnected() <-chan struct{}
}

// Forward moves readings from src to out until ctx is done, then returns
// nil: src.Next(ctx, Batch), out.Publish(ctx, batch), src.Ack(len(batch)).
//
// A failed Publish is retried with what src.Next returns again (the same
// batch, or for a lossy queue what is left of it) after a backoff that starts
// at MinBackoff and doubles, with jitter, up to MaxBackoff; a success resets
// it. An output that implements Waiter and is not connected is retried as
// soon as it connects, without waiting for the rest of the backoff. A
// failure streak is logged once at warn when it starts and once at info
// when the output recovers; each retry in between is logged at debug. A
// streak that begins while an output that implements Waiter says it is
// not connected is logged at debug only: the output logs its connection's
// loss and return itself (and at the start, the first readings always come
// before the connection). Forward
// returns an error only when src fails (Next with ctx not done, or Ack). log
// may be nil; the caller names the output in it. One Forward per Source.
func Forward(ctx context.Context, src Source, out Output, opts ForwardOptions, log *slog.Logger) error {
	opts = opts.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	var (
		failures  int       // consecutive failed Publish calls
		failSince time.Time // start of the failure streak
		quiet     bool      // the streak began with the output not connected: it says why itself
		everUp    bool      // a Publish succeeded
		backoff   = opts.MinBackoff
	)
	for {
		batch, err := src.Next(ctx, opts.Batch)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("publish: next for %s: %w", out.Name(), err)
		}
		if len(batch) == 0 {
			continue
		}
		err = out.Publish(ctx, batch)
		if err != nil {
			if ctx.Err() != nil {
				// An interrupted batch is not acknowledged: a durable
				// source sends it again on the next start.
				return nil
			}
			failures++
			delay := backoff/2 + rand.N(backoff/2+1)
			if failures == 1 {
				failSince = time.Now()
				_, waiter := out.(Waiter)
				quiet = waiter && !out.Status().Connected
				switch {
				case quiet && !everUp:
					log.Debug("publish waiting for the first connection", "err", err, "readings", len(batch))
				case quiet:
					log.Debug("publish waiting for the connection", "err", err, "readings", len(batch))
				default:
					log.Warn("publish failed, retrying", "err", err, "readings", len(batch),
						"retry_in_seconds", delay.Seconds())
				}
			} else {
				log.Debug("publish retry failed", "err", err, "attempt", failures,
					"retry_in_seconds", delay.Seconds())
			}
			backoff = min(2*backoff, opts.MaxBackoff)
			// An output that is connecting says when it is up: retry
			// then, not a backoff later (the first readings after a start
			// would otherwise wait up to MinBackoff).
			var up <-chan struct{}
			if w, ok := out.(Waiter); ok {
				switch {
				case !out.Status().Connected:
					up = w.WaitConnected()
				case failures == 1:
					// Failed while connected: most often a batch caught
					// by the connection coming up under it. Retry once
					// at once; a real fault fails again and backs off.
					closed := make(chan struct{})
					close(closed)
					up = closed
				}
			}
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-up:
				t.Stop()
			case <-ctx.Done():
				t.Stop()
				return nil
			}
			continue
		}
		everUp = true
		if failures > 0 {
			if !quiet {
				log.Info("publish recovered", "failed_attempts", failures,
					"outage_seconds", time.Since(failSince).Seconds())
			}
			failures, backoff = 0, opts.MinBackoff
		}
		if err := src.Ack(len(batch)); err != nil {
			return fmt.Errorf("publish: ack for %s: %w", out.Name(), err)
		}
	}
}
