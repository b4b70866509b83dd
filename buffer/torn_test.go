package buffer

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelvin-gw/kelvin/reading"
)

// records lists the records of a segment file's bytes.
func records(t *testing.T, b []byte) []record {
	t.Helper()
	var sr segReader
	sr.reset(bytes.NewReader(b), magicLen, int64(len(b)))
	var out []record
	for {
		rec, skipped, ok, err := sr.next()
		if err != nil || skipped != 0 {
			t.Fatalf("reference segment: skipped %d, %v", skipped, err)
		}
		if !ok {
			return out
		}
		out = append(out, rec)
	}
}

// oneSegment writes readings 0..n-1 of sensor "air", one Append each, and
// returns the bytes of the only segment.
func oneSegment(t *testing.T, n int) []byte {
	t.Helper()
	e := newEnv(t, Config{}, options{})
	for i := range n {
		e.append(rd("air", float64(i)))
	}
	if err := e.l.Close(); err != nil {
		t.Fatal(err)
	}
	files := segFiles(t, e.dir)
	if len(files) != 1 {
		t.Fatalf("%d segments", len(files))
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reopenWith opens a log whose only segment holds b and returns its stats
// and every reading a new cursor reads.
func reopenWith(t *testing.T, b []byte) (Stats, []reading.Reading, *Log) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000000.seg"), b, 0o640); err != nil {
		t.Fatal(err)
	}
	l, err := open(dir, Config{Sync: "1h"}, nil, nil, options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	st := l.Stats()
	c, err := l.Cursor("check")
	if err != nil {
		t.Fatal(err)
	}
	return st, drain(t, c, 1000), l
}

func TestTornTailAtEveryOffset(t *testing.T) {
	const n = 6
	b := oneSegment(t, n)
	recs := records(t, b)
	if len(recs) != n+1 { // the checkpoint, then the readings
		t.Fatalf("%d records", len(recs))
	}
	from := recs[len(recs)-2].start // the last two readings
	for cut := from; cut < int64(len(b)); cut++ {
		whole := 0 // readings entirely before cut
		boundary := false
		for _, r := range recs[1:] {
			if r.end <= cut {
				whole++
			}
			boundary = boundary || r.end == cut || r.start == cut
		}
		st, got, l := reopenWith(t, b[:cut])
		wantTorn := uint64(1)
		if boundary {
			wantTorn = 0
		}
		if st.TornTruncated != wantTorn || st.CorruptSkipped != 0 {
			t.Fatalf("cut at %d: torn %d, corrupt %d; want torn %d", cut, st.TornTruncated, st.CorruptSkipped, wantTorn)
		}
		if !equal(values(got), span(0, whole)) || !equal(seqs(got), []uint64{1, 2, 3, 4, 5, 6}[:whole]) {
			t.Fatalf("cut at %d: read %v, want readings 0..%d intact", cut, values(got), whole-1)
		}
		// The seq of a reading lost before it was durable may be reused;
		// no durable one is.
		rs := []reading.Reading{rd("air", 100)}
		if err := l.Append(rs); err != nil || rs[0].Seq != uint64(whole+1) {
			t.Fatalf("cut at %d: append after recovery: seq %d, %v; want %d", cut, rs[0].Seq, err, whole+1)
		}
	}
}

func TestCorruptByteInLastRecords(t *testing.T) {
	const n = 6
	b := oneSegment(t, n)
	recs := records(t, b)
	last, prev := recs[len(recs)-1], recs[len(recs)-2]
	for off := prev.start; off < last.end; off++ {
		c := bytes.Clone(b)
		c[off] ^= 0xff
		st, got, _ := reopenWith(t, c)
		if off >= last.start {
			// The last record is a torn tail: cut off.
			if st.TornTruncated != 1 || !equal(values(got), span(0, n-1)) {
				t.Fatalf("byte %d of the last record: torn %d, read %v", off, st.TornTruncated, values(got))
			}
			continue
		}
		// The one before is bit rot in the middle: skipped, and the last
		// record is still delivered.
		want := append(span(0, n-2), n-1)
		if st.CorruptSkipped != 1 || st.TornTruncated != 0 || !equal(values(got), want) {
			t.Fatalf("byte %d of the second-last record: corrupt %d, torn %d, read %v; want %v",
				off, st.CorruptSkipped, st.TornTruncated, values(got), want)
		}
	}
}

func TestCorruptRecordInTheMiddleOfAnOldSegment(t *testing.T) {
	e := newEnv(t, Config{SegmentBytes: 4 << 10}, options{})
	for i := range 30 {
		e.append(many("air", i*10, 10)...)
	}
	if err := e.l.Close(); err != nil {
		t.Fatal(err)
	}
	files := segFiles(t, e.dir)
	b, _ := os.ReadFile(files[0])
	recs := records(t, b)
	victim := recs[len(recs)/2]
	var dec decoder
	var lost reading.Reading
	if err := dec.decodeReading(victim.payload, &lost); err != nil {
		t.Fatal(err)
	}
	b[victim.start+headerLen+3] ^= 0x10
	if err := os.WriteFile(files[0], b, 0o640); err != nil {
		t.Fatal(err)
	}
	e.open()
	got := drain(t, e.cursor("check"), 1000)
	var want []float64
	for _, v := range span(0, 300) {
		if v != lost.Value {
			want = append(want, v)
		}
	}
	if !equal(values(got), want) {
		t.Fatalf("read %d readings, want all 299 but %v", len(got), lost.Value)
	}
	if st := e.l.Stats(); st.CorruptSkipped != 1 || st.TornTruncated != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestCorruptionFoundWhileReading(t *testing.T) {
	// Bit rot that appears after Open is found by Next, skipped, counted
	// once, and the readings after it are delivered.
	e := newEnv(t, Config{SegmentBytes: 4 << 10}, options{})
	for i := range 30 {
		e.append(many("air", i*10, 10)...)
	}
	e.sync()
	files := segFiles(t, e.dir)
	if len(files) < 2 {
		t.Fatalf("%d segments, want several", len(files))
	}
	b, _ := os.ReadFile(files[1])
	recs := records(t, b)
	victim := recs[3]
	f, err := os.OpenFile(files[1], os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{b[victim.start+headerLen+5] ^ 0x01}, victim.start+headerLen+5)
	f.Close()
	// Both cursors first: a background commit after a passed the first
	// segment would delete it before b existed.
	ca, cb := e.cursor("a"), e.cursor("b")
	a := drain(t, ca, 64)
	bb := drain(t, cb, 7)
	if len(a) != 299 || len(bb) != 299 {
		t.Fatalf("read %d and %d readings, want 299 each", len(a), len(bb))
	}
	if st := e.l.Stats(); st.CorruptSkipped != 1 {
		t.Fatalf("corrupt_skipped = %d, want the region counted once", st.CorruptSkipped)
	}
}

func TestEmptyNewSegmentAfterPowerCut(t *testing.T) {
	// A power cut right after a segment file was created leaves it empty.
	e := newEnv(t, Config{SegmentBytes: 4 << 10}, options{})
	e.append(many("air", 0, 10)...)
	e.sync()
	c := e.cursor("c")
	rs, err := c.Next(ctxT(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	c.Ack(len(rs))
	if err := e.l.Close(); err != nil {
		t.Fatal(err)
	}
	files := segFiles(t, e.dir)
	st, _ := os.Stat(files[0])
	empty := filepath.Join(e.dir, fmtSeg(st.Size()))
	if err := os.WriteFile(empty, []byte("KLVN"), 0o640); err != nil {
		t.Fatal(err)
	}
	e.open()
	rs = []reading.Reading{rd("air", 10)}
	e.append(rs...)
	e.sync()
	if rs[0].Seq != 11 {
		t.Fatalf("seq = %d, want 11", rs[0].Seq)
	}
	if got := drain(t, e.cursor("c"), 100); !equal(values(got), span(4, 7)) {
		t.Fatalf("read %v", values(got))
	}
	if st := e.l.Stats(); st.TornTruncated != 1 {
		t.Fatalf("torn = %d", st.TornTruncated)
	}
	// The cursor passed the first segment, which goes; the cursor and the
	// seqs live on in the rewritten segment's checkpoint.
	e.reopen()
	e.sync()
	if n := len(segFiles(t, e.dir)); n != 1 {
		t.Fatalf("%d segments", n)
	}
	e.reopen()
	rs = []reading.Reading{rd("air", 11)}
	e.append(rs...)
	e.sync()
	if got := drain(t, e.cursor("c"), 100); rs[0].Seq != 12 || !equal(values(got), []float64{11}) {
		t.Fatalf("seq %d, read %v", rs[0].Seq, values(got))
	}
}

func fmtSeg(base int64) string {
	b := []byte("00000000000000000000.seg")
	for i := 19; base > 0; i-- {
		b[i] = byte('0' + base%10)
		base /= 10
	}
	return string(b)
}

// TestLostTailNeverReusesSeqs cuts 3000 bytes off the last segment, as an
// SD card that drops writes it had acknowledged or a restored backup
// would, after a clean Close and after a crash, and checks that no
// (sensor, seq) pair delivered before is given to another reading, that
// the loss is reported by what was really cut, and that the restart
// says where each sensor's seqs resume.
func TestLostTailNeverReusesSeqs(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(map[bool]string{false: "close", true: "crash"}[crash], func(t *testing.T) {
			e := newEnv(t, Config{SegmentBytes: 64 << 10}, options{})
			c := e.cursor("mqtt")
			sensors := []string{"air", "soil", "roof"}
			for i := range 200 {
				e.append(rd(sensors[i%3], float64(i)))
			}
			e.sync()
			seen := map[seqKey]float64{}
			for _, r := range drain(t, c, 64) {
				seen[seqKey{r.Sensor, r.Seq}] = r.Value
			}
			dir := e.dir
			if crash {
				// The files as a kill -9 leaves them: copied while open.
				dir = t.TempDir()
				for _, f := range append(segFiles(t, e.dir), filepath.Join(e.dir, reserveFile)) {
					b, err := os.ReadFile(f)
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o640); err != nil {
						t.Fatal(err)
					}
				}
			} else if err := e.l.Close(); err != nil {
				t.Fatal(err)
			}
			files := segFiles(t, dir)
			last := files[len(files)-1]
			st, err := os.Stat(last)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(last, st.Size()-3000); err != nil {
				t.Fatal(err)
			}
			logs := &logBuf{}
			l, err := open(dir, Config{Sync: "1h"}, nil, slog.New(slog.NewTextHandler(logs, nil)), options{})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			lost := l.Stats().LostBytes
			if !crash && (lost < 3000 || lost > 3000+200) {
				t.Errorf("lost_bytes = %d, want the 3000 cut plus the torn record they left", lost)
			}
			if !crash && !strings.Contains(logs.String(), "lost_bytes=") {
				t.Errorf("the lost tail was not reported: %s", logs)
			}
			resumed := l.Resumed()
			// Skipped is the gap from after the log's last reading of
			// each sensor to just before where it resumes.
			held := map[string]uint64{}
			rc, err := l.Cursor("check")
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range drain(t, rc, 1000) {
				held[r.Sensor] = max(held[r.Sensor], r.Seq)
			}
			skipped := l.Skipped()
			for _, s := range sensors {
				want := [2]uint64{held[s] + 1, resumed[s] - 1}
				if resumed[s] == 0 {
					want = [2]uint64{}
				}
				if skipped[s] != want {
					t.Errorf("Skipped()[%s] = %v, want %v (log holds up to %d, resumed at %d)", s, skipped[s], want, held[s], resumed[s])
				}
			}
			for i := range 300 {
				rs := []reading.Reading{rd(sensors[i%3], float64(1000+i))}
				if err := l.Append(rs); err != nil {
					t.Fatal(err)
				}
				k := seqKey{rs[0].Sensor, rs[0].Seq}
				if v, ok := seen[k]; ok {
					t.Fatalf("%s seq %d given to value %v, already delivered with value %v", k.sensor, k.seq, rs[0].Value, v)
				}
				if i < 3 && crash && rs[0].Seq != resumed[k.sensor] {
					t.Errorf("%s resumed at seq %d, Resumed says %d", k.sensor, rs[0].Seq, resumed[k.sensor])
				}
			}
		})
	}
}

// TestReaderAcrossAWideHole: the record after a hole of zeros wider than
// the reader's window (a sparse segment, hot.go) comes back whole, not as
// the bytes the window moved to while the hole was checked.
func TestReaderAcrossAWideHole(t *testing.T) {
	for _, hole := range []int{1, readBufSize - 100, readBufSize, 3 * readBufSize} {
		a, b := rd("air", 1), rd("air", 2)
		a.Seq, b.Seq = 1, 2
		file := append([]byte(segMagic), appendReading(nil, &a, false)...)
		file = append(file, make([]byte, hole)...)
		file = append(file, appendReading(nil, &b, false)...)
		var r segReader
		r.reset(bytes.NewReader(file), magicLen, int64(len(file)))
		var got []uint64
		for {
			rec, skipped, ok, err := r.next()
			if err != nil || !ok {
				if err != nil || skipped != 0 {
					t.Fatalf("hole of %d: err %v, %d bytes skipped at the end", hole, err, skipped)
				}
				break
			}
			if skipped != 0 {
				t.Errorf("hole of %d: counted as %d corrupt bytes", hole, skipped)
			}
			k, err := decodeReadingKey(rec.payload)
			if err != nil {
				t.Fatalf("hole of %d: record at %d: %v", hole, rec.start, err)
			}
			got = append(got, k.seq)
		}
		if len(got) != 2 || got[0] != 1 || got[1] != 2 {
			t.Errorf("hole of %d: read seqs %v, want [1 2]", hole, got)
		}
	}
}
