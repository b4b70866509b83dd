package buffer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/kelvin-gw/kelvin/internal/ctxsleep"
	"github.com/kelvin-gw/kelvin/internal/wallclock"
)

// Errors returned by the buffer, matched with errors.Is.
var (
	// ErrFull is returned by Append when the readings do not fit: the disk
	// budget is used up with full: block_newest, or the disk itself is full.
	ErrFull = errors.New("buffer: full")
	// ErrClosed is returned by every method once Close was called.
	ErrClosed = errors.New("buffer: closed")
	// ErrNoIdentity is returned by AppendForwarded for a reading without
	// its Agent, Sensor or Seq.
	ErrNoIdentity = errors.New("buffer: forwarded reading without agent, sensor or seq")
)

// flushBytes is how much Append buffers in memory before writing it to the
// segment file; a group commit writes whatever is buffered.
const flushBytes = 64 << 10

// segExt is the extension of segment files.
const segExt = ".seg"

// options are test hooks; the zero value is production behaviour.
type options struct {
	// writeAt writes to a segment file (to inject ENOSPC); nil: Log.writeAt.
	writeAt func(f *os.File, b []byte, off int64) (int, error)
	// readAt is a cursor's read of a segment file (to count them).
	readAt func(f *os.File, b []byte, off int64) (int, error)
	// sleep waits for d or until ctx is done (to fake the drain pacing).
	sleep func(ctx context.Context, d time.Duration) error
	// committed is called after a group commit that made cursor positions
	// durable, with those positions.
	committed func(cursors map[string]int64)
	// cursorEvery overrides the interval between cursor records.
	cursorEvery time.Duration
	// hotCandidates overrides the directories hot_dir: auto tries.
	hotCandidates []string
	// preallocate reserves disk for a new segment (to inject ENOSPC).
	preallocate func(f *os.File, n int64) error
	// sensors and locked are OpenOptions'.
	sensors []string
	locked  func()
}

// setDefaults fills in production behaviour for every hook left nil;
// cursorEvery defaults to the sync interval every.
func (o *options) setDefaults(every time.Duration) {
	if o.readAt == nil {
		o.readAt = func(f *os.File, b []byte, off int64) (int, error) { return f.ReadAt(b, off) }
	}
	if o.sleep == nil {
		o.sleep = ctxsleep.Sleep
	}
	if o.cursorEvery == 0 {
		o.cursorEvery = every
	}
	if o.preallocate == nil {
		o.preallocate = preallocate
	}
	if o.hotCandidates == nil {
		o.hotCandidates = hotCandidates()
	}
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

	// With a hot directory (hot.go).
	hot     bool     // the file is in the hot directory
	spilled int64    // file offset up to which every unacknowledged byte is on disk
	cold    *os.File // the disk file of a hot segment, once created
}

func (s *segment) end() int64 { return s.base + s.size }

// closeFiles closes the segment's open handles.
func (s *segment) closeFiles() {
	if s.w != nil {
		s.w.Close()
		s.w = nil
	}
	if s.cold != nil {
		s.cold.Close()
		s.cold = nil
	}
}

// Log is the durable buffer: an append-only log of segment files in one
// directory, with named cursors reading it. All its methods are safe for
// concurrent use.
//
// Its state is grouped by job: what Open fixed (settings), the segments
// (segList), the records not yet written (pending), what Next may read
// (durable), this log's own seqs (seq), the cursors, the group commit's
// bookkeeping (commits, loop) and the hot tail's (tail).
type Log struct {
	settings            // fixed at Open
	lock     *os.File   // the flock on dir
	loop     commitLoop // the background group commit (commit.go)

	// syncMu serialises group commits; taken before mu.
	syncMu sync.Mutex

	// mu guards everything below, and the Cursors' shared fields.
	mu sync.Mutex
	lifecycle
	segList
	pending     pendingWrite       // records appended, not yet written (append.go)
	durable     durablePoint       // what Next may read (commit.go)
	seq         seqTable           // this log's own seqs and their reservations (reserve.go)
	cursors     map[string]*Cursor // by name (cursor.go)
	declared    bool               // SetReaders was called: without a cursor, nothing reads the log
	commits     commitState        // what the next group commit owes (commit.go)
	tail        hotTail            // the hot tail's unacknowledged Appends (hot.go)
	cache       hotCache           // the newest bytes of the hot segment, for cursors (hotcache.go)
	full        diskState          // a full disk (noteWrite)
	corruptSeen map[int64]bool     // corrupt regions already counted, by global offset
	scratch     batch              // reused by every Append (append.go)
	st          Stats
	wear        wear // st's Fsyncs and BytesWritten in each hour of the last day (wear.go)
}

