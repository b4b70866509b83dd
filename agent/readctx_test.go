package agent

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestReadCtx: a read's context expires after its timeout or with its
// parent, like context.WithTimeout's, and one that did neither is reused
// for the next read without allocating.
func TestReadCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent, cancel := context.WithCancel(t.Context())
		c := armReadCtx(nil, parent, 2*time.Second)
		if d, ok := c.Deadline(); !ok || !d.Equal(time.Now().Add(2*time.Second)) {
			t.Errorf("Deadline %v, %v", d, ok)
		}
		c.disarm()
		time.Sleep(time.Minute) // disarmed: no expiry
		if c.Err() != nil {
			t.Fatalf("disarmed context ended: %v", c.Err())
		}
		if again := armReadCtx(c, parent, 2*time.Second); again != c {
			t.Fatal("a context that did not end was not reused")
		}
		c.disarm()
		if n := testing.AllocsPerRun(100, func() {
			c = armReadCtx(c, parent, 2*time.Second)
			c.disarm()
		}); n != 0 {
			t.Errorf("%v allocations per read, want 0", n)
		}

		// The deadline passes during a read.
		c = armReadCtx(c, parent, 2*time.Second)
		start := time.Now()
		<-c.Done()
		if took := time.Since(start); took != 2*time.Second || c.Err() != context.DeadlineExceeded {
			t.Errorf("ended after %v with %v, want 2s and DeadlineExceeded", took, c.Err())
		}
		c.disarm()
		next := armReadCtx(c, parent, 2*time.Second)
		if next == c || next.Err() != nil {
			t.Fatalf("an ended context was reused (%v)", next.Err())
		}

		// The parent ends.
		cancel()
		<-next.Done()
		if next.Err() != context.Canceled {
			t.Errorf("Err %v after the parent was cancelled, want Canceled", next.Err())
		}
		next.disarm()

		// A parent's earlier deadline is the read's.
		short, cancelShort := context.WithTimeout(t.Context(), time.Second)
		defer cancelShort()
		c = armReadCtx(nil, short, 2*time.Second)
		defer c.disarm()
		if d, _ := c.Deadline(); !d.Equal(time.Now().Add(time.Second)) {
			t.Errorf("Deadline %v, want the parent's", d)
		}
		<-c.Done()
		if c.Err() != context.DeadlineExceeded {
			t.Errorf("Err %v after the parent's deadline, want DeadlineExceeded", c.Err())
		}
	})
}
