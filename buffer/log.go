package buffer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/publish"
	"github.com/kelvin-gw/kelvin/reading"
)

// Errors returned by the buffer, matched with errors.Is.
var (
	// ErrFull is returned by Append when the readings do not fit: the disk
	// budget is used up with full: block_newest, or the disk itself is full.
	ErrFull = errors.New("buffer: full")
	// ErrClosed is returned by every method once Close was called.
	ErrClosed = errors.New("buffer: closed")
)

var _ publish.Source = (*Cursor)(nil)

// flushBytes is how much Append buffers in memory before writing it to the
// segment file; a group commit writes whatever is buffered.
const flushBytes = 64 << 10

// segExt is the extension of segment files.
const segExt = ".seg"

var segName = regexp.MustCompile(`^([0-9]{20})\.seg$`)

// options are test hooks; the zero value is production behaviour.
type options struct {
	// writeAt writes to a segment file (to inject ENOSPC).
	writeAt func(f *os.File, b []byte, off int64) (int, error)
	// sleep waits for d or until ctx is done (to fake the drain pacing).
	sleep func(ctx context.Context, d time.Duration) error
	// committed is called after a group commit that made cursor positions
	// durable, with those positions.
	committed func(cursors map[string]int64)
	// cursorEvery overrides the interval between cursor records.
	cursorEvery time.Duration
}

// segment is one segment file. Global offsets: a segment holds the bytes
// [base, base+size) of the log.
type segment struct {
	base     int64
	size     int64 // bytes written to the file
	synced   int64 // bytes known to be on disk
	readings int64
	first    int64    // unix ns of the first reading's time; 0 if unknown
	ckptEnd  int64    // file offset after the segment's first checkpoint; 0 if none
	newest   int64    // unix ns of the newest reading's time
	w        *os.File // write handle, until the segment is sealed and synced
	deleted  bool
}

func (s *segment) end() int64 { return s.base + s.size }

// Log is the durable buffer: an append-only log of segment files in one
// directory, with named cursors reading it. All its methods are safe for
// concurrent use.
type Log struct {
	dir       string
	cfg       Config
	syncEvery time.Duration // group commit interval (1s with sync: always, for cursors and retention)
	always    bool
	segBytes  int64
	now       func() time.Time
	log       *slog.Logger
	o         options
	lock      *os.File

	stop chan struct{}
	kick chan struct{} // one pending wake-up of run: something was appended
	wg   sync.WaitGroup

	// syncMu serialises group commits; taken before mu.
	syncMu sync.Mutex

	mu           sync.Mutex
	closed       bool       // no more Append, Sync, Next
	shut         bool       // files closed: no more commits
	segs         []*segment // oldest first; the last one is active
	wbuf         []byte     // records appended to the active segment, not yet written
	wbufReadings int64
	total        int64 // bytes of all segments, wbuf included
	durable      int64 // global offset up to which every byte is on disk
	notify       chan struct{}
	seqs         map[string]uint64
	cursors      map[string]*Cursor
	ckptLen      int64 // size of the last checkpoint record written
	dirDirty     bool
	lastPersist  time.Time // when cursor positions were last written
	corruptSeen  map[int64]bool
	syncErr      error // last background commit error, logged on change
	enc          []byte
	undo         []seqUndo
	seqBuf       []uint64
	st           Stats
}

type seqUndo struct {
	sensor  string
	seq     uint64
	existed bool
}

// Open opens the buffer in dir, creating dir if needed, recovers it after a
// crash (see the package doc) and starts the background group commit. cfg
// is defaulted with SetDefaults and validated. now is the clock for max_age
// and drain_rate (nil: wallclock.Now); log receives recovery and drop events
// (nil: discarded). Only one process may open dir at a time.
func Open(dir string, cfg Config, now func() time.Time, log *slog.Logger) (*Log, error) {
	return open(dir, cfg, now, log, options{})
}