// settings is what Open fixes for the life of a Log.
type settings struct {
	dir       string
	cfg       Config
	syncEvery time.Duration // group commit interval (1s with sync: always, for cursors and retention)
	always    bool          // sync: always
	segBytes  int64
	now       func() time.Time
	log       *slog.Logger
	o         options
	hot       string // the hot directory (hot.go); "" without one
	hotMax    int64  // the hot tail's bound in bytes (hotBound)
	hotTmpfs  bool   // the hot directory is on a tmpfs: its writes are raw (writeAt)
}

// lifecycle is where a Log is between Open and Close; guarded by Log.mu.
type lifecycle struct {
	opening bool // in Open: a nearly full disk is not fatal
	closed  bool // no more Append, Sync, Next
	shut    bool // files closed: no more commits
}

// segList is the log's segments; guarded by Log.mu.
type segList struct {
	segs    []*segment // oldest first; the last one is active
	total   int64      // bytes of all segments, pending writes included
	ckptLen int64      // size of the last checkpoint record written
}

// diskState follows a full disk, for DiskFull and its log lines.
type diskState struct {
	on      bool      // the last write to disk failed for lack of space
	since   time.Time // when it started
	logged  time.Time // when it was last logged
	refused uint64    // Stats.Refused when it started
}

// Open opens the buffer in dir, creating dir if needed, recovers it after a
// crash (see the package doc) and starts the background group commit. cfg
// is defaulted with SetDefaults and validated. now is the clock for max_age
// and drain_rate (nil: wallclock.Now); log receives recovery and drop events
// (nil: discarded). Only one process may open dir at a time.
func Open(dir string, cfg Config, now func() time.Time, log *slog.Logger) (*Log, error) {
	return open(dir, cfg, now, log, options{})
}

// OpenOptions are what OpenWith adds to Open.
type OpenOptions struct {
	// Sensors are the sensors known to be coming: Open reserves their
	// first seqs with the reservation it writes anyway, so that a sensor's
	// first reading does not wait for a reservation write (two fsyncs) of
	// its own. Other sensors are reserved at their first reading.
	Sensors []string
	// Locked, when set, is called once dir's lock is held, before the log
	// is recovered and its reservation written: a caller that must not act
	// while another process owns the buffer (connect to a broker under the
	// agent's client id, taking the running agent's session over) can start
	// then rather than after Open returns. It is not called when the lock
	// cannot be taken, and it must not block.
	Locked func()
}

// OpenWith is Open with the options of o.
func OpenWith(dir string, cfg Config, now func() time.Time, log *slog.Logger, o OpenOptions) (*Log, error) {
	return open(dir, cfg, now, log, options{sensors: o.Sensors, locked: o.Locked})
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
	o.setDefaults(every)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("buffer: %w", err)
	}
	hot, err := resolveHot(dir, cfg.HotDir, o.hotCandidates)
	if err != nil {
		return nil, fmt.Errorf("buffer: %w", err)
	}
	if hot == "" && cfg.HotDir == HotDirAuto {
		log.Info("buffer: no hot directory ($RUNTIME_DIRECTORY unset, /run/kelvin not writable): every reading an output will read is written to disk", "candidates", o.hotCandidates)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	if o.locked != nil {
		o.locked()
	}
	l := &Log{
		settings: settings{dir: dir, cfg: cfg, syncEvery: every, always: always, segBytes: cfg.segmentBytes(),
			now: now, log: log, o: o, hot: hot, hotMax: hotBound(cfg, hot, cfg.segmentBytes()), hotTmpfs: hot != "" && isTmpfs(hot)},
		lock:        lock,
		loop:        commitLoop{stop: make(chan struct{}), kick: make(chan struct{}, 1), acked: make(chan struct{}, 1), timer: time.NewTimer(every), armed: true},
		lifecycle:   lifecycle{opening: true},
		durable:     durablePoint{notify: make(chan struct{})},
		seq:         seqTable{last: map[string]uint64{}},
		cursors:     map[string]*Cursor{},
		commits:     commitState{lastPersist: now()},
		corruptSeen: map[int64]bool{},
	}
	if err := l.openFiles(); err != nil {
		for _, s := range l.segs {
			if s.w != nil {
				s.w.Close()
			}
		}
		lock.Close()
		return nil, err
	}
	l.resumeAfterReservation()
	known := make(map[string]uint64, len(o.sensors))
	for _, s := range o.sensors {
		known[s] = 0 // reserved from the seq it resumes at
	}
	l.reserveLocked(known)
	l.loop.wg.Add(1)
	go l.run()
	return l, nil
}

