package buffer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
)

// ackPoint is a position in the log: a global offset, the segment it is in,
// and the number of readings of that segment before it (for backlogs).
type ackPoint struct {
	pos     int64
	segBase int64
	nInSeg  int64
}

// Cursor is one output's read position in the log; it implements
// publish.Source. Its position is persisted at most once per sync interval
// and on Close, so after a crash it may be a little behind (readings are
// delivered again) but never ahead of what was acknowledged. One goroutine
// consumes a cursor (Next then Ack); Stats may be read concurrently.
type Cursor struct {
	l    *Log
	name string

	// Guarded by Log.mu.
	acked      ackPoint  // everything before acked.pos is acknowledged
	persisted  int64     // position last made durable in the log
	dirty      bool      // acked moved since it was last written
	dropped    uint64    // readings deleted before acknowledged
	headTime   time.Time // time of the oldest unacknowledged reading, when known
	registered bool      // returned by Log.Cursor in this process

	// Guarded by mu, the consumer's lock.
	mu       sync.Mutex
	f        *os.File // read handle on segment rdBase
	rdBase   int64
	src      segSource // what rd reads: f, or the hot cache (hotcache.go)
	rd       segReader
	dec      decoder
	out      []reading.Reading // the readings Next decodes, reused
	batch    []ackPoint        // position after each reading of the last Next
	times    []time.Time
	batchEnd ackPoint // position where the last Next stopped
	tokens   float64
	refilled time.Time
}

