package buffer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
)

func TestAppendNextAck(t *testing.T) {
	e := newEnv(t, Config{}, options{})
	c := e.cursor("mqtt")
	rs := many("air", 0, 10)
	e.append(rs...)
	for i, r := range rs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("Append set seq %d on reading %d, want %d", r.Seq, i, i+1)
		}
	}
	e.sync()
	ctx := ctxT(t)

	got, err := c.Next(ctx, 4)
	if err != nil || !equal(values(got), span(0, 4)) {
		t.Fatalf("Next(4) = %v, %v; want values 0..3", values(got), err)
	}
	if got[0] != rs[0] {
		t.Fatalf("round trip: got %+v, want %+v", got[0], rs[0])
	}
	// Without Ack, Next returns the same readings.
	again, err := c.Next(ctx, 4)
	if err != nil || !equal(values(again), span(0, 4)) {
		t.Fatalf("Next again = %v, %v; want values 0..3", values(again), err)
	}
	// A partial Ack resumes after it.
	if err := c.Ack(2); err != nil {
		t.Fatal(err)
	}
	got, err = c.Next(ctx, 100)
	if err != nil || !equal(values(got), span(2, 8)) {
		t.Fatalf("after Ack(2): %v, %v; want values 2..9", values(got), err)
	}
	if err := c.Ack(len(got) + 1); err == nil {
		t.Fatal("Ack beyond the batch: want an error")
	}
	if err := c.Ack(len(got)); err != nil {
		t.Fatal(err)
	}
	if err := c.Ack(1); err != nil { // re-acking fewer is a no-op
		t.Fatal(err)
	}
	if got := drain(t, c, 100); len(got) != 0 {
		t.Fatalf("after acking everything Next returned %v", values(got))
	}
	st := e.l.Stats()
	if st.Appended != 10 || len(st.Cursors) != 1 || st.Cursors[0].Backlog != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestNextReturnsOnlyDurableReadings(t *testing.T) {
	e := newEnv(t, Config{Sync: "1h"}, options{})
	c := e.cursor("mqtt")
	// The first reading after a quiet spell is committed at once (the
	// leading edge); the next one waits for the interval, an hour here.
	e.append(rd("air", 0))
	if err := e.l.WaitDurable(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	drain(t, c, 10)
	e.append(rd("air", 1))
	if got := drain(t, c, 10); len(got) != 0 {
		t.Fatalf("Next returned %v before the reading was durable", values(got))
	}
	if st := e.l.Stats(); st.Cursors[0].Backlog != 1 {
		t.Fatalf("backlog = %d, want 1", st.Cursors[0].Backlog)
	}
	e.sync()
	if got := drain(t, c, 10); !equal(values(got), []float64{1}) {
		t.Fatalf("after Sync: %v", values(got))
	}
}

func TestNextBlocksUntilAppendAndSync(t *testing.T) {
	e := newEnv(t, Config{}, options{})
	c := e.cursor("mqtt")
	type result struct {
		rs  []reading.Reading
		err error
	}
	done := make(chan result, 1)
	go func() {
		rs, err := c.Next(ctxT(t), 10)
		done <- result{rs, err}
	}()
	e.append(rd("air", 7))
	e.sync()
	r := <-done
	if r.err != nil || !equal(values(r.rs), []float64{7}) {
		t.Fatalf("Next = %v, %v", values(r.rs), r.err)
	}
}

func TestNextContextAndClose(t *testing.T) {
	e := newEnv(t, Config{}, options{})
	c := e.cursor("mqtt")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Next(ctx, 10)
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after cancel = %v, want context.Canceled", err)
	}
	go func() {
		_, err := c.Next(ctxT(t), 10)
		errc <- err
	}()
	if err := e.l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close = %v, want ErrClosed", err)
	}
	if err := e.l.Append([]reading.Reading{rd("air", 1)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v", err)
	}
	if err := e.l.Sync(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close = %v", err)
	}
	if err := e.l.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v", err)
	}
}

