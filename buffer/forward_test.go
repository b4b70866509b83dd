package buffer

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
)

// fwd makes a reading of another agent's sensor with its own seq.
func fwd(agent, sensor string, seq uint64, v float64) reading.Reading {
	r := rd(sensor, v)
	r.Agent, r.Seq = agent, seq
	return r
}

func (e *env) forward(rs ...reading.Reading) {
	e.t.Helper()
	if err := e.l.AppendForwarded(rs); err != nil {
		e.t.Fatalf("append forwarded: %v", err)
	}
}

type identity struct {
	agent, sensor string
	seq           uint64
}

func identities(rs []reading.Reading) []identity {
	v := make([]identity, len(rs))
	for i, r := range rs {
		v[i] = identity{r.Agent, r.Sensor, r.Seq}
	}
	return v
}

// TestAppendForwardedKeepsIdentity: a forwarded reading keeps its agent,
// sensor and seq, is read in the order appended with local readings, and
// never moves the local sensor of the same name, neither now nor after a
// clean restart or a crash.
func TestAppendForwardedKeepsIdentity(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(map[bool]string{false: "close", true: "crash"}[crash], func(t *testing.T) {
			e := newEnv(t, Config{}, options{})
			c := e.cursor("mqtt")
			e.append(rd("air", 1))
			const big = 1 << 40 // far above any seq the log hands out itself
			in := []reading.Reading{fwd("gw-1", "air", big, 2), fwd("gw-1", "soil", 7, 3)}
			e.forward(in...)
			if in[0].Seq != big || in[1].Seq != 7 {
				t.Fatalf("AppendForwarded changed the seqs to %v", seqs(in))
			}
			local := []reading.Reading{rd("air", 4)}
			e.append(local...)
			if local[0].Seq != 2 {
				t.Fatalf("local air after forwarded gw-1/air %d: seq %d, want 2", uint64(big), local[0].Seq)
			}
			e.sync()
			want := []identity{{"greenhouse-1", "air", 1}, {"gw-1", "air", big}, {"gw-1", "soil", 7}, {"greenhouse-1", "air", 2}}
			if got := identities(drain(t, c, 10)); !equal(got, want) {
				t.Fatalf("read %v, want %v", got, want)
			}
			st := e.l.Stats()
			if st.Appended != 4 || st.Forwarded != 2 || st.Reservations != 2 {
				t.Fatalf("appended %d, forwarded %d, reservations %d; want 4, 2, 2 (at Open, then for air)", st.Appended, st.Forwarded, st.Reservations)
			}
			if crash {
				crashCopy(t, e)
				e.open()
			} else {
				e.reopen()
			}
			if n := e.l.LastSeq("soil"); n != 0 {
				t.Errorf("LastSeq(soil) = %d after reopen: a forwarded seq became the log's own", n)
			}
			if _, ok := e.l.Resumed()["soil"]; ok {
				t.Errorf("Resumed() = %v announces the forwarded sensor", e.l.Resumed())
			}
			res, err := readReservation(e.dir)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := res.seqs["soil"]; ok || res.seqs["air"] >= big {
				t.Errorf("SEQ holds %v: forwarded seqs reached the reservation", res.seqs)
			}
			local = []reading.Reading{rd("air", 5)}
			e.append(local...)
			wantSeq := uint64(3)
			if crash {
				wantSeq = e.l.Resumed()["air"]
			}
			if local[0].Seq != wantSeq || wantSeq >= big {
				t.Fatalf("local air after reopen: seq %d, want %d", local[0].Seq, wantSeq)
			}
		})
	}
}

