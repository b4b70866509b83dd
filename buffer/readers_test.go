package buffer

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// TestNoReadersWritesNothing: with no output (SetReaders with no names),
// readings past their sync interval are not copied to disk, sealed
// segments leave the tmpfs at the next commit, and the buffer reports
// nothing pending.
func TestNoReadersWritesNothing(t *testing.T) {
	e := newHotEnv(t, Config{Sync: "20ms", SegmentBytes: 4 << 10})
	if err := e.l.SetReaders(); err != nil {
		t.Fatal(err)
	}
	for i := range 30 { // about 3 segments
		e.append(many("air", i*10, 10)...)
	}
	testenv.WaitFor(t, "the sealed segments deleted", func() bool { return e.l.Stats().Segments == 1 })
	e.sync()
	st := e.l.Stats()
	if st.BytesWritten != 0 || st.OnDisk != 0 || diskBytes(t, e.dir) != 0 {
		t.Fatalf("bytes written %d, on disk %d, disk files %d bytes: want nothing on disk without a reader",
			st.BytesWritten, st.OnDisk, diskBytes(t, e.dir))
	}
	if m, _ := filepath.Glob(filepath.Join(e.l.hot, "*"+segExt)); len(m) != 1 {
		t.Fatalf("%d segment files in the tmpfs, want the active one only", len(m))
	}
	e.restartGoesOnAt(301)
}

// TestRemovedOutputCursorDropped: after a restart with one output removed,
// its cursor is dropped with one log line naming it and its unsent
// readings, the remaining output's readings no longer go to disk, and the
// cursor stays dropped at the next restart.
func TestRemovedOutputCursorDropped(t *testing.T) {
	e := newHotEnv(t, Config{Sync: "20ms", SegmentBytes: 4 << 10})
	mqtt, kafka := e.cursor("mqtt"), e.cursor("kafka")
	e.append(many("air", 0, 40)...)
	drain(t, mqtt, 100)
	drain(t, kafka, 100)
	e.append(many("air", 40, 25)...)
	drain(t, mqtt, 100) // kafka is behind by 25
	_ = kafka
	e.reopen()
	if err := e.l.SetReaders("mqtt"); err != nil {
		t.Fatal(err)
	}
	line := `msg="buffer: dropped the cursor of an output no longer configured; its unsent readings will not be sent" cursor=kafka unsent=25`
	if n := e.logs.count(line); n != 1 {
		t.Fatalf("log has %d lines %q; log:\n%s", n, line, e.logs)
	}
	written := e.l.Stats().BytesWritten
	mqtt = e.cursor("mqtt")
	for i := range 30 { // past a few rollovers, each delivered on time
		e.append(many("air", 65+i*10, 10)...)
		drain(t, mqtt, 100)
	}
	e.sync()
	e.sync() // deletes what every cursor passed
	st := e.l.Stats()
	if len(st.Cursors) != 1 || st.Cursors[0].Name != "mqtt" || st.OnDisk != 0 {
		t.Fatalf("cursors %+v, on disk %d: want mqtt alone and nothing pending", st.Cursors, st.OnDisk)
	}
	if st.BytesWritten != written {
		t.Fatalf("%d bytes written after the drop: the remaining output's readings went to disk", st.BytesWritten-written)
	}
	e.reopen()
	if err := e.l.SetReaders("mqtt"); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(e.logs.String(), "cursor=kafka"); n != 1 {
		t.Fatalf("kafka's cursor came back after a restart (%d log lines); log:\n%s", n, e.logs)
	}
	if got := drain(t, e.cursor("mqtt"), 1000); len(got) != 0 {
		t.Fatalf("after a clean restart mqtt read %d readings again", len(got))
	}
}

// TestSetReadersCreatesCursor: a configured output new to the log gets its
// cursor at SetReaders, so it reads what was appended before Cursor.
func TestSetReadersCreatesCursor(t *testing.T) {
	e := newHotEnv(t, Config{Sync: "20ms"})
	if err := e.l.SetReaders("mqtt"); err != nil {
		t.Fatal(err)
	}
	e.append(many("air", 0, 5)...)
	if got := drain(t, e.cursor("mqtt"), 100); !equal(values(got), span(0, 5)) {
		t.Fatalf("read %v", values(got))
	}
	if err := e.l.SetReaders("bad name"); err == nil {
		t.Fatal("SetReaders took a bad name")
	}
}

// TestNoReadersNoHotWritesNothing: without a hot tail too, a log no one
// reads writes nothing per reading and fsyncs nothing, and seqs go on
// across a restart.
func TestNoReadersNoHotWritesNothing(t *testing.T) {
	e := newEnv(t, Config{Sync: "20ms"}, options{})
	if err := e.l.SetReaders(); err != nil {
		t.Fatal(err)
	}
	e.append(rd("air", 0)) // the sensor's seq reservation: two fsyncs, once per 65,536 seqs
	e.sync()
	before := e.l.Stats()
	e.append(many("air", 1, 9)...)
	for i := range 19 {
		e.append(many("air", 10+i*10, 10)...)
	}
	e.sync()
	st := e.l.Stats()
	if st.BytesWritten != before.BytesWritten || st.Fsyncs != before.Fsyncs || st.Appended != 200 || st.OnDisk != 0 {
		t.Fatalf("bytes written %d, fsyncs %d, appended %d, on disk %d: want nothing written for 200 readings",
			st.BytesWritten-before.BytesWritten, st.Fsyncs-before.Fsyncs, st.Appended, st.OnDisk)
	}
	e.restartGoesOnAt(201)
}

// TestDroppedCursorStaysDropped: the segment that still records a dropped
// cursor (its header's checkpoint) does not bring it back at the next
// Open, even without SetReaders; hot tail or not.
func TestDroppedCursorStaysDropped(t *testing.T) {
	for _, hot := range []bool{false, true} {
		t.Run(map[bool]string{false: "disk", true: "hot"}[hot], func(t *testing.T) {
			cfg := Config{}
			if hot {
				cfg.HotDir = t.TempDir()
			}
			e := newEnv(t, cfg, options{})
			e.cursor("mqtt")
			e.cursor("kafka")
			e.append(many("air", 0, 5)...)
			e.reopen()
			if err := e.l.SetReaders("mqtt"); err != nil {
				t.Fatal(err)
			}
			e.reopen()
			if cs := e.l.Stats().Cursors; len(cs) != 1 || cs[0].Name != "mqtt" {
				t.Fatalf("cursors after a restart: %+v, want mqtt alone", cs)
			}
		})
	}
}
