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

// pendingWrite is the records appended to the active segment and not yet
// written to its file (without a hot tail: up to flushBytes, or until the
// next group commit); guarded by Log.mu.
type pendingWrite struct {
	buf      []byte
	readings int64
}

// batch is one Append being prepared: its records encoded, the seq of each
// reading, and how to give the seqs back if it is refused. Its memory is
// reused by every Append; guarded by Log.mu.
type batch struct {
	enc     []byte
	seqs    []uint64  // per reading
	undo    []seqUndo // per sensor it took seqs of, the last seq before it
	reserve bool      // a seq beyond its sensor's reservation was taken
}

type seqUndo struct {
	sensor  string
	seq     uint64
	existed bool
}

func (b *batch) reset() {
	b.enc, b.seqs, b.undo, b.reserve = b.enc[:0], b.seqs[:0], b.undo[:0], false
}

// createSegment starts a new active segment at global offset base.
// With a hot directory it is created there (see hot.go), without
// preallocation, unless the hot tail is at its bound or the tmpfs is
// full: then it goes to disk (hotOverflow).
func (l *Log) createSegment(base int64) error {
	if l.hot != "" && !l.tail.coldNext {
		if !l.hotFits() {
			l.retainLocked(false) // what every cursor passed need not wait for the commit
		}
		if !l.hotFits() {
			l.hotOverflow(fmt.Errorf("hot_max_bytes (%s) reached", Size(l.hotMax)))
		} else {
			err := l.createIn(&segment{base: base, hot: true})
			if err == nil || !errors.Is(err, syscall.ENOSPC) {
				l.hotRoom(err)
				return err
			}
			l.hotOverflow(err)
		}
	}
	l.tail.coldNext = false
	return l.createIn(&segment{base: base})
}

// createIn creates seg's file, makes it the active segment and writes its
// header.
func (l *Log) createIn(seg *segment) error {
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
	l.commits.dirDirty = l.commits.dirDirty || !seg.hot
	return nil
}

// writeHeader writes the magic and a checkpoint at the start of an empty
// segment.
func (l *Log) writeHeader(seg *segment) error {
	h := appendCheckpoint([]byte(segMagic), l.seq.last, l.cursorPositions())
	n, err := l.writeAt(seg, seg.w, h, 0)
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
		l.wrote(int64(n))
	}
	seg.ckptEnd = int64(n)
	l.ckptLen = int64(n) - magicLen
	return nil
}

// writeAt writes b at file offset off of f, seg's file (its hot file, or
// the disk copy of a hot segment): with a hot directory on a tmpfs, to the
// hot file with one raw system call (pwriteRaw), otherwise through os.File.
// What reaches the hot file is noted in the hot cache for cursors.
func (l *Log) writeAt(seg *segment, f *os.File, b []byte, off int64) (n int, err error) {
	inHot := seg.hot && f == seg.w
	switch {
	case l.o.writeAt != nil:
		n, err = l.o.writeAt(f, b, off)
	case inHot && l.hotTmpfs:
		n, err = pwriteRaw(f, b, off)
	default:
		n, err = f.WriteAt(b, off)
	}
	if inHot && err == nil {
		l.cache.add(seg.base, off, b[:n])
	}
	return n, err
}