func open(dir string, cfg Config, now func() time.Time, log *slog.Logger, o options) (*Log, error) {
	cfg.SetDefaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("buffer: config: %w", errors.Join(errs...))
	}
	every, always, _ := cfg.syncMode()
	if now == nil {
		now = wallclock.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.writeAt == nil {
		o.writeAt = func(f *os.File, b []byte, off int64) (int, error) { return f.WriteAt(b, off) }
	}
	if o.sleep == nil {
		o.sleep = sleepCtx
	}
	if o.cursorEvery == 0 {
		o.cursorEvery = every
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("buffer: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	l := &Log{
		dir: dir, cfg: cfg, syncEvery: every, always: always, segBytes: cfg.segmentBytes(),
		now: now, log: log, o: o, lock: lock,
		stop:        make(chan struct{}),
		kick:        make(chan struct{}, 1),
		notify:      make(chan struct{}),
		seqs:        map[string]uint64{},
		cursors:     map[string]*Cursor{},
		corruptSeen: map[int64]bool{},
		lastPersist: now(),
	}
	if err := l.recover(); err != nil {
		for _, s := range l.segs {
			if s.w != nil {
				s.w.Close()
			}
		}
		lock.Close()
		return nil, err
	}
	l.wg.Add(1)
	go l.run()
	return l, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (l *Log) segPath(base int64) string {
	return filepath.Join(l.dir, fmt.Sprintf("%020d%s", base, segExt))
}

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

// end is the global offset after the last appended byte.
func (l *Log) end() int64 {
	a := l.active()
	return a.end() + int64(len(l.wbuf))
}

// recover scans every segment, truncates a torn tail, rebuilds the seq
// table and cursor positions, and makes everything on disk durable.
func (l *Log) recover() error {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("buffer: %w", err)
	}
	var bases []int64
	for _, e := range entries {
		m := segName.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		b, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			continue
		}
		bases = append(bases, b)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	cursorPos := map[string]int64{}
	openNS := l.now().UnixNano()
	needRoll := false
	for i, base := range bases {
		last := i == len(bases)-1
		seg, unreadable, err := l.scanSegment(base, last, openNS, cursorPos)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, seg)
		if last && unreadable {
			needRoll = true // never append after bytes we cannot read
		}
	}
	if len(l.segs) == 0 {
		if err := l.createSegment(0); err != nil {
			return fmt.Errorf("buffer: %w", err)
		}
	} else {
		// Cursors first: the checkpoints written below must carry them.
		oldest, end := l.segs[0].base, l.end()
		for name, pos := range cursorPos {
			if pos < oldest {
				pos = oldest
			}
			if pos > end {
				l.log.Warn("buffer: cursor beyond the end of the log, moved back to it", "cursor", name, "offset", pos, "end", end)
				pos = end
			}
			c := l.newCursor(name)
			ap, err := l.ackPointAt(pos)
			if err != nil {
				return err
			}
			c.acked, c.persisted = ap, pos
		}
		a := l.active()
		switch {
		case a.size < magicLen:
			// A segment created just before a power cut: start it again.
			if err := a.w.Truncate(0); err != nil {
				return fmt.Errorf("buffer: %w", err)
			}
			a.size, a.synced = 0, 0
			if err := l.writeHeader(a); err != nil {
				return fmt.Errorf("buffer: %w", err)
			}
		case needRoll:
			if err := l.createSegment(a.end()); err != nil {
				return fmt.Errorf("buffer: %w", err)
			}
		case a.ckptEnd == 0:
			// The active segment lost its checkpoint: write one, so older
			// segments can be deleted without losing the seq table.
			l.wbuf = appendCheckpoint(l.wbuf, l.seqs, l.cursorPositions())
			a.ckptEnd = a.size + int64(len(l.wbuf))
			if err := l.flushLocked(); err != nil {
				return fmt.Errorf("buffer: %w", err)
			}
		}
	}
	l.total = 0
	for _, s := range l.segs {
		l.total += s.size
	}
	if err := l.syncFiles(); err != nil {
		return fmt.Errorf("buffer: %w", err)
	}
	l.durable = l.end()
	return nil
}

