// Package publishtest has what the tests of the outputs share: an
// in-memory Source to forward from.
package publishtest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/kelvin-gw/kelvin/publish"
	"github.com/kelvin-gw/kelvin/reading"
)

// Queue is a bounded in-memory publish.Source for tests that need no
// durability (the agent forwards from the durable buffer). When full, Push
// drops the oldest reading and counts it.
//
// Queue is safe for concurrent use by any number of goroutines calling Push,
// Len and Dropped and one consumer calling Next and Ack.
type Queue struct {
	notify chan struct{} // one pending wake-up for a consumer blocked in Next

	mu      sync.Mutex
	buf     []reading.Reading // ring buffer, len(buf) is the capacity
	head    int               // index in buf of the oldest pending reading
	n       int               // pending readings, returned by Next or not
	first   uint64            // absolute index of the reading at head
	dropped uint64

	// The window returned by the last Next, in absolute indices: Ack(k)
	// removes [lastStart, lastStart+k), or what is left of it.
	lastStart uint64
	lastN     int
}

var _ publish.Source = (*Queue)(nil)

// NewQueue returns an empty Queue holding at most capacity readings; a
// capacity below 1 is taken as 1. The ring buffer is allocated up front.
func NewQueue(capacity int) *Queue {
	capacity = max(capacity, 1)
	return &Queue{
		buf:    make([]reading.Reading, capacity),
		notify: make(chan struct{}, 1),
	}
}

// Push appends r and never blocks. When the queue is full it drops the
// oldest pending reading (even one returned by Next and not yet
// acknowledged), counts it in Dropped and reports true.
func (q *Queue) Push(r reading.Reading) (dropped bool) {
	q.mu.Lock()
	if q.n == len(q.buf) {
		q.buf[q.head] = reading.Reading{}
		q.head = (q.head + 1) % len(q.buf)
		q.n--
		q.first++
		q.dropped++
		dropped = true
	}
	q.buf[(q.head+q.n)%len(q.buf)] = r
	q.n++
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return dropped
}

// Next blocks until at least one reading is pending or ctx is done (then it
// returns ctx.Err()), and returns a copy of up to max of the oldest pending
// readings; the caller owns the slice. Until Ack, Next returns the same
// readings again, less those Push dropped meanwhile. max must be positive.
func (q *Queue) Next(ctx context.Context, max int) ([]reading.Reading, error) {
	if max < 1 {
		return nil, fmt.Errorf("publish: queue next: max %d is not positive", max)
	}
	for {
		q.mu.Lock()
		if q.n > 0 {
			k := min(max, q.n)
			out := make([]reading.Reading, k)
			for i := range out {
				out[i] = q.buf[(q.head+i)%len(q.buf)]
			}
			q.lastStart, q.lastN = q.first, k
			q.mu.Unlock()
			return out, nil
		}
		q.mu.Unlock()
		select {
		case <-q.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// ErrAck is returned by Ack when n exceeds what the last Next returned and
// is not yet acknowledged.
var ErrAck = errors.New("ack beyond the readings returned by next")

// Ack removes the first n readings returned by the last Next, or those of
// them Push has not dropped meanwhile; it never removes a reading Next did
// not return. Successive Acks walk through the same Next's readings.
func (q *Queue) Ack(n int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n < 0 || n > q.lastN {
		return fmt.Errorf("publish: queue ack %d of %d: %w", n, q.lastN, ErrAck)
	}
	end := q.lastStart + uint64(n)
	q.lastStart, q.lastN = end, q.lastN-n
	for q.first < end && q.n > 0 {
		q.buf[q.head] = reading.Reading{}
		q.head = (q.head + 1) % len(q.buf)
		q.n--
		q.first++
	}
	return nil
}

// Len returns the number of pending readings, including those returned by
// Next and not yet acknowledged.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// Dropped returns how many readings Push dropped because the queue was
// full, since NewQueue.
func (q *Queue) Dropped() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}