func (l *Log) segPath(base int64) string {
	return filepath.Join(l.dir, fmt.Sprintf("%020d%s", base, segExt))
}

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

// end is the global offset after the last appended byte.
func (l *Log) end() int64 {
	a := l.active()
	return a.end() + int64(len(l.pending.buf))
}

func (l *Log) cursorPositions() map[string]int64 {
	m := make(map[string]int64, len(l.cursors))
	for n, c := range l.cursors {
		m[n] = c.acked.pos
	}
	return m
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
	close(l.loop.stop)
	l.loop.wg.Wait()
	l.syncMu.Lock()
	err := l.commit(true, true)
	l.syncMu.Unlock()
	l.mu.Lock()
	// What the disk holds, taken before the hot segments are dropped: a
	// hot segment every output acknowledged is dropped without a copy, and
	// after that it would count as on disk whole.
	end := l.coldEnd()
	if l.hot != "" {
		// Everything unacknowledged is on disk now (or, if the disk
		// failed, stays in the hot directory for the next Open).
		floor := l.minAcked()
		for _, s := range l.segs {
			if s.hot && (s.spilled >= s.size || floor >= s.end()) {
				l.dropHot(s)
			}
		}
	}
	if err == nil {
		l.recordEndLocked(end)
	}
	l.shut = true
	for _, s := range l.segs {
		s.closeFiles()
	}
	close(l.durable.notify)
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
	Appended       uint64        `json:"appended"`        // readings stored by Append and AppendForwarded
	Forwarded      uint64        `json:"forwarded"`       // readings stored by AppendForwarded
	DroppedFull    uint64        `json:"dropped_full"`    // unsent readings deleted to make room (max_bytes, disk full)
	DroppedAge     uint64        `json:"dropped_age"`     // unsent readings deleted as older than max_age
	Refused        uint64        `json:"refused"`         // readings Append refused (ErrFull or a write error)
	CorruptSkipped uint64        `json:"corrupt_skipped"` // corrupt regions skipped (bit rot)
	TornTruncated  uint64        `json:"torn_truncated"`  // torn tails cut off at open (power cut mid-write)
	LostBytes      uint64        `json:"lost_bytes"`      // bytes the log lost after they were durable (found at open)
	Reservations   uint64        `json:"reservations"`    // seq reservations written
	Fsyncs         uint64        `json:"fsyncs"`          // fsync calls, files and directory
	BytesWritten   uint64        `json:"bytes_written"`   // bytes written to segment files
	Cursors        []CursorStats `json:"cursors"`         // by name

	// LastDay is Fsyncs and BytesWritten in the last 24 hours: what the
	// storage pays per day now, whatever an outage long ago cost.
	LastDay WearStats `json:"last_24h"`

	// OnDisk is the number of readings on disk that some output has not
	// acknowledged: 0 while the outputs keep up ("in memory, nothing
	// pending"), the backlog the disk holds otherwise.
	OnDisk int64 `json:"on_disk"`
	// Hot is the hot directory in use (see Config.HotDir), "" for none.
	Hot string `json:"hot_dir,omitempty"`
	// HotBytes is the bytes the hot tail holds in the tmpfs, at most
	// HotMaxBytes (its bound: hot_max_bytes, or what auto chose).
	HotBytes    int64 `json:"hot_bytes,omitempty"`
	HotMaxBytes int64 `json:"hot_max_bytes,omitempty"`
	// HotFull is true while the active segment is on disk because the hot
	// tail reached its bound or the tmpfs was full.
	HotFull bool `json:"hot_full"`
	// DiskFull is DiskFull's answer.
	DiskFull bool `json:"disk_full"`
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
	s.LastDay = l.wear.day(l.now())
	s.Bytes = l.total
	s.Segments = len(l.segs)
	end := l.end()
	for _, name := range sortedKeys(l.cursors) {
		c := l.cursors[name]
		cs := CursorStats{Name: name, Dropped: c.dropped, BacklogBytes: end - c.acked.pos, Backlog: l.backlog(c)}
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
		s.OnDisk = max(s.OnDisk, cs.Backlog)
	}
	if len(l.cursors) == 0 && !l.declared {
		for _, seg := range l.segs {
			s.OnDisk += seg.readings
		}
	}
	s.OnDisk = max(0, s.OnDisk-l.hotReadings()-l.pending.readings)
	s.Hot, s.DiskFull = l.hot, l.full.on
	if l.hot != "" {
		s.HotBytes, s.HotMaxBytes, s.HotFull = l.hotBytes(), l.hotMax, l.tail.overflow
	}
	return s
}

