package archive

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
)

// t0 is where the tests' readings start; the archive's clock is injected,
// so no test depends on today's date.
var t0 = time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)

// clock is a settable clock for the archive's retention.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time   { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time)  { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func newClock(t time.Time) *clock { return &clock{t: t} }

func rd(sensor, quantity string, value float64, at time.Duration) reading.Reading {
	return reading.Reading{Sensor: sensor, Quantity: quantity, Unit: reading.UnitOf(quantity), Value: value, Time: t0.Add(at)}
}

func open(t *testing.T, dir string, c *clock, o Options) *Archive {
	t.Helper()
	o.Now = c.now
	if o.Keep == 0 {
		o.Keep = 7 * 24 * time.Hour
	}
	a, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func query(t *testing.T, a *Archive, sensor string, step time.Duration) []Series {
	t.Helper()
	got, err := a.Query(sensor, t0.Add(-365*24*time.Hour), t0.Add(365*24*time.Hour), step)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func sameBucket(b Bucket, start time.Duration, lo, mean, hi float64, n uint32) bool {
	return b.Start.Equal(t0.Add(start)) && b.Min == lo && b.Max == hi && b.N == n && b.Mean > mean-1e-9 && b.Mean < mean+1e-9
}

// TestMinuteBuckets: values are summarised per minute (min, mean, max,
// count, computed here by hand), wider steps merge minutes weighting each
// by its count, and buckets not yet written are part of the answer.
func TestMinuteBuckets(t *testing.T) {
	a := open(t, t.TempDir(), newClock(t0), Options{})
	for _, r := range []reading.Reading{
		rd("air", "temperature", 20, 0),
		rd("air", "temperature", 22, 30*time.Second),
		rd("air", "temperature", 30, 61*time.Second),
		rd("air", "temperature", 18, 119*time.Second),
		rd("air", "temperature", 25, 125*time.Second),
		rd("air", "humidity", 55, 0),
		rd("tank", "temperature", 10, 0),
	} {
		a.Add(r)
	}
	a.Flush()
	a.Add(rd("air", "temperature", 25, 126*time.Second)) // pending, in the same minute as a written one
	a.Flush()
	a.Add(rd("air", "temperature", 25, 127*time.Second))
	a.sync(false) // taken, not written
	got := query(t, a, "air", time.Minute)
	if len(got) != 2 || got[0].Quantity != "humidity" || got[1].Quantity != "temperature" || got[1].Unit != "°C" {
		t.Fatalf("series = %+v, want air's humidity then temperature", got)
	}
	bs := got[1].Buckets
	if len(bs) != 3 ||
		!sameBucket(bs[0], 0, 20, 21, 22, 2) ||
		!sameBucket(bs[1], time.Minute, 18, 24, 30, 2) ||
		!sameBucket(bs[2], 2*time.Minute, 25, 25, 25, 3) {
		t.Errorf("1-minute buckets = %+v", bs)
	}
	// 5-minute steps: one bucket, mean of the seven values.
	bs = query(t, a, "air", 5*time.Minute)[1].Buckets
	if len(bs) != 1 || !sameBucket(bs[0], 0, 18, (20+22+30+18+25*3)/7.0, 30, 7) {
		t.Errorf("5-minute bucket = %+v", bs)
	}
	if all := query(t, a, "", time.Minute); len(all) != 3 {
		t.Errorf("all series: %d, want 3", len(all))
	}
}

// TestSurvivesRestart: a clean close writes what is pending; after
// reopening, the same history is there, and new readings of a written
// minute merge with it.
func TestSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	c := newClock(t0)
	a := open(t, dir, c, Options{})
	a.Add(rd("air", "temperature", 20, 0))
	a.Add(rd("air", "temperature", 24, 70*time.Second))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a = open(t, dir, c, Options{})
	bs := query(t, a, "air", time.Minute)[0].Buckets
	if len(bs) != 2 || !sameBucket(bs[0], 0, 20, 20, 20, 1) || !sameBucket(bs[1], time.Minute, 24, 24, 24, 1) {
		t.Fatalf("after restart: %+v", bs)
	}
	a.Add(rd("air", "temperature", 26, 80*time.Second))
	a.Flush()
	bs = query(t, a, "air", time.Minute)[0].Buckets
	if len(bs) != 2 || !sameBucket(bs[1], time.Minute, 24, 25, 26, 2) {
		t.Errorf("the restarted minute = %+v, want min 24 mean 25 max 26 n 2", bs)
	}
}

// TestTornAndCorrupt: a torn last block (power cut mid-write) is cut off at
// open; a block whose CRC fails is skipped, never the others.
func TestTornAndCorrupt(t *testing.T) {
	dir := t.TempDir()
	c := newClock(t0)
	a := open(t, dir, c, Options{})
	for i := range 3 {
		a.Add(rd("air", "temperature", float64(20+i), time.Duration(i)*time.Minute))
		a.Flush() // one block each
	}
	a.Close()
	path := filepath.Join(dir, t0.Format(dayLayout)+fileExt)
	data, err := os.ReadFile(path)
	if err != nil || len(data)%3 != 0 {
		t.Fatalf("file: %d bytes, %v; want 3 blocks of one size", len(data), err)
	}
	size := len(data) / 3
	data[size+headerSize+2] ^= 0xff       // corrupt the second block
	data = append(data, data[:size-3]...) // and a torn fourth
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	a = open(t, dir, c, Options{})
	if st, _ := os.Stat(path); st.Size() != int64(3*size) {
		t.Errorf("file is %d bytes after open, want the torn block cut (%d)", st.Size(), 3*size)
	}
	bs := query(t, a, "air", time.Minute)[0].Buckets
	if len(bs) != 2 || bs[0].Mean != 20 || bs[1].Mean != 22 {
		t.Errorf("buckets = %+v, want minutes 0 and 2 (the corrupt one skipped)", bs)
	}
	// Appending after the cut keeps the file readable.
	a.Add(rd("air", "temperature", 23, 3*time.Minute))
	a.Flush()
	if bs := query(t, a, "air", time.Minute)[0].Buckets; len(bs) != 3 {
		t.Errorf("after appending: %d buckets, want 3", len(bs))
	}
}

// TestRetention: the retention is measured on the injected clock: readings
// older than it are refused, older minutes are not answered, and day files
// whose newest minute is older are deleted, so the directory stays
// bounded however long the agent runs.
func TestRetention(t *testing.T) {
	dir := t.TempDir()
	c := newClock(t0)
	a := open(t, dir, c, Options{Keep: time.Hour})
	const minutes = 3 * 24 * 60
	for i := range minutes {
		at := time.Duration(i) * time.Minute
		c.set(t0.Add(at))
		a.Add(rd("air", "temperature", 20, at))
		if i%10 == 9 {
			a.Flush()
		}
	}
	a.Flush()
	names, _ := filepath.Glob(filepath.Join(dir, "*"+fileExt))
	if len(names) > 2 {
		t.Errorf("%d day files after 3 days with a retention of 1 h: %v", len(names), names)
	}
	bs := query(t, a, "air", time.Minute)[0].Buckets
	if len(bs) != 61 {
		t.Errorf("%d buckets answered, want the last hour (61)", len(bs))
	}
	if last := bs[len(bs)-1]; !last.Start.Equal(t0.Add((minutes - 1) * time.Minute)) {
		t.Errorf("newest bucket %v, want %v", last.Start, t0.Add((minutes-1)*time.Minute))
	}
	before := a.Stats().Refused
	a.Add(rd("air", "temperature", 20, (minutes-120)*time.Minute))
	a.Flush()
	if a.Stats().Refused != before+1 {
		t.Errorf("a reading two hours old was not refused: %+v", a.Stats())
	}
}

// TestNonFinite: two readings of ±1.7e308 average to 0, not -Inf; NaN and
// infinities are refused at the door.
func TestNonFinite(t *testing.T) {
	a := open(t, t.TempDir(), newClock(t0), Options{})
	a.Add(rd("air", "temperature", 1.7e308, 0))
	a.Add(rd("air", "temperature", -1.7e308, time.Second))
	a.Add(rd("air", "temperature", math.NaN(), 2*time.Second))
	a.Add(rd("air", "temperature", math.Inf(-1), 3*time.Second))
	a.Flush()
	bs := query(t, a, "air", time.Minute)[0].Buckets
	if len(bs) != 1 || bs[0].Mean != 0 || bs[0].Min != -1.7e308 || bs[0].Max != 1.7e308 || bs[0].N != 2 {
		t.Errorf("bucket = %+v, want min -1.7e308 mean 0 max 1.7e308 n 2", bs)
	}
	if s := a.Stats(); s.Refused != 2 {
		t.Errorf("refused %d, want 2 (NaN and -Inf)", s.Refused)
	}
	// Many huge values: the running mean stays within [min, max].
	for i := range 1000 {
		a.Add(rd("tank", "temperature", math.MaxFloat64, time.Duration(i)*time.Millisecond))
	}
	a.Flush()
	if b := query(t, a, "tank", time.Minute)[0].Buckets[0]; b.Mean != math.MaxFloat64 {
		t.Errorf("mean of 1000 × MaxFloat64 = %v", b.Mean)
	}
}

// writeLegacy writes a per-series file of the older format.
func writeLegacy(t *testing.T, path string, bs []Bucket) {
	t.Helper()
	var data []byte
	for _, b := range bs {
		var r [legacySize]byte
		binary.LittleEndian.PutUint64(r[0:], uint64(b.Start.Unix()))
		binary.LittleEndian.PutUint64(r[8:], math.Float64bits(b.Min))
		binary.LittleEndian.PutUint64(r[16:], math.Float64bits(b.Mean))
		binary.LittleEndian.PutUint64(r[24:], math.Float64bits(b.Max))
		binary.LittleEndian.PutUint32(r[32:], b.N)
		binary.LittleEndian.PutUint32(r[36:], crc32.Checksum(r[:36], castagnoli))
		data = append(data, r[:]...)
	}
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestLegacyPoisoned: a file of the older format, with the -Inf mean an
// older version wrote for ±1.7e308 and a NaN, is moved into the new format
// without them, and removed.
func TestLegacyPoisoned(t *testing.T) {
	dir := t.TempDir()
	legacy := filepath.Join(dir, "air.temperature.hist")
	writeLegacy(t, legacy, []Bucket{
		{Start: t0, Min: 20, Mean: 21, Max: 22, N: 2},
		{Start: t0.Add(time.Minute), Min: -1.7e308, Mean: math.Inf(-1), Max: 1.7e308, N: 2},
		{Start: t0.Add(2 * time.Minute), Min: math.NaN(), Mean: math.NaN(), Max: math.NaN(), N: 1},
		{Start: t0.Add(3 * time.Minute), Min: 23, Mean: 23, Max: 23, N: 1},
	})
	a := open(t, dir, newClock(t0.Add(time.Hour)), Options{})
	bs := query(t, a, "air", time.Minute)[0].Buckets
	if len(bs) != 2 || !sameBucket(bs[0], 0, 20, 21, 22, 2) || !sameBucket(bs[1], 3*time.Minute, 23, 23, 23, 1) {
		t.Errorf("buckets = %+v, want minutes 0 and 3 only", bs)
	}
	if _, err := os.Stat(legacy); !os.IsNotExist(err) {
		t.Errorf("the older file is still there: %v", err)
	}
	a.Close()
	a = open(t, dir, newClock(t0.Add(time.Hour)), Options{})
	if bs := query(t, a, "air", time.Minute)[0].Buckets; len(bs) != 2 {
		t.Errorf("after a restart: %+v", bs)
	}
}

// feed adds 8 series at 1 Hz for the given minutes, in order or with every
// other reading from a second device whose clock is 5 minutes behind, and
// flushes every DefaultFlushEvery as the writer does. It returns the bytes written
// and the 4 KiB pages those writes dirtied, counting each write's pages
// anew (the kernel writes a page back within 30 s, long before the next
// flush, so the next write dirties it again).
func feed(t *testing.T, series, minutes int, skewed bool) (bytes, pages int64) {
	dir := t.TempDir()
	c := newClock(t0)
	a := open(t, dir, c, Options{Queue: series * 600 * 2})
	var size int64
	sizes := map[string]int64{}
	for m := range minutes {
		for s := range 60 {
			at := time.Duration(m)*time.Minute + time.Duration(s)*time.Second
			c.set(t0.Add(at))
			if skewed && s%2 == 1 {
				at -= 5 * time.Minute
			}
			for i := range series {
				a.Add(rd(fmt.Sprintf("s%02d", i), "temperature", float64(s), at))
			}
		}
		if (m+1)%int(DefaultFlushEvery/time.Minute) == 0 {
			a.Flush()
			names, _ := filepath.Glob(filepath.Join(dir, "*"+fileExt))
			for _, n := range names {
				st, err := os.Stat(n)
				if err != nil {
					t.Fatal(err)
				}
				if from := sizes[n]; st.Size() > from {
					pages += (st.Size()-1)/4096 - from/4096 + 1
					size += st.Size() - from
				}
				sizes[n] = st.Size()
			}
		}
	}
	if s := a.Stats(); s.Dropped != 0 || int64(s.BytesWritten) != size {
		t.Fatalf("stats %+v, files grew by %d bytes", s, size)
	}
	return size, pages * 4096
}

// TestBytesPerDay: at 8 series at 1 Hz the archive writes less than 1 MB a
// day, counted both as bytes written and as 4 KiB pages dirtied.
func TestBytesPerDay(t *testing.T) {
	if testing.Short() {
		t.Skip("a simulated day")
	}
	// The SD-card budget: under 1 MB a day at 8 series; at 64 it must
	// leave room in the whole agent's 5 MB a day.
	for _, c := range []struct {
		series int
		limit  int64
	}{{8, 1e6}, {64, 4e6}} {
		bytes, pages := feed(t, c.series, 24*60, false)
		t.Logf("%d series at 1 Hz, a block every %v: %d bytes/day written, %d bytes/day of 4 KiB pages dirtied", c.series, DefaultFlushEvery, bytes, pages)
		if bytes > c.limit || pages > c.limit {
			t.Errorf("%d series: %d bytes, %d bytes of pages a day; want under %d", c.series, bytes, pages, c.limit)
		}
	}
}

// TestOutOfOrderCostsTheSame: readings from two clocks 5 minutes apart on
// one sensor cost about what in-order readings cost (a few records more per
// block, for the minutes both clocks touch), never a rewrite.
func TestOutOfOrderCostsTheSame(t *testing.T) {
	in, _ := feed(t, 8, 3*60, false)
	out, _ := feed(t, 8, 3*60, true)
	t.Logf("3 h of 8 series at 1 Hz: %d bytes in order, %d with a second clock 5 min behind", in, out)
	if out > in*3/2 {
		t.Errorf("out of order wrote %d bytes, in order %d: want at most 1.5×", out, in)
	}
}

// TestAddNeverBlocks: with the writer stuck (here: its lock held, as a
// write to a slow SD card would hold it), Add returns at once; what does
// not fit the queue is dropped and counted, the rest is kept.
func TestAddNeverBlocks(t *testing.T) {
	a := open(t, t.TempDir(), newClock(t0), Options{Queue: 16})
	a.mu.Lock()
	const n = 1000
	for i := range n {
		a.Add(rd("air", "temperature", 20, time.Duration(i)*time.Millisecond))
	}
	dropped := a.Stats().Dropped
	a.mu.Unlock()
	if dropped < n-16-1 {
		t.Errorf("dropped %d of %d with a queue of 16", dropped, n)
	}
	a.Flush()
	if b := query(t, a, "air", time.Minute)[0].Buckets; len(b) != 1 || uint64(b[0].N)+dropped != n {
		t.Errorf("kept %+v and dropped %d, want %d in all", b, dropped, n)
	}
}
