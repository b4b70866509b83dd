package publish_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/publish"
	"github.com/kelvin-gw/kelvin/publish/publishtest"
	"github.com/kelvin-gw/kelvin/reading"
)

// fakeOutput fails its first fails Publish calls, then delivers. block makes
// Publish wait for ctx instead.
type fakeOutput struct {
	mu        sync.Mutex
	fails     int
	block     bool
	attempts  [][]uint64  // every batch passed to Publish, in order
	times     []time.Time // when each attempt started
	delivered []uint64
}

var _ publish.Output = (*fakeOutput)(nil)

var errFake = errors.New("broker unreachable")

func (f *fakeOutput) Name() string { return "fake" }

func (f *fakeOutput) Status() publish.Status { return publish.Status{Name: "fake"} }

func (f *fakeOutput) Publish(ctx context.Context, batch []reading.Reading) error {
	f.mu.Lock()
	f.attempts = append(f.attempts, seqs(batch))
	f.times = append(f.times, time.Now())
	block := f.block
	fail := f.fails > 0
	if fail {
		f.fails--
	}
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	if fail {
		return errFake
	}
	f.mu.Lock()
	f.delivered = append(f.delivered, seqs(batch)...)
	f.mu.Unlock()
	return nil
}

func (f *fakeOutput) snapshot() (attempts [][]uint64, times []time.Time, delivered []uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]uint64(nil), f.attempts...), append([]time.Time(nil), f.times...), append([]uint64(nil), f.delivered...)
}

// recorder is a slog.Handler counting records per level.
type recorder struct {
	mu     sync.Mutex
	levels map[slog.Level]int
	msgs   []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.levels == nil {
		r.levels = map[slog.Level]int{}
	}
	r.levels[rec.Level]++
	r.msgs = append(r.msgs, rec.Level.String()+" "+rec.Message)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }
func (r *recorder) count(l slog.Level) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.levels[l]
}

type forwardRun struct {
	cancel context.CancelFunc
	done   chan error
}

func startForward(t *testing.T, src publish.Source, out publish.Output, opts publish.ForwardOptions, log *slog.Logger) *forwardRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &forwardRun{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- publish.Forward(ctx, src, out, opts, log) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels publish.Forward and returns its error, failing the test if it does not
// return within 10 s.
func (r *forwardRun) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("publish.Forward did not return after cancel")
		return nil
	}
}

func TestForwardRetriesSameBatchWithBackoff(t *testing.T) {
	const n, fails = 25, 4
	q := publishtest.NewQueue(100)
	for i := uint64(1); i <= n; i++ {
		q.Push(rd(i))
	}
	out := &fakeOutput{fails: fails}
	rec := &recorder{}
	opts := publish.ForwardOptions{Batch: 10, MinBackoff: 8 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}
	fw := startForward(t, q, out, opts, slog.New(rec))

	testenv.WaitFor(t, "all readings delivered", func() bool { _, _, d := out.snapshot(); return len(d) == n })
	if err := fw.stop(t); err != nil {
		t.Fatalf("publish.Forward = %v, want nil", err)
	}

	attempts, times, delivered := out.snapshot()
	for i, s := range delivered {
		if s != uint64(i+1) {
			t.Fatalf("delivered %v: want 1..%d in order", delivered, n)
		}
	}
	// Attempts 0..fails are the same first batch; then the next batches.
	if len(attempts) != fails+3 {
		t.Fatalf("%d Publish calls, want %d: %v", len(attempts), fails+3, attempts)
	}
	for i := 0; i <= fails; i++ {
		if !slices.Equal(attempts[i], []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) {
			t.Fatalf("attempt %d = %v, want the first batch again", i, attempts[i])
		}
	}
	// Delay before retry k is drawn from [d/2, d], d = min(8ms << k, 20ms).
	d := opts.MinBackoff
	for k := 1; k <= fails; k++ {
		if gap := times[k].Sub(times[k-1]); gap < d/2 {
			t.Errorf("retry %d came after %v, want at least %v", k, gap, d/2)
		}
		d = min(2*d, opts.MaxBackoff)
	}
	// One warn when the streak starts, one info when it ends, debug between.
	if w, i, dbg := rec.count(slog.LevelWarn), rec.count(slog.LevelInfo), rec.count(slog.LevelDebug); w != 1 || i != 1 || dbg != fails-1 {
		t.Errorf("logged warn/info/debug %d/%d/%d, want 1/1/%d: %q", w, i, dbg, fails-1, rec.msgs)
	}
	if q.Len() != 0 {
		t.Errorf("queue Len = %d after delivery, want 0", q.Len())
	}
}

