package httpui

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
)

// ArchiveStep is the width of an archive bucket.
const ArchiveStep = time.Minute

// The archive keeps, per series, one file of fixed-size records, one per
// minute that had readings: the minute (unix seconds), min, mean, max and
// count of the values, and a CRC-32C of the rest.
const (
	recSize    = 40
	archiveExt = ".hist"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Bucket is the summary of the readings of one series over one step.
type Bucket struct {
	Start time.Time
	Min   float64
	Mean  float64
	Max   float64
	N     uint32
}

func (b *Bucket) add(v float64) {
	if b.N == 0 {
		b.Min, b.Max, b.Mean = v, v, v
	} else {
		b.Min, b.Max = min(b.Min, v), max(b.Max, v)
		b.Mean += (v - b.Mean) / float64(b.N+1)
	}
	b.N++
}

// merge folds o into b (both non-empty or b empty).
func (b *Bucket) merge(o Bucket) {
	if o.N == 0 {
		return
	}
	if b.N == 0 {
		start := b.Start
		*b = o
		b.Start = start
		return
	}
	b.Min, b.Max = min(b.Min, o.Min), max(b.Max, o.Max)
	n := float64(b.N) + float64(o.N)
	b.Mean = b.Mean*(float64(b.N)/n) + o.Mean*(float64(o.N)/n)
	b.N += o.N
}

func encodeBucket(dst []byte, b Bucket) {
	binary.LittleEndian.PutUint64(dst[0:], uint64(b.Start.Unix()))
	binary.LittleEndian.PutUint64(dst[8:], math.Float64bits(b.Min))
	binary.LittleEndian.PutUint64(dst[16:], math.Float64bits(b.Mean))
	binary.LittleEndian.PutUint64(dst[24:], math.Float64bits(b.Max))
	binary.LittleEndian.PutUint32(dst[32:], b.N)
	binary.LittleEndian.PutUint32(dst[36:], crc32.Checksum(dst[:36], castagnoli))
}

func decodeBucket(src []byte) (Bucket, bool) {
	if crc32.Checksum(src[:36], castagnoli) != binary.LittleEndian.Uint32(src[36:]) {
		return Bucket{}, false
	}
	b := Bucket{
		Start: time.Unix(int64(binary.LittleEndian.Uint64(src[0:])), 0).UTC(),
		Min:   math.Float64frombits(binary.LittleEndian.Uint64(src[8:])),
		Mean:  math.Float64frombits(binary.LittleEndian.Uint64(src[16:])),
		Max:   math.Float64frombits(binary.LittleEndian.Uint64(src[24:])),
		N:     binary.LittleEndian.Uint32(src[32:]),
	}
	return b, b.N > 0
}

// archSeries is one series of the archive: its file and its open minute.
type archSeries struct {
	key     seriesKey
	unit    string
	path    string
	f       *os.File // opened for appending on the first flush
	records int      // in the file
	cur     Bucket   // the minute being filled; N == 0 when none
}

// Archive is the page's long history: per series (sensor and quantity),
// the min, mean and max of every minute, kept on disk for a retention
// period (7 days by default) so that the 24 h and 7 d charts survive a
// restart. It writes one 40-byte record per series per minute that had
// readings, without fsync: it is a chart's history, not the delivery
// buffer, and a power cut costs at most the minutes the kernel had not yet
// written. Memory is one open bucket per series; queries read the file.
// Safe for concurrent use.
type Archive struct {
	dir  string
	keep time.Duration
	log  *slog.Logger

	mu     sync.Mutex
	series map[seriesKey]*archSeries
	closed bool
}

// OpenArchive opens (creating it) the archive in dir, keeping buckets for
// keep. Existing series files are checked: a torn last record is cut off.
func OpenArchive(dir string, keep time.Duration, log *slog.Logger) (*Archive, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	a := &Archive{dir: dir, keep: keep, log: log, series: map[seriesKey]*archSeries{}}
	names, err := filepath.Glob(filepath.Join(dir, "*"+archiveExt))
	if err != nil {
		return nil, err
	}
	for _, p := range names {
		sensor, quantity, ok := strings.Cut(strings.TrimSuffix(filepath.Base(p), archiveExt), ".")
		if !ok {
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("history: %w", err)
		}
		if torn := st.Size() % recSize; torn != 0 {
			if err := os.Truncate(p, st.Size()-torn); err != nil {
				return nil, fmt.Errorf("history: %w", err)
			}
			log.Warn("history: cut a torn record off", "file", p, "bytes", torn)
		}
		k := seriesKey{sensor, quantity}
		a.series[k] = &archSeries{key: k, unit: reading.UnitOf(quantity), path: p, records: int(st.Size() / recSize)}
	}
	return a, nil
}

func (a *Archive) seriesOf(k seriesKey, unit string) *archSeries {
	s := a.series[k]
	if s == nil {
		s = &archSeries{key: k, path: filepath.Join(a.dir, k.sensor+"."+k.quantity+archiveExt)}
		a.series[k] = s
	}
	if unit != "" {
		s.unit = unit
	}
	return s
}

// Add takes one reading's value into its series' minute; when the reading
// starts another minute, the previous one is written.
func (a *Archive) Add(r reading.Reading) {
	if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) || r.Sensor == "" || r.Quantity == "" {
		return
	}
	start := r.Time.Truncate(ArchiveStep).UTC()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	s := a.seriesOf(seriesKey{r.Sensor, r.Quantity}, r.Unit)
	if s.cur.N > 0 && !s.cur.Start.Equal(start) {
		a.flushLocked(s)
	}
	if s.cur.N == 0 {
		s.cur = Bucket{Start: start}
	}
	s.cur.add(r.Value)
}