// scanSegment opens and scans one segment file at open.
func (l *Log) scanSegment(base int64, last bool, openNS int64, cursorPos map[string]int64) (*segment, bool, error) {
	path := l.segPath(base)
	name := filepath.Base(path)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, false, fmt.Errorf("buffer: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("buffer: %w", err)
	}
	seg := &segment{base: base, size: st.Size(), w: f}
	var magic [magicLen]byte
	n, _ := f.ReadAt(magic[:], 0)
	validEnd := int64(0)
	unreadable := false
	switch {
	case int64(n) < magicLen:
		// Torn before the magic was written: nothing valid.
	case string(magic[:]) == segMagic:
		validEnd = magicLen
	case string(magic[:magicLen-1]) == segMagic[:magicLen-1]:
		f.Close()
		return nil, false, fmt.Errorf("buffer: %s: unsupported format version %q", name, magic[magicLen-1])
	default:
		l.st.CorruptSkipped++
		l.log.Warn("buffer: corrupt segment header, scanning for records", "segment", name)
		validEnd = magicLen
	}
	if validEnd > 0 {
		var rd segReader
		rd.reset(f, validEnd, seg.size)
		for {
			rec, skipped, ok, err := rd.next()
			if err != nil {
				l.st.CorruptSkipped++
				l.log.Error("buffer: unreadable segment, skipping its rest", "segment", name, "offset", validEnd, "err", err)
				unreadable = true
				break
			}
			if !ok {
				if skipped > 0 {
					validEnd = rd.pos - skipped
				}
				break
			}
			if skipped > 0 {
				l.st.CorruptSkipped++
				l.corruptSeen[base+rec.start-skipped] = true
				l.log.Warn("buffer: skipped corrupt bytes", "segment", name, "offset", rec.start-skipped, "bytes", skipped)
			}
			validEnd = rec.end
			l.applyRecord(seg, rec, openNS, cursorPos, name)
		}
	}
	if unreadable {
		validEnd = seg.size
	}
	if tail := seg.size - validEnd; tail > 0 {
		if last {
			if err := f.Truncate(validEnd); err != nil {
				f.Close()
				return nil, false, fmt.Errorf("buffer: truncate %s: %w", name, err)
			}
			l.st.TornTruncated++
			l.log.Warn("buffer: truncated torn tail", "segment", name, "offset", validEnd, "bytes", tail)
			seg.size = validEnd
		} else {
			l.st.CorruptSkipped++
			l.corruptSeen[base+validEnd] = true
			l.log.Warn("buffer: skipped corrupt tail of a closed segment", "segment", name, "offset", validEnd, "bytes", tail)
		}
	}
	if !last {
		// Flush what a killed process left in the page cache, then close.
		l.st.Fsyncs++
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, false, fmt.Errorf("buffer: sync %s: %w", name, err)
		}
		f.Close()
		seg.w = nil
		seg.synced = seg.size
	}
	return seg, unreadable, nil
}

// applyRecord accounts one valid record found at open.
func (l *Log) applyRecord(seg *segment, rec record, openNS int64, cursorPos map[string]int64, name string) {
	switch rec.kind {
	case kindReading:
		k, err := decodeReadingKey(rec.payload)
		if err != nil {
			l.st.CorruptSkipped++
			l.log.Warn("buffer: skipped undecodable record", "segment", name, "offset", rec.start)
			return
		}
		if k.seq > l.seqs[string(k.sensor)] {
			l.seqs[string(k.sensor)] = k.seq
		}
		t := k.time
		if t == 0 {
			t = openNS
		}
		seg.noteReading(t)
	case kindCheckpoint:
		c, err := decodeCheckpoint(rec.payload)
		if err != nil {
			l.st.CorruptSkipped++
			return
		}
		for s, v := range c.seqs {
			if v > l.seqs[s] {
				l.seqs[s] = v
			}
		}
		for n, p := range c.cursors {
			notePos(cursorPos, n, p)
		}
		if seg.ckptEnd == 0 {
			seg.ckptEnd = rec.end
		}
		l.ckptLen = rec.end - rec.start
	case kindCursor:
		n, p, err := decodeCursor(rec.payload)
		if err != nil {
			l.st.CorruptSkipped++
			return
		}
		notePos(cursorPos, n, p)
	}
}

// notePos records a cursor position found at open: the greatest wins,
// since a cursor never moves back.
func notePos(m map[string]int64, name string, pos int64) {
	if old, ok := m[name]; !ok || pos > old {
		m[name] = pos
	}
}

func (s *segment) noteReading(t int64) {
	if s.readings == 0 {
		s.first = t
	}
	s.readings++
	if t > s.newest {
		s.newest = t
	}
}

// createSegment starts a new active segment at global offset base.
func (l *Log) createSegment(base int64) error {
	f, err := os.OpenFile(l.segPath(base), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o640)
	if err != nil {
		return err
	}
	if err := preallocate(f, l.segBytes); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("preallocate %s: %w", filepath.Base(f.Name()), err)
	}
	seg := &segment{base: base, w: f}
	if err := l.writeHeader(seg); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	l.segs = append(l.segs, seg)
	l.dirDirty = true
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
	l.st.BytesWritten += uint64(n)
	seg.ckptEnd = int64(n)
	l.ckptLen = int64(n) - magicLen
	return nil
}

