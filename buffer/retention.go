package buffer

import (
	"errors"
	"os"
	"path/filepath"
	"time"
)

// makeRoom frees space for need more bytes: first segments that may go
// anyway (consumed by every cursor, or too old), then, with drop_oldest,
// the oldest segments.
func (l *Log) makeRoom(need int64) error {
	l.retainLocked(true)
	max := int64(l.cfg.MaxBytes)
	if l.total+need <= max {
		return nil
	}
	if l.cfg.Full == FullBlockNewest {
		return ErrFull
	}
	var ev dropEvent
	for l.total+need > max && len(l.segs) > 1 {
		if err := l.checkpointCovers(true); err != nil {
			l.log.Error("buffer: cannot make room", "err", err)
			break
		}
		l.deleteOldest(&ev)
	}
	l.logDrop(&ev, "max_bytes")
	l.st.DroppedFull += uint64(ev.readings)
	if l.total+need > max {
		return ErrFull
	}
	return nil
}

// dropOldestForDisk deletes the oldest segment because the disk is full
// before the budget, as the budget would with drop_oldest; it reports
// whether it could (not for the active segment, nor without a durable
// checkpoint after it).
func (l *Log) dropOldestForDisk() bool {
	if len(l.segs) < 2 || l.checkpointCovers(true) != nil {
		return false
	}
	var ev dropEvent
	l.deleteOldest(&ev)
	l.logDrop(&ev, "disk_full")
	l.st.DroppedFull += uint64(ev.readings)
	return true
}

// checkpointCovers reports whether a durable checkpoint exists after the
// oldest segment, so deleting that segment loses neither seqs nor cursor
// positions: the checkpoint and the records after it, all of which stay,
// hold the whole state. With allowSync it writes and syncs one if needed.
func (l *Log) checkpointCovers(allowSync bool) error {
	have := false
	for _, s := range l.segs[1:] {
		if s.ckptEnd > 0 {
			if s.synced >= s.ckptEnd {
				return nil
			}
			have = true
		}
	}
	if !allowSync {
		return errNotYet
	}
	if !have {
		if err := l.flushLocked(); err != nil {
			return err
		}
		a := l.active()
		l.pending.buf = appendCheckpoint(l.pending.buf, l.seq.last, l.cursorPositions())
		a.ckptEnd = a.size + int64(len(l.pending.buf))
	}
	return l.syncFiles()
}

var errNotYet = errors.New("checkpoint not yet durable")

// dropEvent accumulates one deletion event for a single log line.
type dropEvent struct {
	segments int
	readings int64 // readings at least one cursor had not acknowledged
	cursors  map[string]int64
}

// deleteOldest deletes the oldest segment (never the active one), moving
// every cursor still inside it to the next segment and counting what it
// had not read as dropped.
func (l *Log) deleteOldest(ev *dropEvent) {
	s, next := l.segs[0], l.segs[1]
	var unread int64
	if len(l.cursors) == 0 && !l.declared {
		unread = s.readings
	}
	for name, c := range l.cursors {
		if c.acked.pos >= s.end() {
			if c.acked.segBase == s.base {
				// At the very end of it: count from the next segment on.
				c.acked = ackPoint{pos: c.acked.pos, segBase: next.base}
			}
			continue
		}
		n := s.readings
		if c.acked.segBase == s.base {
			n -= c.acked.nInSeg
		}
		if n > 0 {
			c.dropped += uint64(n)
			if ev.cursors == nil {
				ev.cursors = map[string]int64{}
			}
			ev.cursors[name] += n
		}
		unread = max(unread, n)
		c.acked = ackPoint{pos: next.base, segBase: next.base}
		c.headTime = time.Time{}
		c.dirty = true
	}
	ev.segments++
	ev.readings += unread
	s.closeFiles()
	if s.hot {
		os.Remove(l.hotPath(s.base))
	}
	s.deleted = true
	if err := os.Remove(l.segPath(s.base)); err != nil && !errors.Is(err, os.ErrNotExist) {
		l.log.Error("buffer: cannot delete segment", "segment", filepath.Base(l.segPath(s.base)), "err", err)
	}
	for off := range l.corruptSeen {
		if off < s.end() {
			delete(l.corruptSeen, off)
		}
	}
	l.total -= s.size
	l.segs[0] = nil
	l.segs = l.segs[1:]
}

func (l *Log) logDrop(ev *dropEvent, reason string) {
	if ev.segments == 0 || ev.readings == 0 {
		return
	}
	args := []any{"reason", reason, "segments", ev.segments, "readings", ev.readings}
	for _, n := range sortedKeys(ev.cursors) {
		args = append(args, "dropped_"+n, ev.cursors[n])
	}
	l.log.Warn("buffer: dropped unsent readings", args...)
}

// retainLocked deletes, oldest first, the sealed segments that every
// cursor has passed (all of them once SetReaders declared no reader), that
// hold no reading, or whose newest reading is older than max_age. It stops at the first segment to keep.
func (l *Log) retainLocked(allowSync bool) {
	cutoff := l.now().Add(-l.cfg.MaxAge).UnixNano()
	var aged dropEvent
	for len(l.segs) > 1 {
		s := l.segs[0]
		consumed := s.readings == 0 || l.declared // declared without a cursor: no reader
		if len(l.cursors) > 0 {
			consumed = true
			for _, c := range l.cursors {
				if c.acked.pos < s.end() {
					consumed = false
					break
				}
			}
		}
		old := s.readings > 0 && s.newest < cutoff
		if !consumed && !old {
			break
		}
		if err := l.checkpointCovers(allowSync); err != nil {
			if !errors.Is(err, errNotYet) {
				l.log.Error("buffer: cannot delete segments", "err", err)
			}
			break
		}
		if consumed {
			l.deleteOldest(&dropEvent{})
		} else {
			l.deleteOldest(&aged)
		}
	}
	l.logDrop(&aged, "max_age")
	l.st.DroppedAge += uint64(aged.readings)
}
