package buffer

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
)

func benchReading(i int) reading.Reading {
	return reading.Reading{Agent: "greenhouse-1", Sensor: "28-0316a2b8ff01", Quantity: reading.Temperature,
		Value: 21.5 + float64(i%100)/100, Raw: 21.5, Unit: "°C", Time: t0.Add(time.Duration(i) * time.Second)}
}

// BenchmarkAppend measures Append with the default group commit (sync: 1s).
// b.N counts readings.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			// A budget the benchmark does not reach: it measures appends, not
			// drops.
			l, err := Open(b.TempDir(), Config{MaxBytes: 2 << 30}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			rs := make([]reading.Reading, batch)
			for i := range rs {
				rs[i] = benchReading(i)
			}
			before := l.Stats()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i += batch {
				if err := l.Append(rs); err != nil {
					b.Fatal(err)
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			after := l.Stats()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "readings/s")
			b.ReportMetric(float64(after.BytesWritten-before.BytesWritten)/float64(b.N), "disk-B/reading")
			b.ReportMetric(float64(after.Fsyncs-before.Fsyncs)/elapsed.Seconds(), "fsyncs/s")
		})
	}
}

// fill appends n readings in batches of 64 and syncs.
func fill(tb testing.TB, l *Log, n int) {
	rs := make([]reading.Reading, 64)
	for i := 0; i < n; i += len(rs) {
		k := min(len(rs), n-i)
		for j := range k {
			rs[j] = benchReading(i + j)
		}
		if err := l.Append(rs[:k]); err != nil {
			tb.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkDrain measures Next(1000)+Ack over a backlog of a million
// readings; each iteration drains all of it with a new cursor.
func BenchmarkDrain(b *testing.B) {
	const backlog = 1_000_000
	l, err := Open(b.TempDir(), Config{MaxBytes: 256 << 20}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	fill(b, l, backlog)
	// A failsafe: a bug fails the benchmark instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Every iteration's cursor from the start: one that came later would
	// find the backlog deleted once the earlier ones had passed it.
	cs := make([]*Cursor, b.N)
	for i := range cs {
		if cs[i], err = l.Cursor("drain-" + strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for _, c := range cs {
		n := 0
		for n < backlog {
			rs, err := c.Next(ctx, 1000)
			if err != nil {
				b.Fatal(err)
			}
			n += len(rs)
			c.Ack(len(rs))
		}
	}
	b.ReportMetric(float64(b.N*backlog)/time.Since(start).Seconds(), "readings/s")
}

// rssChild fills a log with a backlog, reopens it and drains it, then
// prints its peak RSS and the peak heap in use it sampled.
func rssChild(dir string) {
	n, _ := strconv.Atoi(os.Getenv("KELVIN_BUFFER_RSS_N"))
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	l, err := Open(dir, Config{MaxBytes: 256 << 20}, nil, nil)
	if err != nil {
		fail(err)
	}
	rs := make([]reading.Reading, 64)
	for i := 0; i < n; i += len(rs) {
		for j := range rs {
			rs[j] = benchReading(i + j)
		}
		if err := l.Append(rs); err != nil {
			fail(err)
		}
	}
	if err := l.Close(); err != nil {
		fail(err)
	}
	start := time.Now()
	l, err = Open(dir, Config{MaxBytes: 256 << 20}, nil, nil)
	if err != nil {
		fail(err)
	}
	openTime := time.Since(start)
	c, err := l.Cursor("out")
	if err != nil {
		fail(err)
	}
	// A failsafe: a reading lost by a bug ends the child instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var heapMax uint64
	var ms runtime.MemStats
	got := 0
	for i := 0; got < n; i++ {
		rs, err := c.Next(ctx, 1000)
		if err != nil {
			fail(err)
		}
		got += len(rs)
		c.Ack(len(rs))
		if i%50 == 0 {
			runtime.ReadMemStats(&ms)
			heapMax = max(heapMax, ms.HeapInuse)
		}
	}
	backlogAtEnd := l.Stats().Cursors[0].Backlog
	l.Close()
	fmt.Printf("readings %d open_seconds %.3f heap_inuse_max_bytes %d rss_peak_kib %d backlog_end %d\n",
		got, openTime.Seconds(), heapMax, vmHWM(), backlogAtEnd)
}

// vmHWM is the process's peak resident set size in KiB, from
// /proc/self/status; 0 where there is none.
func vmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// measureRSS runs rssChild over n readings in a fresh process.
func measureRSS(tb testing.TB, n int) (rssKiB, heapBytes int64, line string) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), rssChildEnv+"="+tb.TempDir(), "KELVIN_BUFFER_RSS_N="+strconv.Itoa(n))
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("rss child: %v: %s", err, out)
	}
	line = strings.TrimSpace(string(out))
	f := strings.Fields(line)
	for i := 0; i+1 < len(f); i += 2 {
		v, _ := strconv.ParseInt(f[i+1], 10, 64)
		switch f[i] {
		case "rss_peak_kib":
			rssKiB = v
		case "heap_inuse_max_bytes":
			heapBytes = v
		case "backlog_end":
			if v != 0 {
				tb.Fatalf("backlog %d left after the drain", v)
			}
		}
	}
	return rssKiB, heapBytes, line
}

// BenchmarkBacklogMemory fills a million-reading backlog and drains it in
// a child process, reporting that process's peak RSS and peak heap.
func BenchmarkBacklogMemory(b *testing.B) {
	for i := 0; i < b.N; i++ {
		rss, heap, line := measureRSS(b, 1_000_000)
		b.Log(line)
		b.ReportMetric(float64(rss)/1024, "MiB-rss-peak")
		b.ReportMetric(float64(heap)/(1<<20), "MiB-heap-peak")
	}
}

// TestBacklogMemoryIsFlat checks the memory target with a million-reading
// backlog. The race detector multiplies memory, so it runs without it.
func TestBacklogMemoryIsFlat(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("slow; measures memory, so not with -short or -race")
	}
	rss, heap, line := measureRSS(t, 1_000_000)
	t.Log(line)
	if rss > 30<<10 {
		t.Fatalf("peak RSS %d KiB with a 1M-reading backlog, want at most 30 MiB", rss)
	}
	_ = heap
}

// BenchmarkFsyncsPaced appends at a steady 10,000 readings per second (100
// every 10 ms, far more than a gateway's sensors make) for 5 s with the
// default config, and reports the fsyncs per second that cost: the SD-card
// wear of the group commit. Run it with -benchtime=1x.
func BenchmarkFsyncsPaced(b *testing.B) {
	for i := 0; i < b.N; i++ {
		l, err := Open(b.TempDir(), Config{}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		rs := make([]reading.Reading, 100)
		for j := range rs {
			rs[j] = benchReading(j)
		}
		before := l.Stats()
		start := time.Now()
		tick := time.NewTicker(10 * time.Millisecond)
		for n := 0; n < 500; n++ {
			<-tick.C
			if err := l.Append(rs); err != nil {
				b.Fatal(err)
			}
		}
		tick.Stop()
		elapsed := time.Since(start)
		after := l.Stats()
		l.Close()
		b.ReportMetric(float64(after.Fsyncs-before.Fsyncs)/elapsed.Seconds(), "fsyncs/s")
		b.ReportMetric(float64(after.BytesWritten-before.BytesWritten)/elapsed.Seconds()/1024, "KiB-written/s")
		b.ReportMetric(0, "ns/op")
	}
}

// hotBenchDir is a hot directory for a benchmark: on a tmpfs (/dev/shm) as
// in production when there is one, else in the benchmark's own directory.
func hotBenchDir(b *testing.B) string {
	if d, err := os.MkdirTemp("/dev/shm", "kelvin-bench-"); err == nil {
		if isTmpfs(d) {
			b.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
		os.RemoveAll(d)
	}
	return b.TempDir()
}

// BenchmarkHotRound measures the agent's steady state with a hot tail: each
// iteration appends one reading, reads it with Next (at most
// publish.DefaultBatch, 256, as the forwarding loop asks) and acknowledges
// it. b.N counts rounds.
func BenchmarkHotRound(b *testing.B) {
	l, err := Open(b.TempDir(), Config{HotDir: hotBenchDir(b)}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	c, err := l.Cursor("mqtt")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rs := []reading.Reading{benchReading(0)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rs[0] = benchReading(i)
		if err := l.Append(rs); err != nil {
			b.Fatal(err)
		}
		got, err := c.Next(ctx, 256)
		if err != nil || len(got) != 1 {
			b.Fatalf("next: %d readings, %v", len(got), err)
		}
		if err := c.Ack(len(got)); err != nil {
			b.Fatal(err)
		}
	}
}