func (l *Log) cursorPositions() map[string]int64 {
	m := make(map[string]int64, len(l.cursors))
	for n, c := range l.cursors {
		m[n] = c.acked.pos
	}
	return m
}

// syncFiles fsyncs every segment with unsynced bytes and the directory,
// under mu: only for recovery and the rare paths that must make a
// checkpoint durable before deleting a segment.
func (l *Log) syncFiles() error {
	if err := l.flushLocked(); err != nil {
		return err
	}
	for _, s := range l.segs {
		if s.w != nil && s.synced < s.size {
			l.st.Fsyncs++
			if err := s.w.Sync(); err != nil {
				return fmt.Errorf("sync %s: %w", filepath.Base(s.w.Name()), err)
			}
			s.synced = s.size
		}
	}
	if l.dirDirty {
		if err := l.syncDir(); err != nil {
			return err
		}
		l.dirDirty = false
	}
	return nil
}

func (l *Log) syncDir() error {
	d, err := os.Open(l.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	l.st.Fsyncs++
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
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
		l.log.Error("buffer: write failed, buffered readings lost", "segment", filepath.Base(a.w.Name()), "readings", lost, "err", err)
		return fmt.Errorf("write %s: %w", filepath.Base(a.w.Name()), err)
	}
	a.size += int64(n)
	l.st.BytesWritten += uint64(n)
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
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return nil
}