// validCursorName reports whether name is 1 to 64 letters, digits, '.',
// '_' or '-'. (A regexp for it, compiled at package init, cost every start
// about 0.1 ms and 900 allocations.)
func validCursorName(name string) bool {
	if len(name) < 1 || len(name) > 64 {
		return false
	}
	for _, c := range []byte(name) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// newCursor adds a cursor at the oldest record; mu is held.
func (l *Log) newCursor(name string) *Cursor {
	b := l.segs[0].base
	c := &Cursor{l: l, name: name, acked: ackPoint{pos: b, segBase: b}, persisted: -1}
	l.cursors[name] = c
	return c
}

// Cursor returns the cursor called name (1 to 64 letters, digits, '.', '_'
// or '-', e.g. "mqtt"), at its persisted position, or, for a new name, at
// the oldest reading still in the buffer. A name can be taken once per
// Open. Every cursor the buffer knows, taken or not, holds back the
// deletion of the segments it has not passed until max_bytes or max_age
// drops them.
func (l *Log) Cursor(name string) (*Cursor, error) {
	if !validCursorName(name) {
		return nil, fmt.Errorf("buffer: cursor name %q: want 1 to 64 letters, digits, '.', '_' or '-'", name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	c, ok := l.cursors[name]
	if ok && c.registered {
		return nil, fmt.Errorf("buffer: cursor %q is already in use", name)
	}
	if !ok {
		c = l.newCursor(name)
		c.dirty = true
	}
	c.registered = true
	return c, nil
}

// Name returns the cursor's name.
func (c *Cursor) Name() string { return c.name }

// errMoved restarts a Next whose position was moved by a deletion.
var errMoved = errors.New("cursor moved")

// Next blocks until at least one durable reading lies beyond the
// acknowledged position, then returns up to max of them, oldest first.
// Readings become visible to Next once durable: right after Append with
// sync: always, otherwise at the next group commit. Without an Ack in
// between, Next returns the same readings again. With drain_rate, Next
// returns no more readings than its token bucket (one second's worth of
// burst) allows, waiting for tokens. It returns ctx.Err() when ctx is done
// while it waits, and ErrClosed after Log.Close.
func (c *Cursor) Next(ctx context.Context, max int) ([]reading.Reading, error) {
	if max <= 0 {
		return nil, fmt.Errorf("buffer: next %s: max must be positive, got %d", c.name, max)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.l
	c.batch, c.times = c.batch[:0], c.times[:0]
	for {
		start, durable, err := c.readable(ctx)
		if err != nil {
			return nil, err
		}
		n, err := c.take(ctx, max)
		if err != nil {
			return nil, err
		}
		out, moved, err := c.read(start, n)
		if errors.Is(err, errMoved) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(out) == 0 {
			if err := c.pass(ctx, start, moved, durable); err != nil {
				return nil, err
			}
			continue
		}
		l.mu.Lock()
		c.batchEnd = moved
		c.headTime = out[0].Time
		l.mu.Unlock()
		c.tokens -= float64(len(out))
		return out, nil
	}
}

// readable waits until durable bytes lie beyond the acknowledged position
// and returns that position and the durable offset. It returns ErrClosed
// once the log is closed and ctx.Err() when ctx is done first; c.mu is
// held.
func (c *Cursor) readable(ctx context.Context) (start ackPoint, durable int64, err error) {
	l := c.l
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			c.closeReader()
			return start, 0, ErrClosed
		}
		start, durable = c.acked, l.durable.end
		if start.pos < durable {
			l.mu.Unlock()
			return start, durable, nil
		}
		wait := l.durable.wait() // taken only to wait: see advance
		l.mu.Unlock()
		if err := waitDone(ctx, wait); err != nil {
			return start, 0, err
		}
	}
}

// pass handles a read from start that found nothing to deliver, only
// checkpoints, cursor records or corrupt bytes, up to moved: it moves the
// cursor past them without marking it dirty or, when that is no progress,
// waits for the durable offset to pass durable (what the read saw). It
// returns ctx.Err() when ctx is done first; c.mu is held.
func (c *Cursor) pass(ctx context.Context, start, moved ackPoint, durable int64) error {
	l := c.l
	l.mu.Lock()
	progressed := moved.pos > start.pos && c.acked == start
	if progressed {
		c.acked = moved
	}
	var wait chan struct{}
	if !progressed && l.durable.end == durable {
		wait = l.durable.wait() // closed by the next advance past durable
	}
	l.mu.Unlock()
	if wait == nil {
		return nil
	}
	return waitDone(ctx, wait)
}

// take waits until the token bucket holds at least one reading and returns
// how many readings (at most max) Next may return.
func (c *Cursor) take(ctx context.Context, max int) (int, error) {
	rate := c.l.cfg.DrainRate
	if rate <= 0 {
		return max, nil
	}
	burst := math.Max(1, rate)
	for {
		now := c.l.now()
		if c.refilled.IsZero() {
			c.tokens = burst
		} else if d := now.Sub(c.refilled); d > 0 {
			c.tokens = math.Min(burst, c.tokens+d.Seconds()*rate)
		}
		c.refilled = now
		if c.tokens >= 1 {
			return int(math.Min(float64(max), math.Floor(c.tokens))), nil
		}
		wait := time.Duration((1 - c.tokens) / rate * float64(time.Second))
		if err := c.l.o.sleep(ctx, max64(wait, time.Millisecond)); err != nil {
			return 0, err
		}
	}
}

func max64(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

// read reads up to n readings from start, up to the durable offset,
// crossing segments. It returns the readings and where it stopped.
func (c *Cursor) read(start ackPoint, n int) ([]reading.Reading, ackPoint, error) {
	l := c.l
	p := start
	out := c.out[:0]
	defer func() { c.out = out[:0] }()
	for len(out) < n {
		w, ok := l.readWindow(p.segBase)
		if !ok {
			if len(out) > 0 {
				break
			}
			return nil, p, errMoved
		}
		if p.pos >= w.limit {
			if w.limit < w.segEnd || !w.hasNext || w.nextBase > w.durable {
				break
			}
			p = ackPoint{pos: w.nextBase, segBase: w.nextBase}
			continue
		}
		err := c.seek(p, w)
		if errors.Is(err, os.ErrNotExist) {
			if len(out) > 0 {
				break
			}
			return nil, p, errMoved
		}
		if err != nil {
			l.readFailed(c, p, err)
			p.pos = w.limit
			continue
		}
		out, p = c.readRecords(out, p, n, w.limit)
	}
	// The caller's own copy, of the size it needs: decoding into a
	// reused slice spares allocating for max readings at every Next
	// (36 KiB for 256, a large-object allocation) when a few came.
	return append([]reading.Reading(nil), out...), p, nil
}

// window is what a reader may read of one segment, taken under mu.
type window struct {
	hot      bool  // the file to read it from is the hot one (pathOf)
	segEnd   int64 // the segment's end, a global offset
	limit    int64 // the end of what may be read: the segment's end or the durable offset
	durable  int64
	hasNext  bool  // a later segment exists
	nextBase int64 // its base
}

// readWindow returns the window of the segment at base, or ok=false when
// retention deleted it.
func (l *Log) readWindow(base int64) (w window, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	seg := l.segmentAt(base)
	if seg == nil {
		return w, false
	}
	w = window{hot: seg.hot, segEnd: seg.end(), limit: min(seg.end(), l.durable.end), durable: l.durable.end}
	if next := l.segmentAfter(seg.base); next != nil {
		w.hasNext, w.nextBase = true, next.base
	}
	return w, true
}

// seek points the reader at p, opening p's segment file when the reader is
// on another one; c.mu is held.
func (c *Cursor) seek(p ackPoint, w window) error {
	if c.f == nil || c.rdBase != p.segBase {
		c.closeReader()
		f, err := os.Open(c.l.pathOf(&segment{base: p.segBase, hot: w.hot}))
		if err != nil {
			return err
		}
		c.f, c.rdBase = f, p.segBase
		c.src = segSource{l: c.l, base: p.segBase, f: f}
		c.rd.reset(&c.src, max(p.pos-p.segBase, magicLen), w.limit-p.segBase)
	}
	if filePos := max(p.pos-p.segBase, magicLen); c.rd.pos != filePos {
		c.rd.reset(&c.src, filePos, w.limit-p.segBase)
	} else {
		c.rd.limit = w.limit - p.segBase
	}
	return nil
}

// readRecords appends to out the readings of the reader's segment from p
// up to limit, at most n in all, skipping (and counting) corrupt bytes, and
// returns them with where it stopped.
func (c *Cursor) readRecords(out []reading.Reading, p ackPoint, n int, limit int64) ([]reading.Reading, ackPoint) {
	l := c.l
	for len(out) < n {
		rec, skipped, ok, err := c.rd.next()
		if err != nil {
			l.readFailed(c, p, err)
			p.pos = limit
			c.closeReader()
			return out, p
		}
		if skipped > 0 {
			at := p.segBase + c.rd.pos - skipped
			if ok {
				at = p.segBase + rec.start - skipped
			}
			l.corrupt(c, at, skipped)
		}
		if !ok {
			p.pos = p.segBase + c.rd.pos
			return out, p
		}
		p.pos = p.segBase + rec.end
		if rec.kind != kindReading {
			continue
		}
		var r reading.Reading
		if err := c.dec.decodeReading(rec.payload, &r); err != nil {
			l.corrupt(c, p.segBase+rec.start, rec.end-rec.start)
			continue
		}
		p.nInSeg++
		out = append(out, r)
		c.batch = append(c.batch, p)
		c.times = append(c.times, r.Time)
	}
	return out, p
}

// corrupt counts and logs a corrupt region the first time any reader meets
// it.
func (l *Log) corrupt(c *Cursor, at, n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.corruptSeen[at] {
		return
	}
	l.corruptSeen[at] = true
	l.st.CorruptSkipped++
	l.log.Warn("buffer: skipped corrupt bytes", "cursor", c.name, "offset", at, "bytes", n)
}

func (l *Log) readFailed(c *Cursor, p ackPoint, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.CorruptSkipped++
	l.log.Error("buffer: unreadable segment, skipping its rest", "cursor", c.name,
		"segment", filepath.Base(l.segPath(p.segBase)), "offset", p.pos, "err", err)
}

// closeReader closes the read handle; c.mu is held.
func (c *Cursor) closeReader() {
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
}

// Ack marks the first n readings returned by the last Next as delivered:
// they are never returned again (an Ack of fewer than before is a no-op).
// The position is persisted at the next group commit that writes cursors
// (at most once per sync interval) and on Close.
func (c *Cursor) Ack(n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n < 0 || n > len(c.batch) {
		return fmt.Errorf("buffer: ack %s: %d of %d readings", c.name, n, len(c.batch))
	}
	if n == 0 {
		return nil
	}
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	p := c.batch[n-1]
	if n == len(c.batch) {
		p = c.batchEnd
	}
	if p.pos > c.acked.pos {
		c.acked = p
		c.dirty = true
		c.headTime = time.Time{}
		if n < len(c.times) {
			c.headTime = c.times[n]
		}
		l.ackedLocked()
	}
	return nil
}

// SetReaders declares the cursors that will read the log in this run: one
// per configured output, named as Cursor will be asked for them. Call it
// once after Open, before the first Append.
//
// A cursor the log knows but names leaves out (its output was removed from
// the config) is dropped: its unacknowledged readings will never be sent,
// so they no longer hold segments back or get copied to disk. Each is
// logged once, at warn, with the number of readings it had not
// acknowledged; the next checkpoint leaves it out, so it stays dropped
// across restarts. A name not yet known gets its cursor at once, at the
// oldest reading, as Cursor would create it. With no names at all nothing
// will read the log back: Append still assigns seqs (reserved as always),
// but readings are never copied to disk: they stay in the hot tail, each
// sealed segment deleted at the next group commit, or, without a hot tail,
// are not written at all. Without a call, every cursor the log knows is kept, and with none
// every reading is kept for a cursor taken later. Safe for concurrent use.
func (l *Log) SetReaders(names ...string) error {
	keep := map[string]bool{}
	for _, n := range names {
		if !validCursorName(n) {
			return fmt.Errorf("buffer: cursor name %q: want 1 to 64 letters, digits, '.', '_' or '-'", n)
		}
		keep[n] = true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.declared = true
	var dropped bool
	for _, name := range sortedKeys(l.cursors) {
		c := l.cursors[name]
		if keep[name] || c.registered {
			continue
		}
		l.log.Warn("buffer: dropped the cursor of an output no longer configured; its unsent readings will not be sent",
			"cursor", name, "unsent", l.backlog(c))
		delete(l.cursors, name)
		dropped = true
	}
	for n := range keep {
		if l.cursors[n] == nil {
			l.newCursor(n).dirty = true
		}
	}
	if dropped {
		// A checkpoint without them, so recovery does not bring them back.
		n := len(l.pending.buf)
		l.pending.buf = appendCheckpoint(l.pending.buf, l.seq.last, l.cursorPositions())
		l.total += int64(len(l.pending.buf) - n)
		if l.hot != "" {
			return l.flushLocked()
		}
	}
	return nil
}