// TestAppendForwardedRefusesReadingsWithoutIdentity: a batch with a reading
// that lacks its agent, sensor or seq is refused whole.
func TestAppendForwardedRefusesReadingsWithoutIdentity(t *testing.T) {
	e := newEnv(t, Config{}, options{})
	for _, bad := range []reading.Reading{fwd("", "air", 1, 1), fwd("gw-1", "", 1, 1), fwd("gw-1", "air", 0, 1)} {
		err := e.l.AppendForwarded([]reading.Reading{fwd("gw-1", "air", 5, 0), bad})
		if !errors.Is(err, ErrNoIdentity) {
			t.Fatalf("%+v: err = %v, want ErrNoIdentity", bad, err)
		}
	}
	if st := e.l.Stats(); st.Appended != 0 || st.Forwarded != 0 {
		t.Fatalf("stats = %+v after refused batches", st)
	}
	e.l.Close()
	if err := e.l.AppendForwarded([]reading.Reading{fwd("gw-1", "air", 5, 0)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestAppendForwardedTornTail: with forwarded readings at the end of the
// log, a tail torn at any offset leaves the whole ones intact and the
// log's own seqs those of its local readings.
func TestAppendForwardedTornTail(t *testing.T) {
	e := newEnv(t, Config{}, options{})
	for i := range 3 {
		e.append(rd("air", float64(i)))
	}
	for i := range 3 {
		e.forward(fwd("gw-1", "air", 1<<40+uint64(i), float64(10+i)))
	}
	if err := e.l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(segFiles(t, e.dir)[0])
	if err != nil {
		t.Fatal(err)
	}
	recs := records(t, b)
	for cut := recs[len(recs)-3].start; cut <= int64(len(b)); cut++ {
		whole := 0
		for _, r := range recs[4:] { // after the checkpoint and the 3 local readings
			if r.end <= cut {
				whole++
			}
		}
		_, got, l := reopenWith(t, b[:cut])
		if len(got) != 3+whole || got[len(got)-1].Seq != map[bool]uint64{true: 3, false: 1<<40 + uint64(whole-1)}[whole == 0] {
			t.Fatalf("cut at %d: read %v", cut, identities(got))
		}
		rs := []reading.Reading{rd("air", 100)}
		if err := l.Append(rs); err != nil || rs[0].Seq != 4 {
			t.Fatalf("cut at %d: local append after recovery: seq %d, %v; want 4", cut, rs[0].Seq, err)
		}
	}
}

// TestAppendForwardedBudget: max_bytes and max_age drop forwarded readings
// as they drop local ones, counted, and what is kept is the newest, in
// order, with its own seqs.
func TestAppendForwardedBudget(t *testing.T) {
	clk := newClock()
	e := newEnv(t, Config{MaxBytes: 64 << 10, SegmentBytes: 4 << 10, MaxAge: 24 * time.Hour}, options{})
	e.now = clk.Now
	e.reopen()
	c := e.cursor("mqtt")
	const n = 4000
	for i := range n / 10 {
		rs := make([]reading.Reading, 10)
		for j := range rs {
			rs[j] = fwd("gw-1", "air", uint64(1+i*10+j), float64(i*10+j))
			rs[j].Time = clk.Now()
		}
		e.forward(rs...)
		if st := e.l.Stats(); st.Bytes > 64<<10 {
			t.Fatalf("after %d readings the log holds %d bytes, over the budget", (i+1)*10, st.Bytes)
		}
	}
	e.sync()
	st := e.l.Stats()
	if st.DroppedFull == 0 || st.Cursors[0].Dropped != st.DroppedFull {
		t.Fatalf("dropped: log %d, cursor %d", st.DroppedFull, st.Cursors[0].Dropped)
	}
	clk.Add(25 * time.Hour)
	e.sync() // rolls the aged active segment over and drops it
	fresh := fwd("gw-1", "air", n+1, n)
	fresh.Time = clk.Now()
	e.forward(fresh)
	e.sync()
	st = e.l.Stats()
	if st.DroppedAge == 0 || st.DroppedAge+st.DroppedFull != n {
		t.Fatalf("dropped by age %d, by size %d; want %d in all", st.DroppedAge, st.DroppedFull, n)
	}
	if got := drain(t, c, 100); !equal(identities(got), []identity{{"gw-1", "air", n + 1}}) {
		t.Fatalf("read %v, want only the fresh reading", identities(got))
	}
	if e.l.LastSeq("air") != 0 {
		t.Fatalf("LastSeq(air) = %d: forwarded seqs became the log's own", e.l.LastSeq("air"))
	}
}

// TestAppendForwardedHot: with the hot tail, forwarded readings are read at
// once, survive a kill -9, and keep their identity.
func TestAppendForwardedHot(t *testing.T) {
	e := newHotEnv(t, Config{})
	c := e.cursor("mqtt")
	e.forward(fwd("gw-1", "air", 41, 1), fwd("gw-2", "air", 9, 2))
	if got := identities(drain(t, c, 10)); !equal(got, []identity{{"gw-1", "air", 41}, {"gw-2", "air", 9}}) {
		t.Fatalf("read %v before any commit", got)
	}
	e.forward(fwd("gw-1", "air", 42, 3))
	crashCopy(t, e)
	e.open()
	if got := identities(drain(t, e.cursor("mqtt"), 10)); len(got) == 0 || got[len(got)-1] != (identity{"gw-1", "air", 42}) {
		t.Fatalf("after a kill -9 read %v, want gw-1/air 42 last", got)
	}
	if n := e.l.LastSeq("air"); n != 0 {
		t.Fatalf("LastSeq(air) = %d", n)
	}
}