// flushLocked writes the buffered records to the active segment. On error
// the file is cut back to its last good record and the buffered records are
// lost (counted): the log is never left with a partial record.
func (l *Log) flushLocked() error {
	if len(l.pending.buf) == 0 {
		return nil
	}
	a := l.active()
	n, err := l.writeAt(a, a.w, l.pending.buf, a.size)
	if err != nil {
		if n > 0 {
			if terr := a.w.Truncate(a.size); terr != nil {
				l.log.Error("buffer: cannot cut back a failed write; recovery will", "segment", filepath.Base(a.w.Name()), "err", terr)
			}
		}
		lost := l.pending.readings
		a.readings -= lost
		if a.ckptEnd > a.size {
			a.ckptEnd = 0 // the checkpoint was in the lost bytes
		}
		l.total -= int64(len(l.pending.buf))
		l.pending.buf, l.pending.readings = l.pending.buf[:0], 0
		l.st.DroppedFull += uint64(lost)
		if !errors.Is(err, syscall.ENOSPC) || !l.full.on && !a.hot {
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
		l.wrote(int64(n))
	}
	l.pending.buf, l.pending.readings = l.pending.buf[:0], 0
	return nil
}

// Append stores rs, oldest first, and assigns each reading its Seq in
// place: the last seq of its Sensor plus one, starting at 1, never reused.
// Either all of rs is stored or none. With sync: always it returns once rs
// is on disk; otherwise rs is durable after the next group commit (at most
// Config.Sync later). It returns ErrFull (counted as refused) when rs does
// not fit, ErrClosed after Close. Safe for concurrent use.
func (l *Log) Append(rs []reading.Reading) error {
	return l.append(rs, false)
}

// AppendForwarded stores rs, oldest first, as Append does, but for
// readings another agent took (the fleet's, forwarded again): each keeps
// the Agent, Sensor and Seq it carries, its end-to-end identity, and rs is
// not modified. The caller sets all three: Agent and Sensor not empty, Seq
// at least 1, as the agent that took the reading assigned it; a reading
// without them refuses the whole batch with ErrNoIdentity. Forwarded
// readings never touch this log's own seqs: not the per-sensor counters
// (a forwarded "air" of agent "gw-1" and a local sensor "air" are
// unrelated), not the SEQ reservation, not Resumed or LastSeq, and
// recovery after a crash tells them apart from local readings. Everything
// else is as for Append: all or none, durability (sync, the hot tail),
// order with local readings as appended, every cursor, max_bytes and
// max_age, ErrFull, ErrClosed, and Stats (Appended counts them, Forwarded
// counts them alone). Duplicates (the same identity twice) are stored
// twice; dropping them is the consumer's job, as for any at-least-once
// stream. Safe for concurrent use.
func (l *Log) AppendForwarded(rs []reading.Reading) error {
	for i := range rs {
		if r := &rs[i]; r.Agent == "" || r.Sensor == "" || r.Seq == 0 {
			return fmt.Errorf("%w: reading %d (agent %q, sensor %q, seq %d)", ErrNoIdentity, i, r.Agent, r.Sensor, r.Seq)
		}
	}
	return l.append(rs, true)
}

func (l *Log) append(rs []reading.Reading, forwarded bool) error {
	if len(rs) == 0 {
		return nil
	}
	l.mu.Lock()
	end, err := l.appendLocked(rs, forwarded)
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
	case l.loop.kick <- struct{}{}:
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
	case l.loop.kick <- struct{}{}:
	default:
	}
	for {
		l.mu.Lock()
		durable, closed := l.durable.end, l.closed
		var wait chan struct{}
		if durable < end && !closed {
			wait = l.durable.wait()
		}
		l.mu.Unlock()
		switch {
		case durable >= end:
			return nil
		case closed:
			return ErrClosed
		}
		if err := waitDone(ctx, wait); err != nil {
			return err
		}
	}
}

// appendLocked stores one batch; mu is held. Its steps: take the seqs and
// encode (encode), make room within the budget and the active segment
// (makeSpace), reserve seqs when due, queue the records (enqueue), write
// them when due (writeBatch), hand out the seqs and, with a hot tail, make
// them readable at once (inHot).
func (l *Log) appendLocked(rs []reading.Reading, forwarded bool) (int64, error) {
	if l.closed {
		return 0, ErrClosed
	}
	nowNS := l.now().UnixNano()
	b := &l.scratch
	defer b.reset()
	if err := l.encode(b, rs, forwarded); err != nil {
		return 0, err
	}
	n := uint64(len(rs))
	if l.hot == "" && l.declared && len(l.cursors) == 0 {
		return l.discard(b, rs, forwarded), nil
	}
	if err := l.makeSpace(int64(len(b.enc))); err != nil {
		l.seq.giveBack(b)
		l.st.Refused += n
		return 0, err
	}
	if b.reserve {
		// Before a seq beyond its reservation is handed out (reserve.go).
		l.reserveLocked(nil)
	}
	l.enqueue(b.enc, rs, nowNS)
	if err := l.writeBatch(b, rs, nowNS); err != nil {
		return 0, err
	}
	// Seqs are handed out only now that the batch is accepted.
	for i := range rs {
		rs[i].Seq = b.seqs[i]
	}
	end := l.end()
	l.st.Appended += n
	if forwarded {
		l.st.Forwarded += n
	}
	if l.hot != "" {
		l.inHot(end, n)
	}
	return end, nil
}

// writeBatch writes the batch just queued, with what was queued before it,
// when there is a hot tail (every Append goes to it at once) or enough is
// queued; mu is held. When the tmpfs is full the batch goes to a new
// segment on disk instead. A batch that cannot be written is lost with the
// queued writes: it is counted as refused, the earlier ones as dropped.
func (l *Log) writeBatch(b *batch, rs []reading.Reading, nowNS int64) error {
	if len(l.pending.buf) < flushBytes && l.hot == "" {
		return nil
	}
	n := uint64(len(rs))
	err := l.flushLocked()
	if err != nil && l.active().hot && errors.Is(err, syscall.ENOSPC) {
		// The tmpfs is full: the batch goes to a segment on disk.
		l.st.DroppedFull -= n
		l.hotOverflow(err)
		l.tail.coldNext = true
		if err := l.nextSegment(); err != nil {
			l.st.Refused += n
			return err
		}
		l.enqueue(b.enc, rs, nowNS)
		err = l.flushLocked()
	}
	if err != nil {
		l.st.DroppedFull -= n
		l.st.Refused += n
		return appendErr(err)
	}
	return nil
}

