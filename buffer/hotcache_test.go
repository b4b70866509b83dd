package buffer

import (
	"errors"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
)

// tmpfsDir is a directory on a tmpfs (/dev/shm), removed at the end of the
// test; the test is skipped where there is none.
func tmpfsDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/dev/shm", "kelvin-test-")
	if err != nil {
		t.Skipf("no tmpfs to test on: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if !isTmpfs(d) {
		t.Skip("/dev/shm is not a tmpfs")
	}
	return d
}

// countReads is a readAt hook that counts a cursor's file reads.
func countReads(n *atomic.Int64) func(f *os.File, b []byte, off int64) (int, error) {
	return func(f *os.File, b []byte, off int64) (int, error) {
		n.Add(1)
		return f.ReadAt(b, off)
	}
}

// TestHotCacheAddRead: the cache holds the newest bytes of one segment,
// contiguous, at most hotCacheBytes, and answers only for bytes it holds.
func TestHotCacheAddRead(t *testing.T) {
	var h hotCache
	p := make([]byte, 8)
	if h.read(0, p, 0) {
		t.Fatal("an empty cache answered")
	}
	rec := make([]byte, 1000)
	for i := range 200 { // 200,000 bytes: past the bound, so it drops
		for j := range rec {
			rec[j] = byte(i)
		}
		h.add(100, int64(i*len(rec)), rec)
	}
	if len(h.b) > hotCacheBytes || h.off+int64(len(h.b)) != 200*1000 {
		t.Fatalf("holds %d bytes from %d: want at most %d ending at 200000", len(h.b), h.off, hotCacheBytes)
	}
	if !h.read(100, p, 199_000) || p[0] != 199 || p[7] != 199 {
		t.Fatalf("newest bytes: read %v", p)
	}
	if h.read(100, p, 0) || h.read(100, p, 199_996) || h.read(7, p, 199_000) {
		t.Fatal("answered for bytes it does not hold")
	}
	h.add(100, 500_000, rec) // not contiguous: starts over
	if h.off != 500_000 || len(h.b) != len(rec) || h.read(100, p, 199_000) {
		t.Fatalf("after a gap: from %d, %d bytes", h.off, len(h.b))
	}
	big := make([]byte, hotCacheBytes+10)
	big[len(big)-1] = 9
	h.add(200, 0, big) // another segment, larger than the cache
	if h.off != 10 || !h.read(200, p[:1], int64(len(big)-1)) || p[0] != 9 {
		t.Fatalf("after a large write: from %d, last byte %d", h.off, p[0])
	}
}

// TestHotCursorAtHeadReadsNoFile: a cursor following the head reads what
// was just appended from memory, across segment rollovers, group commits
// and cursor records, without reading a file; a cursor that lags behind
// the cache reads the file, and gets the same readings in order.
func TestHotCursorAtHeadReadsNoFile(t *testing.T) {
	var reads atomic.Int64
	e := newEnv(t, Config{HotDir: t.TempDir(), SegmentBytes: 4 << 10}, options{readAt: countReads(&reads)})
	head := e.cursor("mqtt")
	lag := e.cursor("kafka")
	const n = 600 // about 11 segments of 4 KiB
	for i := range n {
		e.append(rd("air", float64(i)))
		got := drain(t, head, 256)
		if !equal(values(got), []float64{float64(i)}) {
			t.Fatalf("after append %d the head cursor read %v", i, values(got))
		}
		if i%100 == 0 {
			e.sync() // a group commit: cursor records, spills of kafka's backlog
		}
	}
	if st := e.l.Stats(); st.Segments < 5 {
		t.Fatalf("%d segments: the test wants rollovers", st.Segments)
	}
	if r := reads.Load(); r != 0 {
		t.Fatalf("the cursor at the head read a file %d times", r)
	}
	got := drain(t, lag, 256)
	if !equal(values(got), span(0, n)) {
		t.Fatalf("the lagging cursor read %d readings, want %d in order", len(got), n)
	}
	if reads.Load() == 0 {
		t.Fatal("the lagging cursor read older segments without reading a file")
	}
}

// TestHotCursorBehindCacheReadsFile: within one segment, a cursor more
// than hotCacheBytes behind the head reads the file until it is near the
// head, then memory again.
func TestHotCursorBehindCacheReadsFile(t *testing.T) {
	var reads atomic.Int64
	e := newEnv(t, Config{HotDir: t.TempDir()}, options{readAt: countReads(&reads)})
	c := e.cursor("mqtt")
	const n = 3000 // about 200 KiB, three times the cache
	e.append(many("air", 0, n)...)
	if got := drain(t, c, 256); !equal(values(got), span(0, n)) {
		t.Fatalf("read %d readings, want %d in order", len(got), n)
	}
	before := reads.Load()
	if before == 0 {
		t.Fatal("read 200 KiB without reading the file")
	}
	for i := n; i < n+50; i++ {
		e.append(rd("air", float64(i)))
		if got := drain(t, c, 256); !equal(values(got), []float64{float64(i)}) {
			t.Fatalf("after append %d read %v", i, values(got))
		}
	}
	if r := reads.Load(); r != before {
		t.Fatalf("at the head the cursor read the file %d more times", r-before)
	}
	e.reopen() // a new process: nothing cached, the file serves
	e.append(rd("air", n+50))
	if got := drain(t, e.cursor("mqtt"), 256); !equal(values(got), []float64{n + 50}) {
		t.Fatalf("after a restart read %v", values(got))
	}
}

// TestHotTmpfsRawWrites: with the hot directory on a tmpfs, the hot tail is
// written with raw system calls; readings, cursor records and a restart
// work as with os.File.
func TestHotTmpfsRawWrites(t *testing.T) {
	e := newEnv(t, Config{HotDir: tmpfsDir(t), SegmentBytes: 4 << 10}, options{})
	if !e.l.hotTmpfs {
		t.Fatal("the hot directory on a tmpfs was not recognised")
	}
	c := e.cursor("mqtt")
	for i := range 200 {
		e.append(rd("air", float64(i)))
		if i < 150 {
			drain(t, c, 256)
		}
	}
	e.sync()
	e.reopen()
	if got := drain(t, e.cursor("mqtt"), 256); !equal(values(got), span(150, 50)) {
		t.Fatalf("after a restart read %v, want 150..199", values(got))
	}
}

// TestPwriteRaw: the raw write writes where os.File.WriteAt would and
// reports errors as it does, in an *os.PathError.
func TestPwriteRaw(t *testing.T) {
	path := tmpfsDir(t) + "/f"
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, err := pwriteRaw(f, []byte("world"), 6); n != 5 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	if n, err := pwriteRaw(f, []byte("hello "), 0); n != 6 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	if b, _ := os.ReadFile(path); string(b) != "hello world" {
		t.Fatalf("file holds %q", b)
	}
	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	_, err = pwriteRaw(ro, []byte("x"), 0)
	var pe *os.PathError
	if !errors.As(err, &pe) || !errors.Is(err, syscall.EBADF) || pe.Path != path {
		t.Fatalf("write to a read-only file: %v, want EBADF in a PathError", err)
	}
}