// backlog is the number of readings c has not acknowledged; mu is held.
func (l *Log) backlog(c *Cursor) int64 {
	var n int64
	for _, seg := range l.segs {
		if seg.base >= c.acked.segBase {
			n += seg.readings
		}
	}
	return max(0, n-c.acked.nInSeg)
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

// openFiles copies a hot tail a killed process left to disk, recovers the
// log and, with a hot directory, starts a segment there.
func (l *Log) openFiles() error {
	if l.hot != "" {
		if err := l.promoteHot(); err != nil {
			return fmt.Errorf("buffer: hot_dir: %w", err)
		}
	}
	if err := l.recover(); err != nil {
		return err
	}
	if l.hot != "" && !l.active().hot {
		if err := l.rollover(); err != nil {
			return fmt.Errorf("buffer: hot_dir: %w", err)
		}
		l.durable.end = l.end()
	}
	l.opening = false
	return nil
}

// fullSummaryEvery is how often a full disk is logged again while it lasts.
const fullSummaryEvery = time.Minute

// noteWrite follows the disk's state from the outcome of a write to it; mu
// is held. A full disk is logged when it starts, then once a minute with
// what it cost, and when it ends; never per reading.
func (l *Log) noteWrite(err error) {
	full := errors.Is(err, syscall.ENOSPC)
	now := time.Now()
	switch {
	case full && !l.full.on:
		l.full = diskState{on: true, since: now, logged: now, refused: l.st.Refused}
		l.log.Warn("buffer: disk full: readings are refused (or, with a hot tail, kept in memory) until space returns", "dir", l.dir, "err", err)
	case full && now.Sub(l.full.logged) >= fullSummaryEvery:
		l.full.logged = now
		l.log.Warn("buffer: disk still full", "full_seconds", int(now.Sub(l.full.since).Seconds()), "refused", l.st.Refused-l.full.refused)
	case err == nil && l.full.on:
		l.full.on = false
		l.log.Info("buffer: disk has space again, storing", "full_seconds", int(now.Sub(l.full.since).Seconds()), "refused", l.st.Refused-l.full.refused)
	}
}

// setDiskFull marks the disk full from an error found outside a write (a
// failed preallocation at Open).
func (l *Log) setDiskFull(err error) { l.noteWrite(err) }

// DiskFull reports whether the last write to disk failed for lack of
// space: readings are then refused (ErrFull), or, with a hot tail, kept in
// memory without their power-cut protection, until a write succeeds. The
// agent is not ready while it is true. Safe for concurrent use.
func (l *Log) DiskFull() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.full.on
}