// inHot notes n readings the hot tail now holds, up to end: they are
// durable as the guarantee defines it (Next may read them), and a group
// commit is due one interval later, to copy what no output acknowledged by
// then; mu is held.
func (l *Log) inHot(end int64, n uint64) {
	l.tail.marks = append(l.tail.marks, mark{end: end, at: time.Now(), n: int64(n)})
	l.durable.advance(end)
	if !l.loop.armed {
		l.loop.timer.Reset(l.syncEvery) // due when this batch has waited an interval
		l.loop.armed = true
	}
}

// discard accepts a batch that nothing will read back (SetReaders with no
// name) without a hot tail to keep it in: it takes its seqs, reserved as
// usual, and writes nothing; mu is held.
func (l *Log) discard(b *batch, rs []reading.Reading, forwarded bool) int64 {
	if b.reserve {
		l.reserveLocked(nil)
	}
	for i := range rs {
		rs[i].Seq = b.seqs[i]
	}
	l.st.Appended += uint64(len(rs))
	if forwarded {
		l.st.Forwarded += uint64(len(rs))
	}
	return l.end()
}

// encode takes the seqs of rs (of its own identity when forwarded) and
// encodes rs into b. A reading too large to store refuses the batch and
// gives its seqs back.
func (l *Log) encode(b *batch, rs []reading.Reading, forwarded bool) error {
	for i := range rs {
		r := rs[i]
		if !forwarded {
			r.Seq = l.seq.next(r.Sensor, b)
		}
		b.seqs = append(b.seqs, r.Seq)
		before := len(b.enc)
		b.enc = appendReading(b.enc, &r, forwarded)
		if n := len(b.enc) - before - headerLen; n > maxReadingPayload {
			l.seq.giveBack(b)
			return fmt.Errorf("buffer: reading of sensor %q is %d bytes encoded, more than %d", r.Sensor, n, maxReadingPayload)
		}
	}
	return nil
}

// makeSpace makes room for need more bytes of records: within max_bytes
// (makeRoom), and in a new segment (nextSegment) when they would overflow
// the active one.
func (l *Log) makeSpace(need int64) error {
	a := l.active()
	roll := a.readings > 0 && a.size+int64(len(l.pending.buf))+need > l.segBytes
	if roll {
		need += l.ckptLen + magicLen + 64 // the new segment's header
	}
	if l.total+need > int64(l.cfg.MaxBytes) {
		if err := l.makeRoom(need); err != nil {
			return err
		}
	}
	if !roll {
		return nil
	}
	return l.nextSegment()
}

// nextSegment starts the next segment. A disk found full when it is
// created is, with drop_oldest, treated like the budget: the oldest
// segment goes, and the segment is tried once more.
func (l *Log) nextSegment() error {
	err := l.rollover()
	if errors.Is(err, syscall.ENOSPC) && l.cfg.Full == FullDropOldest && l.dropOldestForDisk() {
		err = l.rollover()
	}
	if errors.Is(err, syscall.ENOSPC) {
		l.noteWrite(err)
	}
	if err != nil {
		return appendErr(err)
	}
	return nil
}

// appendErr is the error Append returns for a failed write: ErrFull for a
// full disk.
func appendErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	return fmt.Errorf("buffer: %w", err)
}

// enqueue adds the encoded readings rs to the pending writes of the active
// segment and notes their times for max_age.
func (l *Log) enqueue(enc []byte, rs []reading.Reading, nowNS int64) {
	l.pending.buf = append(l.pending.buf, enc...)
	l.pending.readings += int64(len(rs))
	l.total += int64(len(enc))
	a := l.active()
	for i := range rs {
		a.noteReading(ageNS(&rs[i], nowNS))
	}
}

// ageNS is the time max_age judges r by, in unix nanoseconds (nowNS for
// the zero time).
func ageNS(r *reading.Reading, nowNS int64) int64 {
	if r.Clock == reading.ClockUnsynced {
		// Taken on a wrong clock: its age is unknown until the clock is
		// set, and the jump then would make it look years old. max_age
		// never drops it; max_bytes still bounds it.
		return math.MaxInt64
	}
	return timeNS(r.Time, nowNS)
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
