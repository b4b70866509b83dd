// Package ctxsleep is the one sleep Kelvin's drivers and buffer use: a wait
// that ends early when its context is done. periph's drivers sleep with
// time.Sleep and ignore ctx; ours wait through Sleep.
package ctxsleep

import (
	"context"
	"time"
)

// Sleep waits for d or until ctx is done, whichever comes first. It returns
// ctx.Err() when ctx is done (also when it already was, even for d <= 0),
// and nil when d passed. Safe for concurrent use.
func Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil || d <= 0 {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
