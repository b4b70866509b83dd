package agent

import (
	"context"
	"errors"
	"log/slog"
)

// Serve runs cfg like Run, and on every value from reload loads a new
// config with load and switches to it: a config that does not load or
// validate is logged and the running agent is left alone; a valid one stops
// the running agent in the usual order (its buffered readings stay on disk,
// its outputs' cursors with them) and starts a new one on the new config,
// which resumes from the buffer (the cursor of an output the new config
// leaves out is dropped, with its unsent readings: buffer.Log.SetReaders). Should the new config fail to start (a port
// in use), Serve logs it and goes back to the previous config.
//
// Serve returns when ctx is done (nil after a clean shutdown) or when an
// agent fails with no previous config to go back to.
func Serve(ctx context.Context, cfg *Config, reload <-chan struct{}, load func() (*Config, error), opts Options) error {
	var prev *Config // the last config known to start, while trying a new one
	for {
		a, err := start(cfg, opts)
		if err != nil {
			if prev == nil {
				return err
			}
			reloadLog(a, opts).Error("the new config did not start; going back to the previous one", "config", cfg.File, "err", err)
			cfg, prev = prev, nil
			continue
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.Run(runCtx, opts.OnReady) }()
		next, err := waitReload(a, cancel, done, reload, load)
		cancel()
		switch {
		case next != nil:
			prev, cfg = cfg, next
		case err != nil && prev != nil && ctx.Err() == nil:
			a.log.Error("the new config did not start; going back to the previous one", "config", cfg.File, "err", err)
			cfg, prev = prev, nil
		default:
			return err
		}
	}
}

// waitReload waits for the running agent a to end (it returns its error)
// or for a reload with a valid config, after which it stops a and returns
// the new config.
func waitReload(a *Agent, stop context.CancelFunc, done <-chan error, reload <-chan struct{}, load func() (*Config, error)) (*Config, error) {
	for {
		select {
		case err := <-done:
			return nil, err
		case <-reload:
		}
		next, err := load()
		if err != nil {
			a.log.Error("reload refused: the new config is not valid; still running the old one", "err", err)
			continue
		}
		a.log.Info("reloading", "config", next.File)
		a.reloading.Store(true)
		stop()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			a.log.Warn("the old agent stopped with an error", "err", err)
		}
		return next, nil
	}
}

// reloadLog is a logger for Serve's messages when no agent was made.
func reloadLog(a *Agent, opts Options) *slog.Logger {
	if a != nil {
		return a.log
	}
	if opts.Log != nil {
		return opts.Log
	}
	out := opts.LogOut
	if out == nil {
		return slog.Default()
	}
	return slog.New(slog.NewTextHandler(out, nil))
}