// flushLocked appends s's open minute to its file and compacts the file
// once it holds a day more than the retention.
func (a *Archive) flushLocked(s *archSeries) {
	if s.cur.N == 0 {
		return
	}
	var rec [recSize]byte
	encodeBucket(rec[:], s.cur)
	s.cur = Bucket{}
	if s.f == nil {
		f, err := os.OpenFile(s.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			a.log.Warn("history: cannot write", "file", s.path, "err", err)
			return
		}
		s.f = f
	}
	if _, err := s.f.Write(rec[:]); err != nil {
		a.log.Warn("history: cannot write", "file", s.path, "err", err)
		return
	}
	s.records++
	if limit := int((a.keep+24*time.Hour)/ArchiveStep) + 1; s.records > limit {
		if err := a.compactLocked(s); err != nil {
			a.log.Warn("history: compaction failed", "file", s.path, "err", err)
		}
	}
}

// compactLocked rewrites s's file without the buckets older than the
// retention (relative to its newest), through a temporary file and rename.
func (a *Archive) compactLocked(s *archSeries) error {
	bs, err := readBuckets(s.path)
	if err != nil {
		return err
	}
	if len(bs) > 0 {
		newest := bs[0].Start
		for _, b := range bs[1:] {
			if b.Start.After(newest) {
				newest = b.Start
			}
		}
		cutoff := newest.Add(-a.keep)
		bs = slices.DeleteFunc(bs, func(b Bucket) bool { return b.Start.Before(cutoff) })
	}
	buf := make([]byte, len(bs)*recSize)
	for i, b := range bs {
		encodeBucket(buf[i*recSize:], b)
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, buf, 0o640); err != nil {
		return err
	}
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	if err := os.Rename(tmp, s.path); err != nil {
		os.Remove(tmp)
		return err
	}
	s.records = len(bs)
	return nil
}

// readBuckets reads every valid record of a series file; a record whose
// CRC fails is skipped.
func readBuckets(path string) ([]Bucket, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]Bucket, 0, len(data)/recSize)
	for off := 0; off+recSize <= len(data); off += recSize {
		if b, ok := decodeBucket(data[off : off+recSize]); ok {
			out = append(out, b)
		}
	}
	return out, nil
}

// ArchiveSeries is one series' answer to Query.
type ArchiveSeries struct {
	Sensor   string
	Quantity string
	Unit     string
	Buckets  []Bucket // by Start, oldest first
}

// Query returns the buckets of [from, to) merged into steps of step (a
// whole number of minutes, at least one), for sensor's series, or every
// series when sensor is empty; series in sensor, quantity order. The
// minute being filled is included.
func (a *Archive) Query(sensor string, from, to time.Time, step time.Duration) ([]ArchiveSeries, error) {
	step = max(ArchiveStep, step.Truncate(ArchiveStep))
	a.mu.Lock()
	type job struct {
		s   archSeries
		cur Bucket
	}
	var jobs []job
	for k, s := range a.series {
		if sensor == "" || k.sensor == sensor {
			jobs = append(jobs, job{archSeries{key: s.key, unit: s.unit, path: s.path}, s.cur})
		}
	}
	a.mu.Unlock()
	sort.Slice(jobs, func(i, j int) bool { return keyLess(jobs[i].s.key, jobs[j].s.key) }) // see history.snapshot
	out := make([]ArchiveSeries, 0, len(jobs))
	for _, j := range jobs {
		bs, err := readBuckets(j.s.path)
		if err != nil {
			return nil, fmt.Errorf("history: %w", err)
		}
		if j.cur.N > 0 {
			bs = append(bs, j.cur)
		}
		byStep := map[int64]*Bucket{}
		for _, b := range bs {
			if b.Start.Before(from) || !b.Start.Before(to) {
				continue
			}
			st := b.Start.Truncate(step)
			m := byStep[st.Unix()]
			if m == nil {
				m = &Bucket{Start: st}
				byStep[st.Unix()] = m
			}
			m.merge(b)
		}
		merged := make([]Bucket, 0, len(byStep))
		for _, m := range byStep {
			merged = append(merged, *m)
		}
		sort.Slice(merged, func(i, j int) bool { return merged[i].Start.Before(merged[j].Start) })
		out = append(out, ArchiveSeries{Sensor: j.s.key.sensor, Quantity: j.s.key.quantity, Unit: j.s.unit, Buckets: merged})
	}
	return out, nil
}

// Flush writes every open minute, as a clean shutdown does.
func (a *Archive) Flush() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.series {
		a.flushLocked(s)
	}
}

// Close flushes the open minutes and closes the files; later Adds are
// ignored.
func (a *Archive) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	var errs []error
	for _, s := range a.series {
		a.flushLocked(s)
		if s.f != nil {
			errs = append(errs, s.f.Close())
			s.f = nil
		}
	}
	a.closed = true
	return errors.Join(errs...)
}

var _ io.Closer = (*Archive)(nil)
