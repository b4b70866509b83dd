package buffer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/reading"
)

// newHotEnv opens a log with a hot directory of its own.
func newHotEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	cfg.HotDir = t.TempDir()
	return newEnv(t, cfg, options{})
}

// diskBytes is the number of bytes of segment files in dir.
func diskBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, f := range segFiles(t, dir) {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

// TestHotAcknowledgedNeverWritten: readings every output acknowledged
// before they were due for the disk are never written to it, though Next
// sees them at once; a Close then leaves only the cursor positions.
func TestHotAcknowledgedNeverWritten(t *testing.T) {
	e := newHotEnv(t, Config{})
	c := e.cursor("mqtt")
	for i := range 50 {
		e.append(rd("air", float64(i)))
		got := drain(t, c, 10) // no Sync: the hot tail is durable at Append
		if !equal(values(got), []float64{float64(i)}) {
			t.Fatalf("after append %d Next read %v", i, values(got))
		}
	}
	e.sync()
	if st := e.l.Stats(); st.BytesWritten != 0 || st.OnDisk != 0 {
		t.Fatalf("bytes written %d, on disk %d: acknowledged readings reached the disk", st.BytesWritten, st.OnDisk)
	}
	if len(scanDir(t, e.dir)) != 0 {
		t.Fatal("readings in the disk files")
	}
	e.reopen()
	if got := drain(t, e.cursor("mqtt"), 100); len(got) != 0 {
		t.Fatalf("after a clean restart the cursor read %v again", values(got))
	}
	// Acknowledged, the readings are on no disk: only the clean end
	// recorded at Close says where the seqs go on, without a gap.
	e.noGapAnnounced()
	rs := many("air", 50, 1)
	e.append(rs...)
	if rs[0].Seq != 51 {
		t.Fatalf("seq after a clean restart = %d, want 51", rs[0].Seq)
	}
	// A kill -9 after that clean start resumes after the reservation the
	// start wrote (from seq 50 on) again.
	crashCopy(t, e)
	e.open()
	if got, want := e.l.Skipped()["air"], [2]uint64{52, 50 + reserveBlock}; got != want {
		t.Fatalf("after a crash that followed a clean restart, skipped %v, want %v", got, want)
	}
	rs = many("air", 51, 1)
	e.append(rs...)
	if rs[0].Seq != 51+reserveBlock {
		t.Fatalf("seq after the crash = %d, want %d", rs[0].Seq, 51+reserveBlock)
	}
}

// TestHotUnacknowledgedGoesToDisk: what an output has not acknowledged
// after a sync interval goes to disk, in order, with nothing acknowledged
// before it, and a restart delivers it.
func TestHotUnacknowledgedGoesToDisk(t *testing.T) {
	e := newHotEnv(t, Config{Sync: "20ms", SegmentBytes: 4 << 10})
	c := e.cursor("mqtt")
	e.append(many("air", 0, 10)...)
	if got := drain(t, c, 100); len(got) != 10 {
		t.Fatalf("read %d", len(got))
	}
	e.append(many("air", 10, 200)...) // about 3 segments, none acknowledged
	testenv.WaitFor(t, "the backlog on disk", func() bool { return e.l.Stats().OnDisk == 200 })
	onDisk := scanDir(t, e.dir)
	if !equal(values(readingsOf(onDisk)), span(10, 200)) {
		t.Fatalf("on disk: %d readings, want 10..209 only", len(onDisk))
	}
	if st := e.l.Stats(); st.CorruptSkipped != 0 {
		t.Fatalf("a hole counted as corrupt: %+v", st)
	}
	// A crash now: the hot directory survives, the process does not.
	dir, hot := e.dir, e.cfg.HotDir
	crashCopy(t, e)
	l, err := Open(dir, Config{HotDir: hot}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c2, _ := l.Cursor("mqtt")
	if got := drain(t, c2, 1000); !equal(values(got), span(10, 200)) {
		t.Fatalf("after the crash the cursor read %d readings, want 10..209", len(got))
	}
	if st := l.Stats(); st.CorruptSkipped != 0 || st.TornTruncated != 0 {
		t.Fatalf("recovery from a sparse log: %+v", st)
	}
}

// TestHotPowerCut: losing the hot directory loses only what was not yet
// due for the disk; what was due is on disk and delivered, and no seq is
// reused.
func TestHotPowerCut(t *testing.T) {
	e := newHotEnv(t, Config{Sync: "20ms"})
	c := e.cursor("mqtt")
	e.append(many("air", 0, 20)...)
	testenv.WaitFor(t, "the readings on disk", func() bool { return e.l.Stats().OnDisk == 20 })
	l := powerCut(t, e)
	c2, _ := l.Cursor("mqtt")
	if got := drain(t, c2, 1000); !equal(values(got), span(0, 20)) {
		t.Fatalf("after the power cut the cursor read %v", values(got))
	}
	rs := many("air", 20, 1)
	if err := l.Append(rs); err != nil {
		t.Fatal(err)
	}
	if rs[0].Seq <= 20 {
		t.Fatalf("seq %d reused after a power cut", rs[0].Seq)
	}
	_ = c
}

// TestHotPowerCutAnnouncesFromTheDisk: after a power cut the disk holds no
// reading every output acknowledged in time, so the log cannot know where
// its seqs ended. The gap it announces starts after the newest reading on
// disk, and so covers the delivered readings that never reached the disk
// as well as those of the last sync interval the cut took; the new seqs
// come after all of them.
func TestHotPowerCutAnnouncesFromTheDisk(t *testing.T) {
	e := newHotEnv(t, Config{}) // sync 1h: no reading waits long enough to be due
	c := e.cursor("mqtt")
	e.append(many("air", 0, 10)...) // seqs 1-10: unacknowledged at the commit, so on disk
	e.sync()
	if got := drain(t, c, 100); len(got) != 10 {
		t.Fatalf("drained %d readings after the commit, want 10", len(got))
	}
	// The commit after a drained backlog, which puts the cursor on disk,
	// now rather than in the background while 11-20 are unacknowledged.
	e.sync()
	e.append(many("air", 10, 10)...) // 11-20: acknowledged before any commit, never on disk
	acked := 0
	testenv.WaitFor(t, "readings 11-20 acknowledged", func() bool {
		acked += len(drain(t, c, 100))
		return acked == 10
	})
	e.sync()
	e.append(many("air", 20, 5)...) // 21-25: not yet due, taken by the cut
	l := powerCut(t, e)
	resumed, skipped := l.Resumed()["air"], l.Skipped()["air"]
	if skipped[0] != 11 || skipped[1] != resumed-1 || resumed <= 25 {
		t.Fatalf("after the power cut: resumed at %d, skipped %v; want the gap from 11 (after the newest reading on disk) to just before a seq above 25", resumed, skipped)
	}
	c2, _ := l.Cursor("mqtt")
	if got := drain(t, c2, 100); len(got) != 0 {
		t.Fatalf("the cursor read %d acknowledged readings again", len(got))
	}
	rs := many("air", 25, 1)
	if err := l.Append(rs); err != nil {
		t.Fatal(err)
	}
	if rs[0].Seq != resumed {
		t.Fatalf("the first reading after the cut got seq %d, want %d", rs[0].Seq, resumed)
	}
}

// powerCut stands for a power cut of e's process and its start: the
// process dies as in crashCopy, the tmpfs of its hot tail is lost, and the
// log is opened again from the disk alone, with an empty hot directory.
func powerCut(t *testing.T, e *env) *Log {
	t.Helper()
	crashCopy(t, e)
	if err := os.RemoveAll(e.cfg.HotDir); err != nil {
		t.Fatal(err)
	}
	l, err := Open(e.dir, Config{HotDir: t.TempDir()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// crashCopy stands for a kill -9 of e's process: e's files are left as
// they are (the log is closed without its Close: its lock and handles are
// dropped, nothing is written).
func crashCopy(t *testing.T, e *env) {
	t.Helper()
	l := e.l
	l.mu.Lock()
	l.closed, l.shut = true, true
	l.mu.Unlock()
	close(l.loop.stop)
	l.loop.wg.Wait()
	l.mu.Lock()
	for _, s := range l.segs {
		if s.w != nil {
			s.w.Close()
		}
		if s.cold != nil {
			s.cold.Close()
		}
	}
	l.mu.Unlock()
	l.lock.Close()
}

func readingsOf(es []logEntry) []reading.Reading {
	rs := make([]reading.Reading, len(es))
	for i, e := range es {
		rs[i] = e.r
	}
	return rs
}

// TestHotSpillsOnlyWhatIsDue drives the group commit by hand: readings
// acknowledged before they are due are never written, whatever their age;
// an unacknowledged one that is due is, and once the disk's backlog is
// acknowledged, one more commit puts the cursor position on disk and then
// the disk is quiet again.
func TestHotSpillsOnlyWhatIsDue(t *testing.T) {
	e := newHotEnv(t, Config{})
	c := e.cursor("mqtt")
	age := func() { // every pending Append waited longer than the interval
		e.l.mu.Lock()
		for i := range e.l.tail.marks {
			e.l.tail.marks[i].at = e.l.tail.marks[i].at.Add(-time.Hour)
		}
		e.l.mu.Unlock()
	}
	commit := func() uint64 {
		t.Helper()
		e.l.syncMu.Lock()
		err := e.l.commit(false, false)
		e.l.syncMu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		return e.l.Stats().BytesWritten
	}
	e.append(many("air", 0, 10)...)
	drain(t, c, 100)
	age()
	if n := commit(); n != 0 {
		t.Fatalf("%d bytes written for acknowledged readings", n)
	}
	e.append(rd("air", 10))
	age()
	spilled := commit()
	if spilled == 0 || e.l.Stats().OnDisk != 1 {
		t.Fatalf("an unacknowledged due reading: %d bytes written, %d on disk", spilled, e.l.Stats().OnDisk)
	}
	drain(t, c, 100)
	e.l.mu.Lock()
	e.l.commits.lastPersist = time.Time{} // the cursor record is due too
	e.l.mu.Unlock()
	drained := commit()
	if drained == spilled {
		t.Fatal("the drained cursor position was not put on disk")
	}
	for range 3 {
		e.append(rd("air", 11))
		drain(t, c, 100)
		age()
		if n := commit(); n != drained {
			t.Fatalf("%d more bytes written with the outputs keeping up", n-drained)
		}
	}
}

// TestHotOutageThenDrain: an outage over several segments puts them on
// disk and out of the tmpfs but for the active one; once the output drained
// them they are deleted, and a clean Close leaves the tmpfs empty.
func TestHotOutageThenDrain(t *testing.T) {
	e := newHotEnv(t, Config{Sync: "20ms", SegmentBytes: 4 << 10})
	c := e.cursor("mqtt")
	for i := range 30 {
		e.append(many("air", i*10, 10)...)
	}
	testenv.WaitFor(t, "the backlog on disk", func() bool { return e.l.Stats().OnDisk == 300 })
	if n := len(hotFiles(e)); n != 1 {
		t.Fatalf("%d segment files in the tmpfs after the outage, want the active one only", n)
	}
	if got := drain(t, c, 64); !equal(values(got), span(0, 300)) {
		t.Fatalf("drained %d readings", len(got))
	}
	e.sync()
	if n := len(segFiles(t, e.dir)); n > 1 {
		t.Fatalf("%d segment files on disk after the drain, want at most the active one's copy", n)
	}
	if err := e.l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(hotFiles(e)); n != 0 {
		t.Fatalf("%d files left in the tmpfs after Close", n)
	}
	e.open()
	if got := drain(t, e.cursor("mqtt"), 100); len(got) != 0 {
		t.Fatalf("after a clean restart the cursor read %d readings again", len(got))
	}
}

// TestHotPowerCutAfterDrainIsNoLoss: segments written during an outage and
// deleted once drained are no loss when a power cut then takes the hot
// tail: the reservation's recorded end must not count them.
func TestHotPowerCutAfterDrainIsNoLoss(t *testing.T) {
	e := newHotEnv(t, Config{Sync: "20ms", SegmentBytes: 4 << 10})
	c := e.cursor("mqtt")
	e.append(many("air", 0, 100)...)
	testenv.WaitFor(t, "the backlog on disk", func() bool { return e.l.Stats().OnDisk == 100 })
	for i := range 10 { // delivered on time, past a few rollovers
		drain(t, c, 1000)
		e.append(many("air", 100+i*20, 20)...)
	}
	drain(t, c, 1000)
	e.sync()
	e.sync()                      // deletes what every cursor passed
	e.append(rd("new-sensor", 1)) // a reservation write, recording the end
	l := powerCut(t, e)
	if st := l.Stats(); st.LostBytes != 0 {
		t.Fatalf("lost_bytes = %d after a power cut that took only acknowledged readings", st.LostBytes)
	}
}

// hotFiles lists the segment files in e's hot directory.
func hotFiles(e *env) []string {
	m, _ := filepath.Glob(filepath.Join(e.l.hot, "*"+segExt))
	return m
}

// TestHotBoundGoesToDisk: while no output acknowledges (a broker outage on
// a disk that takes no copies yet), the hot tail never holds more than
// hot_max_bytes: the segment that would pass it is written to disk
// instead, with one log line; nothing is refused or lost, and the hot tail
// is used again once it has room.
func TestHotBoundGoesToDisk(t *testing.T) {
	e := newHotEnv(t, Config{SegmentBytes: 4 << 10, HotMaxBytes: 8 << 10}) // sync 1h: nothing is due
	c := e.cursor("mqtt")
	for i := range 60 { // about 6 segments
		e.append(many("air", i*10, 10)...)
		if st := e.l.Stats(); st.HotBytes > 8<<10 {
			t.Fatalf("after append %d the hot tail holds %d bytes, over its bound of %d", i, st.HotBytes, 8<<10)
		}
	}
	st := e.l.Stats()
	if !st.HotFull || st.Refused != 0 || st.BytesWritten == 0 {
		t.Fatalf("hot_full %v, refused %d, bytes written %d: want the overflow on disk, nothing refused", st.HotFull, st.Refused, st.BytesWritten)
	}
	if n := e.logs.count("the hot tail is full"); n != 1 {
		t.Fatalf("logged the full hot tail %d times, want once; log:\n%s", n, e.logs)
	}
	if got := drain(t, c, 64); !equal(values(got), span(0, 600)) {
		t.Fatalf("read %d readings, want 0..599 in order", len(got))
	}
	e.sync()
	e.sync() // deletes what the cursor passed
	for i := range 20 {
		e.append(many("air", 600+i*10, 10)...)
		drain(t, c, 64)
	}
	if st := e.l.Stats(); st.HotFull || e.logs.count("the hot tail has room again") != 1 {
		t.Fatalf("hot_full %v after the backlog drained; log:\n%s", st.HotFull, e.logs)
	}
}

// TestHotTmpfsFullGoesToDisk: a write to a full tmpfs (ENOSPC) is not a
// refused reading: the batch and those after it go to a segment on disk,
// in order, and survive a restart.
func TestHotTmpfsFullGoesToDisk(t *testing.T) {
	hot := t.TempDir()
	var full atomic.Bool
	o := options{writeAt: func(f *os.File, b []byte, off int64) (int, error) {
		if full.Load() && strings.HasPrefix(f.Name(), hot) {
			return 0, fmt.Errorf("write: %w", syscall.ENOSPC)
		}
		return f.WriteAt(b, off)
	}}
	e := newEnv(t, Config{SegmentBytes: 4 << 10, HotDir: hot}, o)
	c := e.cursor("mqtt")
	e.append(many("air", 0, 10)...)
	full.Store(true)
	for i := range 20 {
		e.append(many("air", 10+i*10, 10)...)
	}
	st := e.l.Stats()
	if !st.HotFull || st.Refused != 0 || st.DroppedFull != 0 {
		t.Fatalf("hot_full %v, refused %d, dropped %d: want the batches on disk", st.HotFull, st.Refused, st.DroppedFull)
	}
	if got := drain(t, c, 64); !equal(values(got), span(0, 210)) {
		t.Fatalf("read %d readings, want 0..209 in order", len(got))
	}
	full.Store(false)
	e.restartGoesOnAt(211)
}

// TestHotAndDiskFull: with the tmpfs and the disk full, full: decides, as
// without a hot tail: block_newest refuses with ErrFull, drop_oldest drops
// the oldest segment and stores; neither crashes nor loses a stored
// reading silently.
func TestHotAndDiskFull(t *testing.T) {
	for _, mode := range FullModes() {
		t.Run(mode, func(t *testing.T) {
			hot := t.TempDir()
			var full atomic.Bool
			var capacity int64 // the tmpfs's size: what the hot tail held when it filled up
			hotUsed := func() int64 {
				m, _ := filepath.Glob(filepath.Join(hot, "*", "*"+segExt))
				var n int64
				for _, f := range m {
					if st, err := os.Stat(f); err == nil {
						n += st.Size()
					}
				}
				return n
			}
			noSpace := fmt.Errorf("write: %w", syscall.ENOSPC)
			o := options{
				writeAt: func(f *os.File, b []byte, off int64) (int, error) {
					if full.Load() && strings.HasPrefix(f.Name(), hot) && hotUsed()+int64(len(b)) > capacity {
						return 0, noSpace
					}
					return f.WriteAt(b, off)
				},
				preallocate: func(*os.File, int64) error {
					if full.Load() {
						return noSpace
					}
					return nil
				},
			}
			e := newEnv(t, Config{SegmentBytes: 4 << 10, HotDir: hot, Full: mode}, o)
			c := e.cursor("mqtt")
			for i := range 12 { // a few segments, none acknowledged
				e.append(many("air", i*10, 10)...)
			}
			capacity = hotUsed()
			full.Store(true)
			err := e.l.Append(many("air", 120, 10))
			st := e.l.Stats()
			switch mode {
			case FullBlockNewest:
				if !errors.Is(err, ErrFull) || st.Refused != 10 || st.DroppedFull != 0 {
					t.Fatalf("Append = %v, refused %d, dropped %d: want ErrFull, 10 refused, none dropped", err, st.Refused, st.DroppedFull)
				}
				if got := drain(t, c, 64); !equal(values(got), span(0, 120)) {
					t.Fatalf("read %d readings, want 0..119", len(got))
				}
			case FullDropOldest:
				if err != nil || st.DroppedFull == 0 || st.Cursors[0].Dropped != st.DroppedFull {
					t.Fatalf("Append = %v, dropped %d (cursor %d): want stored, the oldest dropped and counted", err, st.DroppedFull, st.Cursors[0].Dropped)
				}
				got := values(drain(t, c, 64))
				if len(got) == 0 || got[len(got)-1] != 129 || len(got)+int(st.DroppedFull) != 130 {
					t.Fatalf("read %d readings ending %v, dropped %d: want the newest kept, the rest counted", len(got), got[len(got)-1:], st.DroppedFull)
				}
			}
		})
	}
}

// TestHotBound: hot_max_bytes as configured, or auto: a quarter of the
// tmpfs, at most max_bytes; at least two segments either way.
func TestHotBound(t *testing.T) {
	dir := t.TempDir()
	size, err := fsSize(dir)
	if err != nil {
		t.Skipf("file system size unknown here: %v", err)
	}
	const seg = 4 << 20
	for _, tc := range []struct {
		name      string
		hot, maxB Size
		want      int64
	}{
		{"configured", 32 << 20, 64 << 20, 32 << 20},
		{"auto, a quarter of the tmpfs", 0, Size(size), max(size/4, 2*seg)},
		{"auto, at most max_bytes", 0, 2*seg + 1, 2*seg + 1},
		{"auto, at least two segments", 0, 1 << 20, 2 * seg},
	} {
		if got := hotBound(Config{HotMaxBytes: tc.hot, MaxBytes: tc.maxB}, dir, seg); got != tc.want {
			t.Errorf("%s: hotBound = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestHotCommitTimerOnlyWhileUnacknowledged: with a hot tail the commit
// timer runs only while a reading is unacknowledged; the Ack that leaves
// none stops it, and itself has the cursor position written once a sync
// interval has passed since the last, so an idle log is never woken.
func TestHotCommitTimerOnlyWhileUnacknowledged(t *testing.T) {
	var mu sync.Mutex
	now := wallclock.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var persisted atomic.Int64
	e := &env{t: t, dir: t.TempDir(), cfg: Config{Sync: "1h", HotDir: t.TempDir()}, now: clock, logs: &logBuf{},
		o: options{committed: func(m map[string]int64) { persisted.Store(m["mqtt"]) }}}
	e.open()
	armed := func() bool { e.l.mu.Lock(); defer e.l.mu.Unlock(); return e.l.loop.armed }
	c := e.cursor("mqtt")
	e.append(rd("air", 1))
	if !armed() {
		t.Fatal("an unacknowledged reading and no commit timer")
	}
	drain(t, c, 10)
	if armed() {
		t.Fatal("every reading acknowledged and the commit timer still set")
	}
	if persisted.Load() != 0 {
		t.Fatal("cursor position written before a sync interval passed")
	}
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	e.append(rd("air", 2))
	drain(t, c, 10)
	testenv.WaitFor(t, "the Ack's commit to write the cursor position", func() bool { return persisted.Load() > 0 })
	if armed() {
		t.Fatal("the commit timer set again with nothing unacknowledged")
	}
}

// TestHotCrashCopiesOnlyWhatIsUnacknowledged: after a kill -9, Open copies
// of the hot tail only the header and checkpoint and what the slowest
// output had not recorded as acknowledged, and of that writes only the
// pages the disk lacks; the readings every output had acknowledged stay a
// hole, and each output goes on where it was.
func TestHotCrashCopiesOnlyWhatIsUnacknowledged(t *testing.T) {
	// Cursor records at every commit, as the agent's commit loop writes
	// them once a second.
	e := newEnv(t, Config{HotDir: t.TempDir()}, options{cursorEvery: time.Nanosecond})
	fast, slow := e.cursor("mqtt"), e.cursor("kafka")
	// 2,000 readings: the hole left is larger than a reader's window.
	e.append(many("air", 0, 2000)...)
	if got := drain(t, fast, 10000); len(got) != 2000 {
		t.Fatalf("mqtt read %d", len(got))
	}
	rs, err := slow.Next(context.Background(), 1900) // kafka lags by 100
	if err != nil || len(rs) != 1900 {
		t.Fatalf("kafka read %d: %v", len(rs), err)
	}
	if err := slow.Ack(len(rs)); err != nil {
		t.Fatal(err)
	}
	e.sync() // the cursor records, into the hot file; kafka's 100 to disk
	e.append(many("air", 2000, 10)...)
	e.l.mu.Lock()
	floor, seg := e.l.minAcked(), e.l.segs[len(e.l.segs)-1]
	base, ckptEnd := seg.base, seg.ckptEnd
	e.l.mu.Unlock()
	fi, err := os.Stat(e.l.segPath(base))
	if err != nil {
		t.Fatal(err)
	}
	onDisk := fi.Size() // up to kafka's 100 readings, from the commit
	size := killAndRestart(t, e)
	// The header, the checkpoint and kafka's 100 are on disk already; the
	// last 10 are not, nor the rest of the page the commit's copy ended in.
	lacking := size - max(onDisk/diskPage*diskPage, floor-base)
	if got := int64(e.l.Stats().BytesWritten); got != lacking || got >= ckptEnd+size-(floor-base) {
		t.Errorf("the start wrote %d bytes of a hot tail of %d, want %d: the pages of what kafka had not acknowledged that the disk lacked", got, size, lacking)
	}
	if got := drain(t, e.cursor("kafka"), 1000); !equal(values(got), span(1900, 110)) {
		t.Errorf("kafka read %v after the crash, want 1900..2009", values(got))
	}
	if got := drain(t, e.cursor("mqtt"), 1000); !equal(values(got), span(2000, 10)) {
		t.Errorf("mqtt read %v after the crash, want 2000..2009", values(got))
	}
	if st := e.l.Stats(); st.CorruptSkipped != 0 || st.TornTruncated != 0 {
		t.Errorf("a hole counted as damage: %+v", st)
	}
	if got := e.l.Skipped()["air"]; got[0] != 2011 {
		t.Errorf("the restart announced air's seqs %v as skipped, want from 2011 on", got)
	}
	rs = many("air", 2010, 1)
	e.append(rs...)
	if rs[0].Seq <= 2010 {
		t.Errorf("seq %d reused after the crash", rs[0].Seq)
	}
}

// TestHotCrashInOutageWritesOnlyWhatTheDiskLacks: killed during an outage,
// the process leaves a hot tail whose readings the group commit had put on
// disk, all but the last ones; the start writes only the pages holding
// those, and the output then reads every reading.
func TestHotCrashInOutageWritesOnlyWhatTheDiskLacks(t *testing.T) {
	e := newHotEnv(t, Config{})
	e.cursor("mqtt") // the outage: nothing is acknowledged
	for i := range 50 {
		e.append(many("air", i*10, 10)...)
	}
	e.sync() // the group commit: all 500 to disk
	e.append(many("air", 500, 5)...)
	e.l.mu.Lock()
	base := e.l.active().base
	e.l.mu.Unlock()
	fi, err := os.Stat(e.l.segPath(base))
	if err != nil {
		t.Fatal(err)
	}
	onDisk := fi.Size()
	hot, err := os.ReadFile(e.l.hotPath(base))
	if err != nil {
		t.Fatal(err)
	}
	size := killAndRestart(t, e)
	if want := size - onDisk/diskPage*diskPage; int64(e.l.Stats().BytesWritten) != want {
		t.Errorf("the start wrote %d bytes of a hot tail of %d, %d of it on disk already; want %d: the pages of the last 5 readings", e.l.Stats().BytesWritten, size, onDisk, want)
	}
	if disk, err := os.ReadFile(e.l.segPath(base)); err != nil || !bytes.Equal(disk, hot) {
		t.Errorf("the disk copy differs from the hot segment the process left (%d against %d bytes): %v", len(disk), len(hot), err)
	}
	if got := drain(t, e.cursor("mqtt"), 1000); !equal(values(got), span(0, 505)) {
		t.Errorf("mqtt read %d readings after the crash, want 0..504", len(got))
	}
}

// TestWriteChanged: of a range, only the pages whose bytes differ from the
// file's, or lie past its end, are written, in runs; the file then holds
// the range.
func TestWriteChanged(t *testing.T) {
	b := make([]byte, 5*diskPage+100)
	for i := range b {
		b[i] = byte(i%251 + 1)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "seg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// On disk: pages 0 and 1 as in b, page 2 differing in one byte, page 3
	// as in b, and the file ends 10 bytes into page 4.
	disk := bytes.Clone(b[:4*diskPage+10])
	disk[2*diskPage+7] ^= 0xff
	if _, err := f.WriteAt(disk, 0); err != nil {
		t.Fatal(err)
	}
	from := int64(diskPage / 2) // a range starting inside page 0
	n, err := writeChanged(f, b, from, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(diskPage + diskPage + 100); n != want {
		t.Errorf("wrote %d bytes, want %d: page 2, and pages 4 and 5", n, want)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil || !bytes.Equal(got, b) {
		t.Errorf("the file does not hold the range after writeChanged: %v", err)
	}
}

// TestHotCrashKeepsEachSensorsNewestReading: a sensor whose last reading
// every output acknowledged long before the kill still has it copied, so
// that the restart announces exactly the seqs it skips.
func TestHotCrashKeepsEachSensorsNewestReading(t *testing.T) {
	e := newEnv(t, Config{HotDir: t.TempDir()}, options{cursorEvery: time.Nanosecond})
	c := e.cursor("mqtt")
	e.append(many("soil", 0, 3)...) // then soil goes quiet
	e.append(many("air", 0, 200)...)
	if got := drain(t, c, 1000); len(got) != 203 {
		t.Fatalf("read %d", len(got))
	}
	e.sync()
	size := killAndRestart(t, e)
	if got := int64(e.l.Stats().BytesWritten); got >= size {
		t.Errorf("the start wrote %d bytes of a hot tail of %d: all of it", got, size)
	}
	sk := e.l.Skipped()
	if sk["soil"][0] != 4 || sk["air"][0] != 201 {
		t.Errorf("the restart announced %v as skipped, want soil from 4 and air from 201", sk)
	}
	if got := drain(t, e.cursor("mqtt"), 1000); len(got) != 0 {
		t.Errorf("mqtt read %v again after the crash", values(got))
	}
}

// killAndRestart stands for a kill -9 of e's process and its start: it
// returns the size of the active hot segment the killed process left.
func killAndRestart(t *testing.T, e *env) int64 {
	t.Helper()
	e.l.mu.Lock()
	hot := e.l.hotPath(e.l.active().base)
	e.l.mu.Unlock()
	st, err := os.Stat(hot)
	if err != nil {
		t.Fatal(err)
	}
	crashCopy(t, e)
	e.open()
	return st.Size()
}
