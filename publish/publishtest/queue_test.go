package publishtest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
)

func rd(seq uint64) reading.Reading {
	return reading.Reading{Agent: "a", Sensor: "s", Quantity: reading.Temperature, Seq: seq}
}

func seqs(rs []reading.Reading) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.Seq
	}
	return out
}

func equalSeqs(a []uint64, b ...uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func mustNext(t *testing.T, q *Queue, max int, want ...uint64) []reading.Reading {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := q.Next(ctx, max)
	if err != nil {
		t.Fatalf("Next(%d): %v", max, err)
	}
	if !equalSeqs(seqs(got), want...) {
		t.Fatalf("Next(%d) = %v, want %v", max, seqs(got), want)
	}
	return got
}

func TestQueueFIFO(t *testing.T) {
	q := NewQueue(10)
	for i := uint64(1); i <= 5; i++ {
		if q.Push(rd(i)) {
			t.Fatalf("Push(%d) dropped in a queue with room", i)
		}
	}
	mustNext(t, q, 3, 1, 2, 3)
	mustNext(t, q, 3, 1, 2, 3) // not acknowledged: the same again
	if err := q.Ack(2); err != nil {
		t.Fatal(err)
	}
	if q.Len() != 3 {
		t.Fatalf("Len = %d, want 3", q.Len())
	}
	mustNext(t, q, 10, 3, 4, 5)
	if err := q.Ack(1); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(2); err != nil { // the rest of the same Next
		t.Fatal(err)
	}
	if q.Len() != 0 || q.Dropped() != 0 {
		t.Fatalf("Len, Dropped = %d, %d, want 0, 0", q.Len(), q.Dropped())
	}
}

func TestQueueOverflowDropsOldest(t *testing.T) {
	q := NewQueue(3)
	var dropped int
	for i := uint64(1); i <= 5; i++ {
		if q.Push(rd(i)) {
			dropped++
		}
	}
	if dropped != 2 || q.Dropped() != 2 {
		t.Fatalf("dropped %d, Dropped() %d, want 2, 2", dropped, q.Dropped())
	}
	mustNext(t, q, 10, 3, 4, 5)
}

// Readings returned by Next and dropped by Push before Ack: Ack removes only
// what is left of them, never a newer reading.
func TestQueueAckAfterOverflow(t *testing.T) {
	t.Run("part of the batch dropped", func(t *testing.T) {
		q := NewQueue(4)
		for i := uint64(1); i <= 4; i++ {
			q.Push(rd(i))
		}
		mustNext(t, q, 4, 1, 2, 3, 4)
		q.Push(rd(5)) // drops 1
		q.Push(rd(6)) // drops 2
		mustNext(t, q, 4, 3, 4, 5, 6)
		// Ack refers to the last Next: 3, 4, 5, 6.
		if err := q.Ack(2); err != nil {
			t.Fatal(err)
		}
		mustNext(t, q, 4, 5, 6)
	})
	t.Run("whole batch dropped", func(t *testing.T) {
		q := NewQueue(4)
		for i := uint64(1); i <= 4; i++ {
			q.Push(rd(i))
		}
		mustNext(t, q, 2, 1, 2)
		q.Push(rd(5))
		q.Push(rd(6))
		q.Push(rd(7)) // 1, 2 and 3 dropped
		if err := q.Ack(2); err != nil {
			t.Fatal(err)
		}
		mustNext(t, q, 10, 4, 5, 6, 7)
		if q.Dropped() != 3 {
			t.Fatalf("Dropped = %d, want 3", q.Dropped())
		}
	})
	t.Run("batch partly dropped then acked", func(t *testing.T) {
		q := NewQueue(4)
		for i := uint64(1); i <= 4; i++ {
			q.Push(rd(i))
		}
		mustNext(t, q, 3, 1, 2, 3)
		q.Push(rd(5))
		q.Push(rd(6)) // 1 and 2 dropped; 3 is still there
		if err := q.Ack(3); err != nil {
			t.Fatal(err)
		}
		mustNext(t, q, 10, 4, 5, 6)
	})
}

func TestQueueNextReturnsCopy(t *testing.T) {
	q := NewQueue(2)
	q.Push(rd(1))
	got := mustNext(t, q, 1, 1)
	got[0].Seq = 99
	mustNext(t, q, 1, 1)
}

func TestQueueAckErrors(t *testing.T) {
	q := NewQueue(4)
	if err := q.Ack(1); !errors.Is(err, ErrAck) {
		t.Fatalf("Ack without Next = %v, want ErrAck", err)
	}
	if err := q.Ack(0); err != nil {
		t.Fatalf("Ack(0) = %v", err)
	}
	q.Push(rd(1))
	q.Push(rd(2))
	mustNext(t, q, 2, 1, 2)
	if err := q.Ack(3); !errors.Is(err, ErrAck) {
		t.Fatalf("Ack(3) after 2 = %v, want ErrAck", err)
	}
	if err := q.Ack(-1); !errors.Is(err, ErrAck) {
		t.Fatalf("Ack(-1) = %v, want ErrAck", err)
	}
	if _, err := q.Next(context.Background(), 0); err == nil {
		t.Fatal("Next(0) succeeded")
	}
}

func TestQueueNextBlocksUntilPushOrCancel(t *testing.T) {
	q := NewQueue(4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := q.Next(ctx, 1)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after cancel = %v, want context.Canceled", err)
	}

	got := make(chan []reading.Reading, 1)
	go func() {
		rs, _ := q.Next(context.Background(), 4)
		got <- rs
	}()
	q.Push(rd(7))
	select {
	case rs := <-got:
		if !equalSeqs(seqs(rs), 7) {
			t.Fatalf("Next = %v, want [7]", seqs(rs))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Next did not wake up on Push")
	}
}

// Concurrent producers and one consumer, run with -race: each producer's
// readings come out in order, never twice, and what is neither consumed nor
// dropped is still in the queue.
func TestQueueConcurrent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		capacity int
	}{{"lossless", 4000}, {"lossy", 16}} {
		t.Run(tc.name, func(t *testing.T) {
			const producers, perProducer = 4, 1000
			q := NewQueue(tc.capacity)
			var wg sync.WaitGroup
			for p := range producers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := uint64(1); i <= perProducer; i++ {
						r := rd(i)
						r.Sensor = string(rune('a' + p))
						q.Push(r)
					}
				}()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// pctx ends when the producers are done: then an empty queue
			// stays empty.
			pctx, pcancel := context.WithCancel(ctx)
			go func() { wg.Wait(); pcancel() }()

			last := map[string]uint64{}
			consumed := 0
			for {
				batch, err := q.Next(pctx, 7)
				if err != nil {
					if ctx.Err() != nil {
						t.Fatalf("Next: %v (consumed %d)", err, consumed)
					}
					if q.Len() == 0 {
						break
					}
					continue
				}
				for _, r := range batch {
					if r.Seq <= last[r.Sensor] {
						t.Fatalf("producer %s: seq %d after %d", r.Sensor, r.Seq, last[r.Sensor])
					}
					last[r.Sensor] = r.Seq
				}
				consumed += len(batch)
				if err := q.Ack(len(batch)); err != nil {
					t.Fatal(err)
				}
			}
			total := producers * perProducer
			dropped := int(q.Dropped())
			if consumed > total || consumed+dropped < total {
				t.Fatalf("consumed %d + dropped %d, pushed %d", consumed, dropped, total)
			}
			if tc.capacity >= total && (dropped != 0 || consumed != total) {
				t.Fatalf("lossless queue: consumed %d, dropped %d, want %d, 0", consumed, dropped, total)
			}
			for p := range producers {
				if s := string(rune('a' + p)); tc.capacity >= total && last[s] != perProducer {
					t.Fatalf("producer %s: last seq consumed %d, want %d", s, last[s], perProducer)
				}
			}
			t.Logf("consumed %d, dropped %d", consumed, dropped)
		})
	}
}
