package buffer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/reading"
)

// t0 is the fake clock's start and the time readings are stamped around:
// the wall clock when the test binary started (moved ahead in the
// kelvin_skew build), so no test depends on the calendar.
var t0 = wallclock.Now().UTC().Truncate(time.Second)

// fakeClock is an injected clock; sleep advances it instead of waiting.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Add(d)
	return nil
}

// logBuf collects log output for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *logBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *logBuf) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func (w *logBuf) count(s string) int { return strings.Count(w.String(), s) }

// env is one open log under test.
type env struct {
	t    *testing.T
	dir  string
	cfg  Config
	o    options
	now  func() time.Time
	logs *logBuf
	l    *Log
}

// newEnv opens a log in a fresh directory. The sync interval defaults to an
// hour so that only explicit Sync calls commit.
func newEnv(t *testing.T, cfg Config, o options) *env {
	t.Helper()
	if cfg.Sync == "" {
		cfg.Sync = "1h"
	}
	if cfg.HotDir == "" {
		cfg.HotDir = HotDirOff
	}
	e := &env{t: t, dir: t.TempDir(), cfg: cfg, o: o, now: wallclock.Now, logs: &logBuf{}}
	e.open()
	return e
}

func (e *env) open() {
	e.t.Helper()
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l, err := open(e.dir, e.cfg, e.now, log, e.o)
	if err != nil {
		e.t.Fatalf("open: %v", err)
	}
	e.l = l
	e.t.Cleanup(func() { l.Close() })
}

func (e *env) reopen() {
	e.t.Helper()
	if err := e.l.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	e.open()
}

// restartGoesOnAt restarts the log cleanly and checks that the next
// reading of "air" gets seq next, and that the restart announces no gap:
// seqs go on across a clean restart, whatever was written.
func (e *env) restartGoesOnAt(next uint64) {
	e.t.Helper()
	e.reopen()
	e.noGapAnnounced()
	if n := e.l.Stats().LostBytes; n != 0 {
		e.t.Fatalf("a clean restart reported a lost tail of %d bytes", n)
	}
	rs := many("air", int(next-1), 1)
	e.append(rs...)
	if rs[0].Seq != next {
		e.t.Fatalf("seq after a restart = %d, want %d", rs[0].Seq, next)
	}
}

// noGapAnnounced checks that the log's start announces no gap in any
// sensor's seqs, as after a clean restart.
func (e *env) noGapAnnounced() {
	e.t.Helper()
	if r, s := e.l.Resumed(), e.l.Skipped(); len(r) != 0 || len(s) != 0 {
		e.t.Fatalf("a clean restart announced a gap: resumed %v, skipped %v", r, s)
	}
}

func (e *env) append(rs ...reading.Reading) {
	e.t.Helper()
	if err := e.l.Append(rs); err != nil {
		e.t.Fatalf("append: %v", err)
	}
}

func (e *env) sync() {
	e.t.Helper()
	if err := e.l.Sync(); err != nil {
		e.t.Fatalf("sync: %v", err)
	}
}

func (e *env) cursor(name string) *Cursor {
	e.t.Helper()
	c, err := e.l.Cursor(name)
	if err != nil {
		e.t.Fatalf("cursor: %v", err)
	}
	return c
}

// rd makes a reading of sensor with value v.
func rd(sensor string, v float64) reading.Reading {
	return reading.Reading{Agent: "greenhouse-1", Sensor: sensor, Quantity: reading.Temperature,
		Value: v, Raw: v, Unit: "°C", Time: t0.Add(time.Duration(v) * time.Millisecond)}
}

// many makes n readings of sensor with values from v0.
func many(sensor string, v0, n int) []reading.Reading {
	rs := make([]reading.Reading, n)
	for i := range rs {
		rs[i] = rd(sensor, float64(v0+i))
	}
	return rs
}

// ctxT is a context bounded by a generous failsafe, so a bug fails the test
// instead of hanging it; no assertion depends on it.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// drain reads everything durable from c, acknowledging as it goes, until a
// Next would block.
func drain(t *testing.T, c *Cursor, max int) []reading.Reading {
	t.Helper()
	var out []reading.Reading
	for {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // Next returns at once when nothing is pending
		rs, err := c.Next(ctx, max)
		if errors.Is(err, context.Canceled) {
			return out
		}
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		out = append(out, rs...)
		if err := c.Ack(len(rs)); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
}

func values(rs []reading.Reading) []float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = r.Value
	}
	return v
}

func seqs(rs []reading.Reading) []uint64 {
	v := make([]uint64, len(rs))
	for i, r := range rs {
		v[i] = r.Seq
	}
	return v
}

func span(v0, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(v0 + i)
	}
	return v
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// segFiles lists the segment files of dir, oldest first.
func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segExt))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

// logEntry is one reading found by scanning the files, with its global
// offset.
type logEntry struct {
	pos int64
	r   reading.Reading
}

// scanDir reads every valid reading of every segment of dir, in log order,
// without opening the log.
func scanDir(t *testing.T, dir string) []logEntry {
	t.Helper()
	var out []logEntry
	var dec decoder
	for _, p := range segFiles(t, dir) {
		var base int64
		fmt.Sscanf(filepath.Base(p), "%d", &base)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var sr segReader
		sr.reset(bytes.NewReader(b), magicLen, int64(len(b)))
		for {
			rec, _, ok, err := sr.next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if rec.kind != kindReading {
				continue
			}
			var r reading.Reading
			if err := dec.decodeReading(rec.payload, &r); err != nil {
				t.Fatalf("%s at %d: %v", p, rec.start, err)
			}
			out = append(out, logEntry{base + rec.start, r})
		}
	}
	return out
}
