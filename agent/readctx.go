package agent

import (
	"context"
	"sync"
	"time"
)

// readCtx is the context of one read of a runner: its parent with a
// deadline. context.WithTimeout costs a timer and three allocations per
// read; a readCtx is reused from read to read, and only one whose deadline
// passed (or whose parent is done) is replaced, its Done channel being
// closed. Not for concurrent arming: one runner's read loop arms it.
type readCtx struct {
	parent context.Context
	timer  *time.Timer
	stop   func() bool // undoes the context.AfterFunc on parent
	fired  bool        // the timer went off (or was going off) at disarm

	mu       sync.Mutex
	deadline time.Time
	done     chan struct{}
	err      error
}

var _ context.Context = (*readCtx)(nil)

// armReadCtx returns a context of parent that expires after d: c itself
// when it can be reused, or a new one. Call disarm when the read is over.
func armReadCtx(c *readCtx, parent context.Context, d time.Duration) *readCtx {
	if c != nil && c.parent == parent && !c.fired && c.Err() == nil {
		c.mu.Lock()
		c.deadline = time.Now().Add(d)
		c.mu.Unlock()
		c.timer.Reset(d)
		return c
	}
	if c != nil {
		c.stop()
	}
	c = &readCtx{parent: parent, deadline: time.Now().Add(d), done: make(chan struct{})}
	c.timer = time.AfterFunc(d, func() { c.end(context.DeadlineExceeded) })
	c.stop = context.AfterFunc(parent, func() { c.end(parent.Err()) })
	return c
}

// disarm stops the deadline until the next arming. A timer that had already
// gone off makes the next arming replace c, even if it has not ended c yet.
func (c *readCtx) disarm() { c.fired = !c.timer.Stop() }

// end closes Done with err, once.
func (c *readCtx) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
		close(c.done)
	}
}

func (c *readCtx) Deadline() (time.Time, bool) {
	c.mu.Lock()
	d := c.deadline
	c.mu.Unlock()
	if pd, ok := c.parent.Deadline(); ok && pd.Before(d) {
		return pd, true
	}
	return d, true
}

func (c *readCtx) Done() <-chan struct{} { return c.done }

func (c *readCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *readCtx) Value(key any) any { return c.parent.Value(key) }
