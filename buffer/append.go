package buffer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
)

// appendScratch is the memory Append reuses: the encoded batch, the seqs
// to undo if it is refused, the seqs handed out.
type appendScratch struct {
	enc    []byte
	undo   []seqUndo
	seqBuf []uint64
}

type seqUndo struct {
	sensor  string
	seq     uint64
	existed bool
}

// createSegment starts a new active segment at global offset base.
// With a hot directory it is created there (see hot.go), without
// preallocation.
func (l *Log) createSegment(base int64) error {
	seg := &segment{base: base, hot: l.hot != ""}
	path := l.pathOf(seg)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o640)
	if err != nil {
		return err
	}
	if !seg.hot {
		if err := l.o.preallocate(f, l.segBytes); err != nil {
			if !l.opening || !errors.Is(err, syscall.ENOSPC) {
				f.Close()
				os.Remove(f.Name())
				return fmt.Errorf("preallocate %s: %w", filepath.Base(f.Name()), err)
			}
			// Start anyway: readings are refused (and counted) while the
			// disk is full, and stored again once space returns.
			l.log.Warn("buffer: the disk has less free space than one segment; starting without reserving it", "segment", filepath.Base(f.Name()), "err", err)
			l.setDiskFull(err)
		}
	}
	seg.w = f
	if err := l.writeHeader(seg); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	l.segs = append(l.segs, seg)
	l.dirDirty = l.dirDirty || !seg.hot
	return nil
}

// writeHeader writes the magic and a checkpoint at the start of an empty
// segment.
func (l *Log) writeHeader(seg *segment) error {
	h := appendCheckpoint([]byte(segMagic), l.seqs, l.cursorPositions())
	n, err := l.o.writeAt(seg.w, h, 0)
	if err != nil {
		if n > 0 {
			seg.w.Truncate(0)
		}
		return fmt.Errorf("write %s: %w", filepath.Base(seg.w.Name()), err)
	}
	seg.size = int64(n)
	l.total += int64(n)
	if seg.hot {
		seg.synced = seg.size // in the tmpfs: nothing to fsync
	} else {
		l.st.BytesWritten += uint64(n)
	}
	seg.ckptEnd = int64(n)
	l.ckptLen = int64(n) - magicLen
	return nil
}

// flushLocked writes the buffered records to the active segment. On error
// the file is cut back to its last good record and the buffered records are
// lost (counted): the log is never left with a partial record.
func (l *Log) flushLocked() error {
	if len(l.wbuf) == 0 {
		return nil
	}
	a := l.active()
	n, err := l.o.writeAt(a.w, l.wbuf, a.size)
	if err != nil {
		if n > 0 {
			if terr := a.w.Truncate(a.size); terr != nil {
				l.log.Error("buffer: cannot cut back a failed write; recovery will", "segment", filepath.Base(a.w.Name()), "err", terr)
			}
		}
		lost := l.wbufReadings
		a.readings -= lost
		if a.ckptEnd > a.size {
			a.ckptEnd = 0 // the checkpoint was in the lost bytes
		}
		l.total -= int64(len(l.wbuf))
		l.wbuf, l.wbufReadings = l.wbuf[:0], 0
		l.st.DroppedFull += uint64(lost)
		if !errors.Is(err, syscall.ENOSPC) || !l.full.on {
			l.log.Error("buffer: write failed, buffered readings lost", "segment", filepath.Base(a.w.Name()), "readings", lost, "err", err)
		}
		if !a.hot {
			l.noteWrite(err)
		}
		return fmt.Errorf("write %s: %w", filepath.Base(a.w.Name()), err)
	}
	if !a.hot {
		l.noteWrite(nil)
	}
	a.size += int64(n)
	if a.hot {
		// In the hot tail: safe from a kill -9, so durable for Next.
		a.synced = a.size
	} else {
		l.st.BytesWritten += uint64(n)
	}
	l.wbuf, l.wbufReadings = l.wbuf[:0], 0
	return nil
}

// Append stores rs, oldest first, and assigns each reading its Seq in
// place: the last seq of its Sensor plus one, starting at 1, never reused.
// Either all of rs is stored or none. With sync: always it returns once rs
// is on disk; otherwise rs is durable after the next group commit (at most
// Config.Sync later). It returns ErrFull (counted as refused) when rs does
// not fit, ErrClosed after Close. Safe for concurrent use.
func (l *Log) Append(rs []reading.Reading) error {
	if len(rs) == 0 {
		return nil
	}
	l.mu.Lock()
	end, err := l.appendLocked(rs)
	l.mu.Unlock()
	if err != nil {
		return err
	}
	if l.always {
		return l.syncTo(end)
	}
	if l.hot != "" {
		return nil // run ignores the kick: its timer commits (see run)
	}
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return nil
}

