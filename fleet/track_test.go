package fleet

import (
	"testing"
	"time"
)

func TestSeqsDuplicatesAndGaps(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	var s seqs
	for _, q := range []uint64{5, 6, 6, 7, 5} {
		s.accept(q, t0)
	}
	if s.received != 3 || s.duplicates != 2 || s.pending() != 0 {
		t.Fatalf("received %d duplicates %d pending %d, want 3 2 0", s.received, s.duplicates, s.pending())
	}
	// 8..10 missing, then drained late in order: no loss.
	s.accept(11, t0)
	if s.pending() != 3 {
		t.Fatalf("pending %d, want 3", s.pending())
	}
	for _, q := range []uint64{8, 9, 9, 10} {
		s.accept(q, t0.Add(time.Minute))
	}
	s.expire(t0.Add(time.Hour))
	if s.received != 7 || s.duplicates != 3 || s.lost != 0 || s.pending() != 0 {
		t.Fatalf("received %d duplicates %d lost %d pending %d, want 7 3 0 0", s.received, s.duplicates, s.lost, s.pending())
	}
}

func TestSeqsLossAfterDeadline(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	var s seqs
	s.accept(1, t0)
	s.accept(5, t0)                    // 2..4 missing since t0
	s.accept(10, t0.Add(time.Minute))  // 6..9 missing since t0+1m
	s.accept(3, t0.Add(2*time.Minute)) // splits 2..4
	s.expire(t0.Add(30 * time.Second)) // only the first gap is old enough
	if s.lost != 2 || s.pending() != 4 {
		t.Fatalf("lost %d pending %d, want 2 4", s.lost, s.pending())
	}
	s.accept(2, t0.Add(3*time.Minute)) // already counted lost: a late duplicate
	if s.duplicates != 1 || s.lost != 2 {
		t.Fatalf("duplicates %d lost %d, want 1 2", s.duplicates, s.lost)
	}
	s.expire(t0.Add(2 * time.Minute))
	if s.lost != 6 || s.pending() != 0 || s.received != 4 {
		t.Fatalf("lost %d pending %d received %d, want 6 0 4", s.lost, s.pending(), s.received)
	}
}

func TestSeqsSkipIsNotLoss(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	// Announced before the first reading after the restart.
	var a seqs
	a.accept(100, t0)
	a.skip(104, 1000, t0) // 101..103 still in the gateway's backlog
	a.accept(1001, t0)
	for q := uint64(101); q <= 103; q++ {
		a.accept(q, t0)
	}
	a.expire(t0.Add(time.Hour))
	if a.lost != 0 || a.skipped != 897 || a.received != 5 {
		t.Fatalf("before: lost %d skipped %d received %d, want 0 897 5", a.lost, a.skipped, a.received)
	}
	// Announced after.
	var b seqs
	b.accept(100, t0)
	b.accept(1001, t0)
	b.skip(104, 1000, t0)
	b.accept(102, t0)
	if b.pending() != 2 || b.skipped != 897 {
		t.Fatalf("after: pending %d skipped %d, want 2 897", b.pending(), b.skipped)
	}
}

// A restart announced as where the seqs resume (kelvin/AGENT/restart,
// seq_resume): the gap up to it is no loss, whether the announcement comes
// before the first reading after the restart or after it.
func TestSeqsResume(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	var a seqs
	a.accept(10, t0)
	a.resume(65537)
	a.accept(65537, t0)
	a.accept(65539, t0) // 65538 is missing for real
	a.expire(t0.Add(time.Hour))
	if a.lost != 1 || a.skipped != 65526 || a.received != 3 {
		t.Fatalf("before: lost %d skipped %d received %d, want 1 65526 3", a.lost, a.skipped, a.received)
	}
	var b seqs
	b.accept(10, t0)
	b.accept(12, t0) // 11 missing for real
	b.accept(65537, t0)
	b.resume(65537)
	b.resume(65537) // the retained announcement again
	b.expire(t0.Add(time.Hour))
	if b.lost != 1 || b.skipped != 65524 || b.pending() != 0 {
		t.Fatalf("after: lost %d skipped %d pending %d, want 1 65524 0", b.lost, b.skipped, b.pending())
	}
}

// A retained announcement from an earlier life of the gateway, seen
// before any reading, must not make its readings look like duplicates.
func TestSeqsSkipBeforeFirstReading(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	var s seqs
	s.skip(5, 299, t0)
	if s.accept(1, t0) != accepted || s.accept(2, t0) != accepted || s.skipped != 0 {
		t.Fatalf("after a stale skip: received %d duplicates %d skipped %d", s.received, s.duplicates, s.skipped)
	}
}

func TestSeqsResetAndBounds(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	var s seqs
	s.accept(resetDistance+10, t0)
	if got := s.accept(1, t0); got != reset {
		t.Fatalf("seq 1 after %d: outcome %d, want reset", resetDistance+10, got)
	}
	if s.accept(2, t0) != accepted || s.resets != 1 {
		t.Fatalf("after reset: resets %d", s.resets)
	}
	// Every other seq missing: the gaps stay bounded, the oldest are lost.
	var g seqs
	for q := uint64(1); q < 4*maxGaps; q += 2 {
		g.accept(q, t0)
	}
	if len(g.gaps) != maxGaps || g.lost != uint64(2*maxGaps-1-maxGaps) {
		t.Fatalf("%d gaps, lost %d", len(g.gaps), g.lost)
	}
}

func BenchmarkSeqsInOrder(b *testing.B) {
	t0 := time.Unix(1_000_000, 0)
	var s seqs
	for i := range b.N {
		s.accept(uint64(i+1), t0)
	}
}
