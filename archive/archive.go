package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/reading"
)

// Defaults applied by Open to zero Options fields.
const (
	DefaultKeep       = 7 * 24 * time.Hour // Options.Keep
	DefaultFlushEvery = 15 * time.Minute   // Options.FlushEvery
	DefaultQueue      = 4096               // Options.Queue, readings
)

// maxPending bounds the buckets waiting in memory for the next block: a
// back-fill of many old minutes writes a block early instead of growing.
const maxPending = 1 << 14

// Options configure an archive; zero fields take the defaults above.
type Options struct {
	// Keep is the retention: buckets older than Keep (by Now) are not
	// taken and their files are deleted. Default 7 days.
	Keep time.Duration
	// FlushEvery is how often the writer writes the pending buckets of
	// every series, in one write; default 15 min. A power cut loses at most
	// this much chart history.
	FlushEvery time.Duration
	// Queue is how many readings may wait for the writer; more are dropped
	// and counted. Default 4096.
	Queue int
	// Now is the clock of retention decisions; default wallclock.Now.
	Now func() time.Time
	// Log gets the archive's warnings; default: discarded.
	Log *slog.Logger
}

// Stats are an archive's counters since Open. Safe to read at any time.
type Stats struct {
	Dropped      uint64 // readings left out because the queue was full
	Refused      uint64 // readings not finite, or older than the retention
	Lost         uint64 // buckets lost because a write failed
	Writes       uint64 // blocks written
	BytesWritten uint64 // bytes of the blocks written
}

// item is one reading on its way to the writer.
type item struct {
	key  seriesKey
	unit string
	t    time.Time
	v    float64
}

// dayFile is one file of the archive, as the writer last left it.
type dayFile struct {
	path           string
	day            string
	size           int64  // bytes of whole blocks: what readers may read
	oldest, newest minute // of its records; both 0 when it has none
}

// Archive is the page's long history; see the package doc. Add is safe for
// concurrent use and never blocks; Query may run concurrently with
// everything; Flush and Close wait for the writer.
type Archive struct {
	dir        string
	keep       time.Duration
	flushEvery time.Duration
	now        func() time.Time
	log        *slog.Logger

	in     chan item
	reqs   chan request
	stop   chan struct{}
	done   chan struct{} // closed when the writer has ended
	closed atomic.Bool
	once   sync.Once

	dropped, refused, lost, writes, written atomic.Uint64

	mu       sync.Mutex // guards what Query reads; never held across I/O
	units    map[seriesKey]string
	pending  batch // not yet written
	npending int
	flushing batch // being written
	files    []*dayFile

	// Owned by the writer goroutine.
	f           *os.File
	cur         *dayFile
	lastDropped uint64
}