func TestSeqPerSensorAcrossQuantities(t *testing.T) {
	e := newEnv(t, Config{}, options{})
	h := rd("bme", 1)
	h.Quantity, h.Unit = reading.Humidity, "%RH"
	p := rd("bme", 2)
	p.Quantity, p.Unit = reading.Pressure, "Pa"
	batch := []reading.Reading{rd("bme", 0), h, p, rd("ds", 3), rd("bme", 4)}
	e.append(batch...)
	if got := seqs(batch); !equal(got, []uint64{1, 2, 3, 1, 4}) {
		t.Fatalf("seqs = %v, want [1 2 3 1 4]", got)
	}
}

func TestConcurrentAppendSeqsUniqueAndOrdered(t *testing.T) {
	e := newEnv(t, Config{SegmentBytes: 8 << 10}, options{})
	c := e.cursor("mqtt")
	const writers, batches = 4, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				rs := []reading.Reading{rd("shared", float64(b)), rd(fmt.Sprintf("own-%d", w), float64(b))}
				if err := e.l.Append(rs); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	e.sync()
	got := drain(t, c, 1000)
	if len(got) != 2*writers*batches {
		t.Fatalf("drained %d readings, want %d", len(got), 2*writers*batches)
	}
	last := map[string]uint64{}
	for _, r := range got {
		if r.Seq != last[r.Sensor]+1 {
			t.Fatalf("sensor %s: seq %d after %d", r.Sensor, r.Seq, last[r.Sensor])
		}
		last[r.Sensor] = r.Seq
	}
	if last["shared"] != writers*batches {
		t.Fatalf("shared sensor ended at seq %d", last["shared"])
	}
}

func TestCursorsAreIndependent(t *testing.T) {
	e := newEnv(t, Config{}, options{})
	a, b := e.cursor("mqtt"), e.cursor("kafka")
	e.append(many("air", 0, 5)...)
	e.sync()
	if got := drain(t, a, 2); !equal(values(got), span(0, 5)) {
		t.Fatalf("mqtt: %v", values(got))
	}
	e.append(many("air", 5, 5)...)
	e.sync()
	if got := drain(t, b, 3); !equal(values(got), span(0, 10)) {
		t.Fatalf("kafka: %v", values(got))
	}
	if got := drain(t, a, 100); !equal(values(got), span(5, 5)) {
		t.Fatalf("mqtt again: %v", values(got))
	}
	// A cursor created later starts at the oldest reading still present.
	if got := drain(t, e.cursor("late"), 100); !equal(values(got), span(0, 10)) {
		t.Fatalf("late: %v", values(got))
	}
}

func TestCursorNamesAndReuse(t *testing.T) {
	e := newEnv(t, Config{}, options{})
	for _, bad := range []string{"", "a/b", "with space", strings.Repeat("x", 65)} {
		if _, err := e.l.Cursor(bad); err == nil {
			t.Errorf("Cursor(%q): want an error", bad)
		}
	}
	e.cursor("mqtt")
	if _, err := e.l.Cursor("mqtt"); err == nil {
		t.Fatal("second Cursor(\"mqtt\"): want an error")
	}
}