// WaitDurable waits until everything appended before the call is in the
// buffer as the guarantee defines it, or ctx is done. With a hot directory
// that is at once (the readings are in it: see hot.go); without one, at
// the next group commit (at once after a quiet spell, at most Config.Sync
// later otherwise). Either way a caller that must not answer before its
// data is stored (an HTTP ingest's 202) costs no fsync of its own.
func (l *Log) WaitDurable(ctx context.Context) error {
	l.mu.Lock()
	end := l.end()
	always := l.always
	l.mu.Unlock()
	if always {
		return l.syncTo(end)
	}
	select {
	case l.kick <- struct{}{}:
	default:
	}
	for {
		l.mu.Lock()
		durable, wait, closed := l.durable, l.notify, l.closed
		l.mu.Unlock()
		switch {
		case durable >= end:
			return nil
		case closed:
			return ErrClosed
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (l *Log) appendLocked(rs []reading.Reading) (int64, error) {
	if l.closed {
		return 0, ErrClosed
	}
	nowNS := l.now().UnixNano()
	enc, undo, seqs := l.scratch.enc[:0], l.scratch.undo[:0], l.scratch.seqBuf[:0]
	defer func() { l.scratch.enc, l.scratch.undo, l.scratch.seqBuf = enc[:0], undo[:0], seqs[:0] }()
	rollback := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			if u := undo[i]; u.existed {
				l.seqs[u.sensor] = u.seq
			} else {
				delete(l.seqs, u.sensor)
			}
		}
	}
	reserve := false
	for i := range rs {
		r := rs[i]
		last, existed := l.seqs[r.Sensor]
		touched := false
		for _, u := range undo {
			if u.sensor == r.Sensor {
				touched = true
				break
			}
		}
		if !touched {
			undo = append(undo, seqUndo{r.Sensor, last, existed})
		}
		r.Seq = last + 1
		l.seqs[r.Sensor] = r.Seq
		seqs = append(seqs, r.Seq)
		if r.Seq > l.res.reserved[r.Sensor] {
			reserve = true
		}
		before := len(enc)
		enc = appendReading(enc, &r)
		if n := len(enc) - before - headerLen; n > maxReadingPayload {
			rollback()
			return 0, fmt.Errorf("buffer: reading of sensor %q is %d bytes encoded, more than %d", r.Sensor, n, maxReadingPayload)
		}
	}
	need := int64(len(enc))
	a := l.active()
	roll := a.readings > 0 && a.size+int64(len(l.wbuf))+need > l.segBytes
	if roll {
		need += l.ckptLen + magicLen + 64
	}
	if l.total+need > int64(l.cfg.MaxBytes) {
		if err := l.makeRoom(need); err != nil {
			rollback()
			l.st.Refused += uint64(len(rs))
			return 0, err
		}
	}
	if roll {
		err := l.rollover()
		if errors.Is(err, syscall.ENOSPC) && l.cfg.Full == FullDropOldest && len(l.segs) > 1 {
			// The disk is full before the budget: treat it like the budget.
			if cerr := l.checkpointCovers(true); cerr == nil {
				var ev dropEvent
				l.deleteOldest(&ev)
				l.logDrop(&ev, "disk_full")
				l.st.DroppedFull += uint64(ev.readings)
				err = l.rollover()
			}
		}
		if err != nil {
			rollback()
			l.st.Refused += uint64(len(rs))
			if errors.Is(err, syscall.ENOSPC) {
				l.noteWrite(err)
				return 0, fmt.Errorf("%w: %w", ErrFull, err)
			}
			return 0, fmt.Errorf("buffer: %w", err)
		}
		a = l.active()
	}
	if reserve {
		// Before a seq beyond its reservation is handed out (reserve.go).
		l.reserveLocked(nil)
	}
	l.wbuf = append(l.wbuf, enc...)
	l.wbufReadings += int64(len(rs))
	l.total += int64(len(enc))
	for i := range rs {
		t := timeNS(rs[i].Time, nowNS)
		if rs[i].Clock == reading.ClockUnsynced {
			// Taken on a wrong clock: its age is unknown until the clock
			// is set, and the jump then would make it look years old.
			// max_age never drops it; max_bytes still bounds it.
			t = math.MaxInt64
		}
		a.noteReading(t)
	}
	// Seqs are handed out only now that the batch is accepted.
	for i := range rs {
		rs[i].Seq = seqs[i]
	}
	l.st.Appended += uint64(len(rs))
	end := l.end()
	if len(l.wbuf) >= flushBytes || l.hot != "" {
		if err := l.flushLocked(); err != nil {
			// The batch is lost with the buffer: count it as refused, the
			// earlier buffered readings as dropped.
			l.st.Appended -= uint64(len(rs))
			l.st.DroppedFull -= uint64(len(rs))
			l.st.Refused += uint64(len(rs))
			if errors.Is(err, syscall.ENOSPC) {
				return 0, fmt.Errorf("%w: %w", ErrFull, err)
			}
			return 0, fmt.Errorf("buffer: %w", err)
		}
	}
	if l.hot != "" {
		l.marks = append(l.marks, mark{end: end, at: time.Now(), n: int64(len(rs))})
		l.advanceDurable(end)
	}
	return end, nil
}

// timeNS is t in unix nanoseconds for max_age: unknown for the zero time,
// clamped outside the years UnixNano can represent.
func timeNS(t time.Time, unknown int64) int64 {
	switch y := t.Year(); {
	case t.IsZero():
		return unknown
	case y < 1700:
		return math.MinInt64 + 1
	case y > 2200:
		return math.MaxInt64
	}
	return t.UnixNano()
}

// rollover seals the active segment and starts the next one.
func (l *Log) rollover() error {
	if err := l.flushLocked(); err != nil {
		return err
	}
	return l.createSegment(l.active().end())
}