// WaitDurable waits until everything appended before the call is durable,
// or ctx is done: at the next group commit (at once after a quiet spell, at
// most Config.Sync later otherwise), so a caller that must not answer
// before its data is on disk (an HTTP ingest's 202) costs no fsync of its
// own.
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
	enc, undo, seqs := l.enc[:0], l.undo[:0], l.seqBuf[:0]
	defer func() { l.enc, l.undo, l.seqBuf = enc[:0], undo[:0], seqs[:0] }()
	rollback := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			if u := undo[i]; u.existed {
				l.seqs[u.sensor] = u.seq
			} else {
				delete(l.seqs, u.sensor)
			}
		}
	}
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
				l.log.Warn("buffer: disk full, readings refused", "readings", len(rs), "err", err)
				return 0, fmt.Errorf("%w: %w", ErrFull, err)
			}
			return 0, fmt.Errorf("buffer: %w", err)
		}
		a = l.active()
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
	if len(l.wbuf) >= flushBytes {
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
		l.wbuf = appendCheckpoint(l.wbuf, l.seqs, l.cursorPositions())
		a.ckptEnd = a.size + int64(len(l.wbuf))
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
	if len(l.cursors) == 0 {
		unread = s.readings
	}
	for name, c := range l.cursors {
		if c.acked.pos >= s.end() {
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
	if s.w != nil {
		s.w.Close()
		s.w = nil
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
// cursor has passed, that hold no reading, or whose newest reading is older
// than max_age. It stops at the first segment to keep.
func (l *Log) retainLocked(allowSync bool) {
	cutoff := l.now().Add(-l.cfg.MaxAge).UnixNano()
	var aged dropEvent
	for len(l.segs) > 1 {
		s := l.segs[0]
		consumed := s.readings == 0
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

// run is the background group commit: at most one commit per syncEvery,
// and as soon as allowed. An Append after a quiet spell of at least
// syncEvery is committed at once (a sensor read every few seconds is
// published within one fsync, not up to a second later); appends that come
// faster are committed together syncEvery after the previous commit. Either
// way there are never more commits than one per syncEvery.
func (l *Log) run() {
	defer l.wg.Done()
	t := time.NewTimer(l.syncEvery)
	defer t.Stop()
	var last time.Time // of the last commit; zero: the first Append commits at once
	for {
		select {
		case <-l.stop:
			return
		case <-l.kick:
			if time.Since(last) < l.syncEvery {
				continue // the timer commits it at last+syncEvery
			}
		case <-t.C:
		}
		last = time.Now()
		t.Reset(l.syncEvery)
		{
			l.syncMu.Lock()
			err := l.commit(false)
			l.syncMu.Unlock()
			l.mu.Lock()
			switch {
			case err != nil && (l.syncErr == nil || l.syncErr.Error() != err.Error()):
				l.log.Error("buffer: group commit failed", "err", err)
			case err == nil && l.syncErr != nil:
				l.log.Info("buffer: group commit works again")
			}
			l.syncErr = err
			l.mu.Unlock()
		}
	}
}

// syncTo makes every byte before global offset end durable, sharing one
// fsync among concurrent callers.
func (l *Log) syncTo(end int64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	done := l.durable >= end
	l.mu.Unlock()
	if done {
		return nil
	}
	return l.commit(false)
}

// Sync writes and fsyncs everything appended so far and returns once it is
// durable (cursor positions are written at most once per sync interval, not
// by every Sync). Safe for concurrent use.
func (l *Log) Sync() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return l.commit(false)
}

// commit is one group commit; syncMu is held. It writes the buffered
// records and, at most once per interval (or when force), one record per
// cursor that moved; fsyncs outside mu every file with unsynced bytes (and
// the directory after a segment was created); then advances the durable
// offset, wakes Next, and deletes the segments no longer needed.
func (l *Log) commit(force bool) error {
	l.mu.Lock()
	if l.shut {
		l.mu.Unlock()
		return ErrClosed
	}
	now := l.now()
	if a := l.active(); !l.closed && a.readings > 0 && a.newest < now.Add(-l.cfg.MaxAge).UnixNano() {
		if err := l.rollover(); err != nil {
			l.log.Error("buffer: cannot start a segment", "err", err)
		}
	}
	var persisted map[string]int64
	if force || now.Sub(l.lastPersist) >= l.o.cursorEvery || now.Before(l.lastPersist) {
		for name, c := range l.cursors {
			if c.dirty {
				if persisted == nil {
					persisted = map[string]int64{}
				}
				l.wbuf = appendCursor(l.wbuf, name, c.acked.pos)
				persisted[name] = c.acked.pos
				c.dirty = false
			}
		}
		l.lastPersist = now
	}
	var firstErr error
	if err := l.flushLocked(); err != nil {
		firstErr = err
		for name := range persisted {
			l.cursors[name].dirty = true
		}
		persisted = nil
	}
	type job struct {
		seg  *segment
		f    *os.File
		size int64
	}
	var jobs []job
	for _, s := range l.segs {
		if s.w != nil && s.synced < s.size {
			jobs = append(jobs, job{s, s.w, s.size})
		}
	}
	dir := l.dirDirty
	l.dirDirty = false
	target := l.active().end()
	l.mu.Unlock()

	errs := make([]error, len(jobs))
	for i, j := range jobs {
		errs[i] = j.f.Sync()
	}
	var dirErr error
	if dir {
		dirErr = l.syncDirCounted()
		if dirErr != nil && firstErr == nil {
			firstErr = dirErr
		}
	}

	l.mu.Lock()
	l.st.Fsyncs += uint64(len(jobs))
	if dirErr != nil {
		l.dirDirty = true
	}
	failed := false
	for i, j := range jobs {
		if j.seg.deleted {
			continue
		}
		if errs[i] != nil {
			failed = true
			if firstErr == nil {
				firstErr = fmt.Errorf("sync %s: %w", filepath.Base(j.f.Name()), errs[i])
			}
			continue
		}
		j.seg.synced = max(j.seg.synced, j.size)
		if j.seg != l.active() && j.seg.synced >= j.seg.size && j.seg.w != nil {
			j.seg.w.Close()
			j.seg.w = nil
		}
	}
	if firstErr == nil && !failed {
		if target > l.durable {
			l.durable = target
			close(l.notify)
			l.notify = make(chan struct{})
		}
		for name, pos := range persisted {
			if c := l.cursors[name]; c != nil && pos > c.persisted {
				c.persisted = pos
			}
		}
	} else {
		for name := range persisted {
			if c := l.cursors[name]; c != nil {
				c.dirty = true
			}
		}
		persisted = nil
	}
	l.retainLocked(false)
	l.mu.Unlock()
	if persisted != nil && l.o.committed != nil {
		l.o.committed(persisted)
	}
	if firstErr != nil {
		return fmt.Errorf("buffer: %w", firstErr)
	}
	return nil
}

// syncDirCounted fsyncs the directory outside mu.
func (l *Log) syncDirCounted() error {
	d, err := os.Open(l.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	err = d.Sync()
	l.mu.Lock()
	l.st.Fsyncs++
	l.mu.Unlock()
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// Close writes and fsyncs everything, persists every cursor position, and
// closes the files. Next then returns ErrClosed, as do all other methods.
// Close waits for a commit in progress; a second Close returns ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	l.wg.Wait()
	l.syncMu.Lock()
	err := l.commit(true)
	l.syncMu.Unlock()
	l.mu.Lock()
	l.shut = true
	for _, s := range l.segs {
		if s.w != nil {
			s.w.Close()
			s.w = nil
		}
	}
	close(l.notify)
	for _, c := range l.cursors {
		if c.mu.TryLock() {
			c.closeReader()
			c.mu.Unlock()
		}
	}
	l.mu.Unlock()
	l.lock.Close()
	return err
}

// Stats is a snapshot of the buffer's counters; the counters run from Open.
type Stats struct {
	Bytes          int64         `json:"bytes"`           // size of the segment files
	Segments       int           `json:"segments"`        // number of segment files
	Appended       uint64        `json:"appended"`        // readings stored by Append
	DroppedFull    uint64        `json:"dropped_full"`    // unsent readings deleted to make room (max_bytes, disk full)
	DroppedAge     uint64        `json:"dropped_age"`     // unsent readings deleted as older than max_age
	Refused        uint64        `json:"refused"`         // readings Append refused (ErrFull or a write error)
	CorruptSkipped uint64        `json:"corrupt_skipped"` // corrupt regions skipped (bit rot)
	TornTruncated  uint64        `json:"torn_truncated"`  // torn tails cut off at open (power cut mid-write)
	Fsyncs         uint64        `json:"fsyncs"`          // fsync calls, files and directory
	BytesWritten   uint64        `json:"bytes_written"`   // bytes written to segment files
	Cursors        []CursorStats `json:"cursors"`         // by name
}

// CursorStats is one cursor's share of Stats.
type CursorStats struct {
	Name         string    `json:"name"`
	Backlog      int64     `json:"backlog"`                // readings not yet acknowledged
	BacklogBytes int64     `json:"backlog_bytes"`          // log bytes after the cursor
	OldestUnsent time.Time `json:"oldest_unsent,omitzero"` // time of the oldest unacknowledged reading, when known
	Dropped      uint64    `json:"dropped"`                // readings deleted before this cursor acknowledged them
}

// Stats returns the counters and each cursor's backlog. It is cheap (no
// I/O) and safe for concurrent use.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.st
	s.Bytes = l.total
	s.Segments = len(l.segs)
	end := l.end()
	for _, name := range sortedKeys(l.cursors) {
		c := l.cursors[name]
		cs := CursorStats{Name: name, Dropped: c.dropped, BacklogBytes: end - c.acked.pos}
		for _, seg := range l.segs {
			if seg.base >= c.acked.segBase {
				cs.Backlog += seg.readings
			}
		}
		cs.Backlog = max(0, cs.Backlog-c.acked.nInSeg)
		switch {
		case cs.Backlog == 0:
		case !c.headTime.IsZero():
			cs.OldestUnsent = c.headTime
		case c.acked.nInSeg == 0:
			if seg := l.segmentAt(c.acked.segBase); seg != nil && seg.readings > 0 && seg.first != 0 {
				cs.OldestUnsent = time.Unix(0, seg.first).UTC()
			}
		}
		s.Cursors = append(s.Cursors, cs)
	}
	return s
}

// segmentAt returns the segment whose base is base, or nil.
func (l *Log) segmentAt(base int64) *segment {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base >= base })
	if i < len(l.segs) && l.segs[i].base == base {
		return l.segs[i]
	}
	return nil
}

// segmentAfter returns the first segment whose base is above base, or nil.
func (l *Log) segmentAfter(base int64) *segment {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > base })
	if i < len(l.segs) {
		return l.segs[i]
	}
	return nil
}

// ackPointAt builds the ack point of global offset pos: its segment and the
// number of readings before it there (by scanning that segment).
func (l *Log) ackPointAt(pos int64) (ackPoint, error) {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > pos }) - 1
	if i < 0 {
		i = 0
	}
	s := l.segs[i]
	ap := ackPoint{pos: pos, segBase: s.base}
	if pos <= s.base+magicLen {
		return ap, nil
	}
	f, err := os.Open(l.segPath(s.base))
	if err != nil {
		return ap, fmt.Errorf("buffer: %w", err)
	}
	defer f.Close()
	var rd segReader
	rd.reset(f, magicLen, min(pos-s.base, s.size))
	for {
		rec, _, ok, err := rd.next()
		if err != nil || !ok {
			return ap, nil
		}
		if rec.kind == kindReading {
			ap.nInSeg++
		}
	}
}