func TestRestartKeepsSeqAndCursors(t *testing.T) {
	e := newEnv(t, Config{}, options{})
	c := e.cursor("mqtt")
	e.append(many("air", 0, 10)...)
	e.append(many("soil", 100, 3)...)
	e.sync()
	got, err := c.Next(ctxT(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ack(len(got)); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	rs := []reading.Reading{rd("air", 10), rd("soil", 103), rd("new", 0)}
	e.append(rs...)
	if got := seqs(rs); !equal(got, []uint64{11, 4, 1}) {
		t.Fatalf("seqs after restart = %v, want [11 4 1]", got)
	}
	e.sync()
	c = e.cursor("mqtt")
	want := append(span(4, 6), 100, 101, 102, 10, 103, 0)
	if got := drain(t, c, 100); !equal(values(got), want) {
		t.Fatalf("after restart the cursor read %v, want %v", values(got), want)
	}
}

func TestRolloverAndDeletionOnceAllCursorsPass(t *testing.T) {
	e := newEnv(t, Config{SegmentBytes: 4 << 10}, options{})
	a, b := e.cursor("mqtt"), e.cursor("kafka")
	for i := range 40 {
		e.append(many("air", i*10, 10)...)
	}
	e.sync()
	st := e.l.Stats()
	if st.Segments < 5 {
		t.Fatalf("%d segments, want several", st.Segments)
	}
	if got := drain(t, a, 64); len(got) != 400 {
		t.Fatalf("mqtt read %d", len(got))
	}
	e.reopen() // persists mqtt's position; kafka has not moved
	a, b = e.cursor("mqtt"), e.cursor("kafka")
	e.sync()
	if n := len(segFiles(t, e.dir)); n != st.Segments {
		t.Fatalf("%d segment files after one cursor passed, want %d kept for kafka", n, st.Segments)
	}
	if got := drain(t, b, 64); !equal(values(got), span(0, 400)) {
		t.Fatalf("kafka read %d readings", len(got))
	}
	e.sync() // persists kafka's position and deletes the passed segments
	if n := len(segFiles(t, e.dir)); n != 1 {
		t.Fatalf("%d segment files after every cursor passed, want only the active one", n)
	}
	if st := e.l.Stats(); st.Segments != 1 || st.Cursors[0].Backlog != 0 || st.Cursors[1].Backlog != 0 {
		t.Fatalf("stats = %+v", st)
	}
	// Seqs survive the deletion of every segment that held them.
	e.reopen()
	r := []reading.Reading{rd("air", 400)}
	e.append(r...)
	if r[0].Seq != 401 {
		t.Fatalf("seq after deletion and restart = %d, want 401", r[0].Seq)
	}
	_ = a
}

func TestNoCursorKeepsData(t *testing.T) {
	e := newEnv(t, Config{SegmentBytes: 4 << 10}, options{})
	for i := range 20 {
		e.append(many("air", i*10, 10)...)
	}
	e.sync()
	e.reopen()
	if got := drain(t, e.cursor("first"), 100); len(got) != 200 {
		t.Fatalf("a first cursor read %d readings, want all 200", len(got))
	}
}

func TestMaxBytesDropOldest(t *testing.T) {
	e := newEnv(t, Config{MaxBytes: 64 << 10, SegmentBytes: 4 << 10}, options{})
	c := e.cursor("mqtt")
	const n = 4000 // about 300 KiB: several times the budget
	for i := range n / 10 {
		e.append(many("air", i*10, 10)...)
		if st := e.l.Stats(); st.Bytes > 64<<10 {
			t.Fatalf("after %d readings the log holds %d bytes, over the 64 KiB budget", (i+1)*10, st.Bytes)
		}
	}
	e.sync()
	st := e.l.Stats()
	cs := st.Cursors[0]
	if cs.Dropped == 0 || st.DroppedFull != cs.Dropped {
		t.Fatalf("dropped: log %d, cursor %d; want equal and positive", st.DroppedFull, cs.Dropped)
	}
	got := drain(t, c, 256)
	if uint64(len(got))+cs.Dropped != n {
		t.Fatalf("read %d + dropped %d != appended %d", len(got), cs.Dropped, n)
	}
	// What is left is the newest readings, in order, without gaps.
	if !equal(values(got), span(n-len(got), len(got))) {
		t.Fatalf("kept readings are not the newest in order: first %v", values(got[:3]))
	}
	if c := e.logs.count("dropped unsent readings"); c == 0 || uint64(c) > cs.Dropped {
		t.Fatalf("%d drop log lines", c)
	}
}

func TestBlockNewest(t *testing.T) {
	e := newEnv(t, Config{MaxBytes: 64 << 10, SegmentBytes: 4 << 10, Full: FullBlockNewest}, options{})
	c := e.cursor("mqtt")
	accepted := 0
	var err error
	for i := 0; i < 2000 && err == nil; i++ {
		if err = e.l.Append(many("air", accepted, 10)); err == nil {
			accepted += 10
		}
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("Append past the budget = %v, want ErrFull", err)
	}
	if err := e.l.Append(many("air", accepted, 1)); !errors.Is(err, ErrFull) {
		t.Fatalf("Append while full = %v", err)
	}
	st := e.l.Stats()
	if st.Refused != 11 || st.DroppedFull != 0 || st.Cursors[0].Dropped != 0 {
		t.Fatalf("stats = %+v", st)
	}
	e.sync()
	if got := drain(t, c, 500); !equal(values(got), span(0, accepted)) {
		t.Fatalf("read %d readings, want the %d accepted", len(got), accepted)
	}
	// Once the cursor passed, the space comes back.
	e.sync()
	rs := many("air", accepted, 10)
	if err := e.l.Append(rs); err != nil {
		t.Fatalf("Append after draining = %v", err)
	}
	if rs[0].Seq != uint64(accepted+1) {
		t.Fatalf("seq after refusals = %d, want %d (refused readings get no seq)", rs[0].Seq, accepted+1)
	}
}

func TestMaxAge(t *testing.T) {
	clk := newClock()
	e := newEnv(t, Config{SegmentBytes: 4 << 10, MaxAge: 24 * time.Hour}, options{})
	e.now = clk.Now
	e.reopen()
	c := e.cursor("mqtt")
	old := many("air", 0, 100)
	for i := range old {
		old[i].Time = clk.Now()
	}
	e.append(old...)
	e.sync()
	clk.Add(25 * time.Hour)
	fresh := many("air", 100, 10)
	for i := range fresh {
		fresh[i].Time = clk.Now()
	}
	e.sync() // rolls the aged active segment over and drops it
	e.append(fresh...)
	e.sync()
	st := e.l.Stats()
	if st.DroppedAge != 100 || st.Cursors[0].Dropped != 100 {
		t.Fatalf("stats = %+v; want 100 dropped by age", st)
	}
	if got := drain(t, c, 100); !equal(values(got), span(100, 10)) {
		t.Fatalf("read %v, want only the fresh readings", values(got))
	}
}

func TestDrainRatePacing(t *testing.T) {
	clk := newClock()
	const rate = 50
	e := newEnv(t, Config{DrainRate: rate}, options{sleep: clk.sleep})
	e.now = clk.Now
	e.reopen()
	c := e.cursor("mqtt")
	e.append(many("air", 0, 1000)...)
	e.sync()
	start := clk.Now()
	total := 0
	ctx := ctxT(t)
	for total < 1000 {
		rs, err := c.Next(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) > rate {
			t.Fatalf("one Next returned %d readings, more than the %d-reading burst", len(rs), rate)
		}
		total += len(rs)
		elapsed := clk.Now().Sub(start).Seconds()
		if allowed := rate + rate*elapsed; float64(total) > allowed+1e-9 {
			t.Fatalf("%d readings after %.2fs of fake time; the bucket allows %.0f", total, elapsed, allowed)
		}
		if err := c.Ack(len(rs)); err != nil {
			t.Fatal(err)
		}
	}
	if elapsed := clk.Now().Sub(start); elapsed < 19*time.Second {
		t.Fatalf("1000 readings at %d/s drained in %v of fake time", rate, elapsed)
	}
}

func TestDrainRateWaitEndsWithContext(t *testing.T) {
	// One reading per 1000 s: the second Next would wait that long for a
	// token, but returns when its context ends.
	e := newEnv(t, Config{DrainRate: 0.001}, options{})
	c := e.cursor("mqtt")
	e.append(many("air", 0, 3)...)
	e.sync()
	rs, err := c.Next(ctxT(t), 10)
	if err != nil || len(rs) != 1 {
		t.Fatalf("first Next = %d readings, %v; want the one-reading burst", len(rs), err)
	}
	c.Ack(1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Next(ctx, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next without tokens = %v, want the context's error", err)
	}
}

func TestDiskFull(t *testing.T) {
	var full sync.Mutex
	isFull := false
	o := options{writeAt: func(f *os.File, b []byte, off int64) (int, error) {
		full.Lock()
		defer full.Unlock()
		if isFull {
			n, _ := f.WriteAt(b[:len(b)/2], off) // a partial write, like a real full disk
			return n, fmt.Errorf("write: %w", syscall.ENOSPC)
		}
		return f.WriteAt(b, off)
	}}
	setFull := func(v bool) { full.Lock(); isFull = v; full.Unlock() }
	e := newEnv(t, Config{SegmentBytes: 4 << 10, Full: FullBlockNewest}, o)
	c := e.cursor("mqtt")
	e.append(many("air", 0, 50)...)
	e.sync()
	// Appends land in the write buffer; the failing flush loses them, cuts
	// the file back and counts them. The flush is Sync's, or the
	// background commit's when it got there first (it commits the first
	// append after a quiet spell at once): then Sync has nothing left to
	// write, and the disk-full state tells.
	setFull(true)
	e.append(many("air", 50, 5)...)
	if err := e.l.Sync(); !errors.Is(err, syscall.ENOSPC) && (err != nil || !e.l.Stats().DiskFull) {
		t.Fatalf("Sync on a full disk = %v (disk full: %v)", err, e.l.Stats().DiskFull)
	}
	// A batch that needs a new segment is refused with ErrFull.
	var err error
	for i := 0; i < 200 && err == nil; i++ {
		err = e.l.Append(many("air", 100, 10))
	}
	if !errors.Is(err, ErrFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append on a full disk = %v, want ErrFull wrapping ENOSPC", err)
	}
	st := e.l.Stats()
	if st.Refused == 0 || st.DroppedFull == 0 || !st.DiskFull {
		t.Fatalf("stats = %+v", st)
	}
	// A state, logged once, not a line per refused batch.
	if n := e.logs.count("buffer: disk full"); n != 1 {
		t.Fatalf("%d disk-full log lines for %d refused readings, want 1", n, st.Refused)
	}
	setFull(false)
	e.append(rd("air", 999))
	e.sync()
	e.reopen()
	if st := e.l.Stats(); st.TornTruncated != 0 || st.CorruptSkipped != 0 {
		t.Fatalf("after a full disk the log needed repair: %+v", st)
	}
	got := drain(t, e.cursor("mqtt"), 100)
	if !equal(values(got[:50]), span(0, 50)) || got[len(got)-1].Value != 999 {
		t.Fatalf("read %v", values(got))
	}
	_ = c
}

func TestSyncAlways(t *testing.T) {
	e := newEnv(t, Config{Sync: SyncAlways}, options{})
	c := e.cursor("mqtt")
	before := e.l.Stats().Fsyncs
	e.append(rd("air", 1))
	if st := e.l.Stats(); st.Fsyncs <= before {
		t.Fatal("Append with sync: always returned without an fsync")
	}
	if got := drain(t, c, 10); !equal(values(got), []float64{1}) {
		t.Fatalf("Next after Append = %v", values(got))
	}
	// Concurrent Appends share fsyncs and all become durable.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.l.Append([]reading.Reading{rd("air", float64(10+i))}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := drain(t, c, 10); len(got) != 8 {
		t.Fatalf("read %d of 8 concurrent readings", len(got))
	}
}

func TestGroupCommitFsyncsDoNotGrowWithRate(t *testing.T) {
	e := newEnv(t, Config{Sync: "1s"}, options{})
	start := time.Now()
	before := e.l.Stats().Fsyncs
	for i := range 20000 {
		e.append(rd("air", float64(i)))
	}
	st := e.l.Stats()
	fsyncs := st.Fsyncs - before
	// One commit per second at most, each one file fsync plus one for the
	// directory after a segment was created, and two per seq reservation.
	if limit := 2*(uint64(time.Since(start)/time.Second)+1) + 2*st.Reservations; fsyncs > limit {
		t.Fatalf("%d fsyncs for 20000 appends in %v, want at most %d", fsyncs, time.Since(start), limit)
	}
}

func TestSecondOpenIsRefused(t *testing.T) {
	e := newEnv(t, Config{}, options{})
	if _, err := Open(e.dir, Config{}, nil, nil); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open = %v, want in use", err)
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	_, err := Open(t.TempDir(), Config{Sync: "sometimes", Full: "never"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `sync: want a duration like "1s" or "always", got "sometimes"`) ||
		!strings.Contains(err.Error(), "full:") {
		t.Fatalf("Open = %v", err)
	}
}

func TestStatsJSON(t *testing.T) {
	e := newEnv(t, Config{}, options{})
	e.cursor("mqtt")
	e.append(rd("air", 1))
	b, err := json.Marshal(e.l.Stats())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"bytes":`, `"segments":1`, `"appended":1`, `"dropped_full":0`, `"refused":0`,
		`"corrupt_skipped":0`, `"torn_truncated":0`, `"fsyncs":`, `"bytes_written":`,
		`"cursors":[{"name":"mqtt","backlog":1,"backlog_bytes":`, `"oldest_unsent":"` + t0.Add(time.Millisecond).Format(time.RFC3339Nano) + `"`, `"dropped":0}`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("stats JSON %s lacks %s", b, k)
		}
	}
}

func TestSegmentFilesAreNamedByOffset(t *testing.T) {
	e := newEnv(t, Config{SegmentBytes: 4 << 10}, options{})
	for i := range 20 {
		e.append(many("air", i*10, 10)...)
	}
	e.sync()
	files := segFiles(t, e.dir)
	var next int64
	for _, f := range files {
		var base int64
		if _, err := fmt.Sscanf(filepath.Base(f), "%020d.seg", &base); err != nil || len(filepath.Base(f)) != 24 {
			t.Fatalf("segment name %s", f)
		}
		if base != next {
			t.Fatalf("segment %s starts at %d, want %d (the end of the previous one)", f, base, next)
		}
		st, _ := os.Stat(f)
		next = base + st.Size()
	}
}

// TestGroupCommitLeadingEdge: after a quiet spell an Append is committed
// (and visible to cursors) at once, not a sync interval later; appends
// that follow within the interval wait for the next commit, so there is
// never more than one commit per interval.
func TestGroupCommitLeadingEdge(t *testing.T) {
	l, err := Open(t.TempDir(), Config{Sync: "1h"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := l.Cursor("out")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append([]reading.Reading{benchReading(1)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs, err := c.Next(ctx, 10)
	if err != nil || len(rs) != 1 {
		t.Fatalf("first reading after a quiet spell: %d readings, %v; want it committed at once (sync is 1h)", len(rs), err)
	}
	c.Ack(1)
	fsyncs := l.Stats().Fsyncs

	// Within the interval: no commit until it ends (an hour here).
	if err := l.Append([]reading.Reading{benchReading(2)}); err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if rs, err := c.Next(short, 10); err == nil {
		t.Fatalf("second reading visible at once (%d readings): a second commit within the interval", len(rs))
	}
	if got := l.Stats().Fsyncs; got != fsyncs {
		t.Errorf("fsyncs went from %d to %d within one interval", fsyncs, got)
	}
}

// TestClockFieldsRoundTrip: Clock, Mono and Boot of an unsynchronised
// reading survive the log (they are what corrects its time later); a
// synchronised reading stores none of them.
func TestClockFieldsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := []reading.Reading{benchReading(1), benchReading(2)}
	in[0].Clock, in[0].Mono, in[0].Boot = reading.ClockUnsynced, 987654321012, 0xdeadbeef
	if err := l.Append(in); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l, err = Open(dir, Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, _ := l.Cursor("out")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs, err := c.Next(ctx, 10)
	if err != nil || len(rs) != 2 {
		t.Fatalf("Next: %d readings, %v", len(rs), err)
	}
	if rs[0].Clock != reading.ClockUnsynced || rs[0].Mono != 987654321012 || rs[0].Boot != 0xdeadbeef {
		t.Errorf("unsynced reading came back as %+v", rs[0])
	}
	if rs[1].Clock != "" || rs[1].Mono != 0 || rs[1].Boot != 0 {
		t.Errorf("synced reading came back as %+v", rs[1])
	}
}

// TestWaitDurable: after Append it returns once the readings are durable,
// which the leading-edge commit makes at once after a quiet spell; within
// the sync interval it waits for the next commit (here an hour: ctx ends
// first).
func TestWaitDurable(t *testing.T) {
	l, err := Open(t.TempDir(), Config{Sync: "1h"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	appendDurable := func(ctx context.Context, rs []reading.Reading) error {
		if err := l.Append(rs); err != nil {
			return err
		}
		return l.WaitDurable(ctx)
	}
	if err := appendDurable(ctx, []reading.Reading{benchReading(1)}); err != nil {
		t.Fatalf("first Append + WaitDurable: %v", err)
	}
	c, _ := l.Cursor("out")
	short, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if rs, err := c.Next(short, 10); err != nil || len(rs) != 1 {
		t.Fatalf("after WaitDurable the reading is not durable: %d, %v", len(rs), err)
	}
	soon, cancel3 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel3()
	if err := appendDurable(soon, []reading.Reading{benchReading(2)}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second Append + WaitDurable within the interval: %v, want it to wait for the next commit", err)
	}
}

// TestUnsyncedReadingsAreNotTooOld: a reading taken before the clock was
// set carries a wrong, often years-old time; max_age must not drop it
// (the agent corrects its time when it sends it), while a properly old
// reading is dropped.
func TestUnsyncedReadingsAreNotTooOld(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, unsynced := range []bool{true, false} {
		l, err := Open(t.TempDir(), Config{MaxAge: 24 * time.Hour}, func() time.Time { return now }, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := benchReading(1)
		r.Time = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
		if unsynced {
			r.Clock, r.Mono, r.Boot = reading.ClockUnsynced, 5e9, 1
		}
		if err := l.Append([]reading.Reading{r}); err != nil {
			t.Fatal(err)
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		c, _ := l.Cursor("out")
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		rs, _ := c.Next(ctx, 10)
		cancel()
		if st := l.Stats(); unsynced && (len(rs) != 1 || st.DroppedAge != 0) {
			t.Errorf("unsynced reading: %d readings, %d dropped for age; want it kept", len(rs), st.DroppedAge)
		} else if !unsynced && st.DroppedAge != 1 {
			t.Errorf("a reading from 2000 with a synced clock: %d dropped for age, want 1", st.DroppedAge)
		}
		l.Close()
	}
}

// TestOpenOnANearlyFullDisk: with less free space than one segment (its
// preallocation fails) Open still succeeds, says the disk is full, and
// stores again, clearing the state, once a write succeeds.
func TestOpenOnANearlyFullDisk(t *testing.T) {
	noSpace := func(*os.File, int64) error { return fmt.Errorf("fallocate: %w", syscall.ENOSPC) }
	e := newEnv(t, Config{}, options{preallocate: noSpace})
	if !e.l.DiskFull() || !e.l.Stats().DiskFull {
		t.Fatal("DiskFull = false after a failed preallocation at Open")
	}
	if n := e.logs.count("disk full"); n != 1 {
		t.Fatalf("%d disk-full log lines, want 1: %s", n, e.logs)
	}
	c := e.cursor("mqtt")
	e.append(rd("air", 1))
	e.sync()
	if e.l.DiskFull() {
		t.Fatal("DiskFull still true after a write succeeded")
	}
	if got := drain(t, c, 10); !equal(values(got), []float64{1}) {
		t.Fatalf("read %v", values(got))
	}
	if n := e.logs.count("disk has space again"); n != 1 {
		t.Fatalf("%d recovery log lines, want 1", n)
	}
}
