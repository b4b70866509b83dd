package fleet

import "time"

// Outcomes of seqs.accept.
const (
	accepted  = iota // a new reading
	duplicate        // seen before: dropped
	reset            // far below what was seen: the gateway's seq started over
)

// The gaps are edited with copy rather than slices.Insert and Delete,
// whose instantiations for gap cost the binary a few KB.

// maxGaps bounds the open gaps tracked per sensor. Kelvin delivers a
// sensor's readings in order, so a gap fills from its low end and stays one
// range; only reordering splits ranges. Past the bound the oldest range is
// counted as lost at once.
const maxGaps = 64

// resetDistance is how far below the highest seq a reading must be, outside
// every open gap, to be taken for a gateway whose seq started over (a new
// data directory) rather than for a duplicate.
const resetDistance = 1 << 20

// gap is a range of seqs [from, to] not received yet, open since a time.
type gap struct {
	from, to uint64
	since    time.Time
}

func (g gap) size() uint64 { return g.to - g.from + 1 }

// seqs is the exactly-once state of one sensor: the highest seq seen and
// the ranges below it still missing. Every seq at or below high that is in
// no gap was received, skipped by the gateway's announcement, or counted as
// lost. Its memory is bounded by maxGaps whatever the traffic. Not safe for
// concurrent use.
type seqs struct {
	high uint64 // 0: nothing seen yet
	gaps []gap  // sorted by from, disjoint, all below high
	// resumeAt is where a restart announced the seqs resume, above high:
	// the seqs from high+1 below it were reserved and never used. 0: none.
	resumeAt uint64

	received, duplicates, lost, skipped, resets uint64
}

// accept records seq at time now and says whether it is new.
func (s *seqs) accept(seq uint64, now time.Time) int {
	switch {
	case s.high == 0:
		s.high = seq
		s.received++
		return accepted
	case seq > s.high:
		if lo := s.high + 1; seq > lo {
			if r := s.resumeAt; r > lo && r <= seq {
				s.skipped += r - lo // the restart's unused reservation
				lo = r
			}
			if seq > lo {
				s.open(lo, seq-1, now)
			}
		}
		if seq >= s.resumeAt {
			s.resumeAt = 0
		}
		s.high = seq
		s.received++
		return accepted
	}
	if s.fill(seq, seq) > 0 {
		s.received++
		return accepted
	}
	if s.high-seq >= resetDistance {
		*s = seqs{high: seq, received: s.received + 1, duplicates: s.duplicates, lost: s.lost + s.pending(), skipped: s.skipped, resets: s.resets + 1}
		return reset
	}
	s.duplicates++
	return duplicate
}

// skip records that the gateway will publish no more readings with seqs
// [from, to]: a block it reserved before a restart and did not use (after
// a power cut, also readings it delivered before it, or lost in it;
// reading.SensorRestart). Those not received are neither received nor
// lost. Before the sensor's first reading it does nothing.
func (s *seqs) skip(from, to uint64, now time.Time) {
	if from == 0 || to < from {
		return
	}
	if s.high == 0 {
		// Nothing seen yet: counting starts at the first reading anyway,
		// and a retained announcement may be from long ago.
		return
	}
	if to > s.high {
		lo := max(from, s.high+1)
		if lo > s.high+1 {
			s.open(s.high+1, lo-1, now)
		}
		s.skipped += to - lo + 1
		s.high = to
	}
	if from <= s.high {
		s.skipped += s.fill(from, min(to, s.high))
	}
}

// resume records that after a restart the gateway's seqs resume at v: the
// seqs between the last it used and v were reserved and never published.
// Kelvin delivers a sensor in order, so they are the gap that the first
// reading at v opens (or opened, when the announcement comes late). Before
// the sensor's first reading it does nothing.
func (s *seqs) resume(v uint64) {
	switch {
	case s.high == 0 || v == 0:
	case v > s.high+1:
		s.resumeAt = v
	default:
		for i, g := range s.gaps {
			if g.to == v-1 {
				s.skipped += g.size()
				s.gaps = s.gaps[:i+copy(s.gaps[i:], s.gaps[i+1:])]
				break
			}
		}
	}
}

// open adds the gap [from, to], above every other one.
func (s *seqs) open(from, to uint64, now time.Time) {
	if len(s.gaps) == maxGaps {
		s.lost += s.gaps[0].size()
		s.gaps = s.gaps[:copy(s.gaps, s.gaps[1:])]
	}
	s.gaps = append(s.gaps, gap{from: from, to: to, since: now})
}

// fill removes [from, to] from the gaps and returns how many seqs were
// missing in it.
func (s *seqs) fill(from, to uint64) uint64 {
	var n uint64
	for i := 0; i < len(s.gaps); i++ {
		g := s.gaps[i]
		if g.to < from {
			continue
		}
		if g.from > to {
			break
		}
		lo, hi := max(g.from, from), min(g.to, to)
		n += hi - lo + 1
		switch {
		case lo == g.from && hi == g.to:
			s.gaps = s.gaps[:i+copy(s.gaps[i:], s.gaps[i+1:])]
			i--
		case lo == g.from:
			s.gaps[i].from = hi + 1
		case hi == g.to:
			s.gaps[i].to = lo - 1
		default:
			right := gap{from: hi + 1, to: g.to, since: g.since}
			s.gaps[i].to = lo - 1
			if len(s.gaps) == maxGaps {
				// No room to split: what is below the fill is given up.
				s.lost += s.gaps[i].size()
				s.gaps[i] = right
			} else {
				s.gaps = append(s.gaps, gap{})
				copy(s.gaps[i+2:], s.gaps[i+1:])
				s.gaps[i+1] = right
				i++
			}
		}
	}
	return n
}

// expire counts the gaps open since before deadline as lost.
func (s *seqs) expire(deadline time.Time) {
	kept := s.gaps[:0]
	for _, g := range s.gaps {
		if g.since.After(deadline) {
			kept = append(kept, g)
		} else {
			s.lost += g.size()
		}
	}
	s.gaps = kept
}

// pending returns how many seqs are missing and not yet counted as lost.
func (s *seqs) pending() uint64 {
	var n uint64
	for _, g := range s.gaps {
		n += g.size()
	}
	return n
}