func TestForwardBackoffResetsAfterSuccess(t *testing.T) {
	q := publishtest.NewQueue(10)
	out := &fakeOutput{fails: 2}
	opts := publish.ForwardOptions{Batch: 1, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
	rec := &recorder{}
	startForward(t, q, out, opts, slog.New(rec))
	q.Push(rd(1))
	testenv.WaitFor(t, "first reading", func() bool { _, _, d := out.snapshot(); return len(d) == 1 })
	out.mu.Lock()
	out.fails = 3
	out.mu.Unlock()
	q.Push(rd(2))
	testenv.WaitFor(t, "second reading", func() bool { _, _, d := out.snapshot(); return len(d) == 2 })
	// Two failure streaks: two warnings and two recoveries.
	testenv.WaitFor(t, "two recoveries logged", func() bool { return rec.count(slog.LevelInfo) == 2 })
	if w := rec.count(slog.LevelWarn); w != 2 {
		t.Errorf("%d warnings, want 2: %q", w, rec.msgs)
	}
}

func TestForwardCancel(t *testing.T) {
	t.Run("waiting for readings", func(t *testing.T) {
		fw := startForward(t, publishtest.NewQueue(1), &fakeOutput{}, publish.ForwardOptions{}, nil)
		if err := fw.stop(t); err != nil {
			t.Fatalf("publish.Forward = %v, want nil", err)
		}
	})
	t.Run("in backoff", func(t *testing.T) {
		q := publishtest.NewQueue(1)
		q.Push(rd(1))
		out := &fakeOutput{fails: 1 << 30}
		fw := startForward(t, q, out, publish.ForwardOptions{MinBackoff: time.Hour}, nil)
		testenv.WaitFor(t, "first attempt", func() bool { a, _, _ := out.snapshot(); return len(a) == 1 })
		if err := fw.stop(t); err != nil {
			t.Fatalf("publish.Forward = %v, want nil", err)
		}
		if q.Len() != 1 {
			t.Fatalf("queue Len = %d, want the unsent reading kept", q.Len())
		}
	})
	t.Run("in publish", func(t *testing.T) {
		q := publishtest.NewQueue(1)
		q.Push(rd(1))
		out := &fakeOutput{block: true}
		fw := startForward(t, q, out, publish.ForwardOptions{}, nil)
		testenv.WaitFor(t, "publish started", func() bool { a, _, _ := out.snapshot(); return len(a) == 1 })
		if err := fw.stop(t); err != nil {
			t.Fatalf("publish.Forward = %v, want nil", err)
		}
		if q.Len() != 1 {
			t.Fatalf("queue Len = %d, want the interrupted batch kept", q.Len())
		}
	})
}

// brokenSource fails Next.
type brokenSource struct{}

var errDisk = errors.New("disk on fire")

func (brokenSource) Next(context.Context, int) ([]reading.Reading, error) { return nil, errDisk }
func (brokenSource) Ack(int) error                                        { return nil }

func TestForwardSourceError(t *testing.T) {
	err := publish.Forward(context.Background(), brokenSource{}, &fakeOutput{}, publish.ForwardOptions{}, nil)
	if !errors.Is(err, errDisk) {
		t.Fatalf("publish.Forward = %v, want errDisk", err)
	}
	if want := "publish: next for fake: disk on fire"; err.Error() != want {
		t.Fatalf("publish.Forward = %q, want %q", err, want)
	}
}

// A lossy queue overflowing while the output is down: what is delivered is
// in order, and what is not delivered was counted as dropped.
func TestForwardLossyQueue(t *testing.T) {
	const capacity, n = 8, 50
	q := publishtest.NewQueue(capacity)
	out := &fakeOutput{fails: 1 << 30}
	opts := publish.ForwardOptions{Batch: 5, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
	fw := startForward(t, q, out, opts, nil)
	for i := uint64(1); i <= n; i++ {
		q.Push(rd(i))
	}
	out.mu.Lock()
	out.fails = 0
	out.mu.Unlock()
	testenv.WaitFor(t, "queue drained", func() bool { return q.Len() == 0 })
	if err := fw.stop(t); err != nil {
		t.Fatal(err)
	}
	// A batch taken before the overflow may still go out once the output
	// is back: what was delivered is increasing and ends with the last
	// capacity readings.
	_, _, delivered := out.snapshot()
	for i := 1; i < len(delivered); i++ {
		if delivered[i] <= delivered[i-1] {
			t.Fatalf("delivered %v: not in order", delivered)
		}
	}
	if len(delivered) < capacity || delivered[len(delivered)-capacity] != n-capacity+1 || delivered[len(delivered)-1] != n {
		t.Fatalf("delivered %v, want it to end with %d..%d", delivered, n-capacity+1, n)
	}
	if q.Dropped() != n-capacity {
		t.Fatalf("Dropped = %d, want %d", q.Dropped(), n-capacity)
	}
}

// connectingOutput is not connected until up is closed; it implements
// publish.Waiter.
type connectingOutput struct {
	up        chan struct{}
	down      atomic.Bool // lost its connection after up
	attempts  atomic.Int64
	delivered atomic.Int64
}

func (o *connectingOutput) Name() string { return "connecting" }

func (o *connectingOutput) connected() bool {
	select {
	case <-o.up:
		return !o.down.Load()
	default:
		return false
	}
}

func (o *connectingOutput) Status() publish.Status {
	return publish.Status{Name: "connecting", Connected: o.connected()}
}

func (o *connectingOutput) WaitConnected() <-chan struct{} {
	if o.down.Load() {
		return nil // not before the test says so
	}
	return o.up
}

func (o *connectingOutput) Publish(ctx context.Context, batch []reading.Reading) error {
	o.attempts.Add(1)
	if !o.connected() {
		return errors.New("not connected")
	}
	o.delivered.Add(int64(len(batch)))
	return nil
}

// TestForwardRetriesWhenConnected: a Publish that failed because the output
// was still connecting is retried when the connection comes up, not after
// the backoff (an hour here).
func TestForwardRetriesWhenConnected(t *testing.T) {
	q := publishtest.NewQueue(10)
	q.Push(reading.Reading{Sensor: "a", Seq: 1})
	out := &connectingOutput{up: make(chan struct{})}
	startForward(t, q, out, publish.ForwardOptions{MinBackoff: time.Hour, MaxBackoff: time.Hour}, nil)
	testenv.WaitFor(t, "the first attempt to fail", func() bool { return out.attempts.Load() >= 1 })
	close(out.up)
	testenv.WaitFor(t, "delivery once connected (the backoff is an hour)", func() bool { return out.delivered.Load() == 1 })
}

// TestForwardStartIsNotAWarning: the first readings come before the output
// ever connected; that is how every start goes, not a warning. A failure
// after the output was up is one.
func TestForwardStartIsNotAWarning(t *testing.T) {
	q := publishtest.NewQueue(10)
	q.Push(reading.Reading{Sensor: "a", Seq: 1})
	out := &connectingOutput{up: make(chan struct{})}
	logs := &testenv.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	startForward(t, q, out, publish.ForwardOptions{MinBackoff: time.Hour, MaxBackoff: time.Hour}, log)
	testenv.WaitFor(t, "the first attempt to fail", func() bool { return out.attempts.Load() >= 1 })
	close(out.up)
	testenv.WaitFor(t, "delivery once connected", func() bool { return out.delivered.Load() == 1 })
	if logs.String() != "" {
		t.Errorf("a normal start logged:\n%s", logs)
	}

	// A connection lost later is the output's to log, not publish.Forward's too.
	out.down.Store(true)
	q.Push(reading.Reading{Sensor: "a", Seq: 2})
	testenv.WaitFor(t, "an attempt while down", func() bool { return out.attempts.Load() >= 3 })
	if logs.String() != "" {
		t.Errorf("a lost connection logged by publish.Forward too:\n%s", logs)
	}

	// The same failure once the output had been up is worth a warning.
	q2 := publishtest.NewQueue(10)
	q2.Push(reading.Reading{Sensor: "a", Seq: 1})
	f := &fakeOutput{fails: 1}
	logs2 := &testenv.SyncBuffer{}
	startForward(t, q2, f, publish.ForwardOptions{MinBackoff: time.Millisecond}, slog.New(slog.NewTextHandler(logs2, nil)))
	testenv.WaitFor(t, "delivery after one failure", func() bool { _, _, d := f.snapshot(); return len(d) == 1 })
	if !strings.Contains(logs2.String(), "level=WARN msg=\"publish failed, retrying\"") {
		t.Errorf("a failing output without connection state did not warn:\n%s", logs2)
	}
}

func rd(seq uint64) reading.Reading {
	return reading.Reading{Agent: "a", Sensor: "s", Quantity: reading.Temperature, Seq: seq}
}

func seqs(rs []reading.Reading) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.Seq
	}
	return out
}