// Open opens (creating it) the archive in dir and starts its writer; Close
// stops it. Day files are checked (a torn last block is cut off) and files
// of the older per-series format are moved into today's file.
func Open(dir string, o Options) (*Archive, error) {
	if o.Keep <= 0 {
		o.Keep = DefaultKeep
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = DefaultFlushEvery
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.Now == nil {
		o.Now = wallclock.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	a := &Archive{
		dir: dir, keep: o.Keep, flushEvery: o.FlushEvery, now: o.Now, log: o.Log,
		in: make(chan item, o.Queue), reqs: make(chan request), stop: make(chan struct{}), done: make(chan struct{}),
		units: map[seriesKey]string{}, pending: batch{},
	}
	names, err := filepath.Glob(filepath.Join(dir, "*"+fileExt))
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	legacy, old := batch{}, []string(nil)
	cutoff := a.cutoff()
	for _, p := range names {
		base := strings.TrimSuffix(filepath.Base(p), fileExt)
		if _, err := time.Parse(dayLayout, base); err == nil && !strings.Contains(base, ".") {
			if err := a.openDay(p, base); err != nil {
				return nil, err
			}
			continue
		}
		sensor, quantity, ok := strings.Cut(base, ".")
		if !ok {
			continue
		}
		k := seriesKey{sensor, quantity}
		a.units[k] = reading.UnitOf(quantity)
		err := readLegacy(p, func(m minute, b Bucket) {
			if m >= cutoff {
				legacy.add(k, m, b)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("history: %w", err)
		}
		old = append(old, p)
	}
	sortFiles(a.files)
	if len(old) > 0 {
		var err error
		if len(legacy) > 0 {
			err = a.write(legacy)
		}
		if err != nil {
			a.log.Warn("history: cannot move the files of the older format, they stay", "err", err)
		} else {
			for _, p := range old {
				os.Remove(p)
			}
		}
	}
	go a.run()
	return a, nil
}

// openDay checks one day file, cutting a torn last block off, and learns
// its series and minutes.
func (a *Archive) openDay(path, day string) error {
	df := &dayFile{path: path, day: day}
	end, skipped, err := scanFile(path, -1, func(k seriesKey, m minute, _ Bucket) {
		if _, ok := a.units[k]; !ok {
			a.units[k] = reading.UnitOf(k.quantity)
		}
		df.note(m)
	})
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if skipped > 0 {
		a.log.Warn("history: skipped corrupt blocks", "file", path, "blocks", skipped)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if st.Size() > end {
		if err := os.Truncate(path, end); err != nil {
			return fmt.Errorf("history: %w", err)
		}
		a.log.Warn(tornWarning, "file", path, "bytes", st.Size()-end)
	}
	df.size = end
	a.files = append(a.files, df)
	return nil
}

// sortFiles sorts files by day, oldest first.
func sortFiles(files []*dayFile) {
	sort.Slice(files, func(i, j int) bool { return files[i].day < files[j].day })
}

func (df *dayFile) note(m minute) {
	if df.newest == 0 || m < df.oldest {
		df.oldest = m
	}
	df.newest = max(df.newest, m)
}

// cutoff is the oldest minute the retention keeps.
func (a *Archive) cutoff() minute {
	t := a.now().Add(-a.keep)
	if t.Unix() < 0 {
		return 0
	}
	return minuteOf(t)
}

// Add hands r to the writer. It never blocks and never touches the disk: r
// is dropped (Stats.Dropped) when the queue is full, and refused
// (Stats.Refused) when its value is not finite. Readings without a sensor
// or quantity, and Adds after Close, are ignored. Safe for concurrent use.
func (a *Archive) Add(r reading.Reading) {
	if r.Sensor == "" || r.Quantity == "" || a.closed.Load() {
		return
	}
	if !isFinite(r.Value) {
		a.refused.Add(1)
		return
	}
	select {
	case a.in <- item{seriesKey{r.Sensor, r.Quantity}, r.Unit, r.Time, r.Value}:
	default:
		a.dropped.Add(1)
	}
}

// Stats returns the archive's counters.
func (a *Archive) Stats() Stats {
	return Stats{Dropped: a.dropped.Load(), Refused: a.refused.Load(), Lost: a.lost.Load(),
		Writes: a.writes.Load(), BytesWritten: a.written.Load()}
}

// run is the writer: it takes queued readings into their buckets and writes
// a block every flushEvery, on Flush and on Close.
func (a *Archive) run() {
	defer close(a.done)
	t := time.NewTicker(a.flushEvery)
	defer t.Stop()
	for {
		select {
		case it := <-a.in:
			a.take(it)
		case <-t.C:
			a.flush()
		case req := <-a.reqs:
			a.drain()
			if req.write {
				a.flush()
			}
			close(req.done)
		case <-a.stop:
			a.drain()
			a.flush()
			if a.f != nil {
				if err := a.f.Close(); err != nil {
					a.log.Warn("history: close", "file", a.cur.path, "err", err)
				}
			}
			return
		}
	}
}

// drain takes every reading queued so far.
func (a *Archive) drain() {
	for {
		select {
		case it := <-a.in:
			a.take(it)
		default:
			return
		}
	}
}

// take folds one reading into its minute's pending bucket.
func (a *Archive) take(it item) {
	sec := it.t.Unix()
	if sec < 0 || sec/60 > math.MaxUint32 || minute(sec/60) < a.cutoff() {
		a.refused.Add(1)
		return
	}
	m := minute(sec / 60)
	a.mu.Lock()
	if it.unit != "" || a.units[it.key] == "" {
		unit := it.unit
		if unit == "" {
			unit = reading.UnitOf(it.key.quantity)
		}
		a.units[it.key] = unit
	}
	if ms := a.pending[it.key]; ms == nil || ms[m] == nil {
		a.npending++
	}
	a.pending.add(it.key, m, Bucket{Min: it.v, Mean: it.v, Max: it.v, N: 1})
	full := a.npending >= maxPending
	a.mu.Unlock()
	if full {
		a.flush()
	}
}

// flush writes every pending bucket as one block, then applies the
// retention.
func (a *Archive) flush() {
	if d := a.dropped.Load(); d > a.lastDropped {
		a.log.Warn("history: the writer fell behind, readings left out of the archive", "readings", d-a.lastDropped, "total", d)
		a.lastDropped = d
	}
	a.mu.Lock()
	b, n := a.pending, a.npending
	if n > 0 {
		a.pending, a.npending, a.flushing = batch{}, 0, b
	}
	a.mu.Unlock()
	if n > 0 {
		if err := a.write(b); err != nil {
			a.lost.Add(uint64(n))
			a.log.Warn("history: cannot write, minutes lost", "buckets", n, "err", err)
		}
		a.mu.Lock()
		a.flushing = nil
		a.mu.Unlock()
	}
	a.expire()
}

// write appends b as one block to today's file, opening it as needed. A
// failed write is cut off again, so the file stays whole blocks.
func (a *Archive) write(b batch) error {
	day := a.now().UTC().Format(dayLayout)
	if a.cur == nil || a.cur.day != day {
		if a.f != nil {
			a.f.Close()
			a.f = nil
		}
		a.cur = nil
		a.mu.Lock()
		for _, df := range a.files {
			if df.day == day {
				a.cur = df
			}
		}
		a.mu.Unlock()
		if a.cur == nil {
			a.cur = &dayFile{path: filepath.Join(a.dir, day+fileExt), day: day}
			a.mu.Lock()
			a.files = append(a.files, a.cur)
			sortFiles(a.files)
			a.mu.Unlock()
		}
	}
	if a.f == nil {
		f, err := os.OpenFile(a.cur.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return err
		}
		a.f = f
	}
	buf := appendBlock(nil, b)
	if _, err := a.f.Write(buf); err != nil {
		a.f.Truncate(a.cur.size)
		return err
	}
	a.writes.Add(1)
	a.written.Add(uint64(len(buf)))
	a.mu.Lock()
	a.cur.size += int64(len(buf))
	for _, ms := range b {
		for m := range ms {
			a.cur.note(m)
		}
	}
	a.mu.Unlock()
	return nil
}

// expire deletes the day files whose newest minute is older than the
// retention (an empty file once its day is).
func (a *Archive) expire() {
	cutoff := a.cutoff()
	a.mu.Lock()
	var gone []*dayFile
	a.files = slices.DeleteFunc(a.files, func(df *dayFile) bool {
		newest := df.newest
		if newest == 0 {
			d, _ := time.Parse(dayLayout, df.day)
			newest = minuteOf(d.Add(24*time.Hour - time.Minute))
		}
		if newest >= cutoff {
			return false
		}
		gone = append(gone, df)
		return true
	})
	a.mu.Unlock()
	for _, df := range gone {
		if df == a.cur {
			if a.f != nil {
				a.f.Close()
				a.f = nil
			}
			a.cur = nil
		}
		if err := os.Remove(df.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			a.log.Warn("history: cannot delete an expired file", "file", df.path, "err", err)
		}
	}
}

// Series is one series' answer to Query.
type Series struct {
	Sensor   string
	Quantity string
	Unit     string
	Buckets  []Bucket // by Start, oldest first
}

// Query returns the buckets of [from, to) merged into steps of step (a
// whole number of minutes, at least one), for sensor's series, or every
// series when sensor is empty; series in sensor, quantity order. Buckets
// not yet written are included, readings still queued for the writer are
// not. It reads only the day files that hold minutes of the window. Safe
// for concurrent use.
func (a *Archive) Query(sensor string, from, to time.Time, step time.Duration) ([]Series, error) {
	step = max(Step, step.Truncate(Step))
	want := func(k seriesKey) bool { return sensor == "" || k.sensor == sensor }
	agg := map[seriesKey]map[int64]*Bucket{}
	cutoff := a.cutoff().time()
	fold := func(k seriesKey, _ minute, b Bucket) {
		if !want(k) || b.Start.Before(from) || !b.Start.Before(to) || b.Start.Before(cutoff) {
			return
		}
		st := b.Start.Truncate(step)
		ms := agg[k]
		if ms == nil {
			ms = map[int64]*Bucket{}
			agg[k] = ms
		}
		m := ms[st.Unix()]
		if m == nil {
			m = &Bucket{Start: st}
			ms[st.Unix()] = m
		}
		m.merge(b)
	}
	var lo, hi minute // the window in minutes, for choosing files
	if from.Unix() > 0 {
		lo = minuteOf(from)
	}
	if to.Unix() >= 0 {
		hi = minute(min(to.Unix()/60, math.MaxUint32))
	}

	a.mu.Lock()
	var keys []seriesKey
	units := map[seriesKey]string{}
	for k, u := range a.units {
		if want(k) {
			keys = append(keys, k)
			units[k] = u
		}
	}
	for _, mem := range []batch{a.pending, a.flushing} {
		for k, ms := range mem {
			for m, b := range ms {
				fold(k, m, *b)
			}
		}
	}
	var files []dayFile
	for _, df := range a.files {
		if df.size > 0 && df.newest >= lo && df.oldest <= hi {
			files = append(files, *df)
		}
	}
	a.mu.Unlock()

	for _, df := range files {
		if _, _, err := scanFile(df.path, df.size, fold); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("history: %w", err)
		}
	}
	// sort.Slice rather than slices.SortFunc: one shared implementation
	// instead of a generic one per element type, in a binary whose size
	// matters.
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].sensor != keys[j].sensor {
			return keys[i].sensor < keys[j].sensor
		}
		return keys[i].quantity < keys[j].quantity
	})
	out := make([]Series, 0, len(keys))
	for _, k := range keys {
		bs := make([]Bucket, 0, len(agg[k]))
		for _, b := range agg[k] {
			bs = append(bs, *b)
		}
		sort.Slice(bs, func(i, j int) bool { return bs[i].Start.Before(bs[j].Start) })
		out = append(out, Series{Sensor: k.sensor, Quantity: k.quantity, Unit: units[k], Buckets: bs})
	}
	return out, nil
}

// Flush waits until every reading added before it is in a bucket and every
// pending bucket is written, as a clean shutdown does.
func (a *Archive) Flush() { a.sync(true) }

// request asks the writer to take every queued reading and, with write,
// to write.
type request struct {
	write bool
	done  chan struct{}
}

func (a *Archive) sync(write bool) {
	req := request{write, make(chan struct{})}
	select {
	case a.reqs <- req:
		<-req.done
	case <-a.done:
	}
}

// Close writes what is pending, stops the writer and closes the files;
// later Adds are ignored. It returns nil; a failed write was logged.
func (a *Archive) Close() error {
	a.once.Do(func() {
		a.closed.Store(true)
		close(a.stop)
	})
	<-a.done
	return nil
}
