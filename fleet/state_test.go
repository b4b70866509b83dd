package fleet

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"log/slog"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

// sendSeqs hands f the JSON readings of gw-1/air with the given seqs.
func sendSeqs(t *testing.T, f *Fleet, c *clock, seqs ...uint64) {
	t.Helper()
	for _, q := range seqs {
		if err := f.Handle("kelvin/gw-1/air", payload(reading.FormatJSON, "gw-1", "air", q, 20, c.now())); err != nil {
			t.Fatal(err)
		}
	}
}

func checkpoint(t *testing.T, f *Fleet) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
}

func counts(t *testing.T, f *Fleet) Counts {
	t.Helper()
	gi, _, ok := f.Gateway("gw-1", false)
	if !ok {
		t.Fatal("gw-1 unknown")
	}
	return gi.Counts
}

// TestStateSurvivesRestart: a restarted fleet keeps the lost and
// duplicate counts, a gap open at the restart keeps its age (the time the
// fleet was down does not count towards loss_after), and a gap spanning
// the restart is seen and counted.
func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	withState := func(c *Config) { c.StateDir, c.LossAfter = dir, time.Minute }
	a, ca := newTestFleet(t, withState)
	a.Handle("kelvin/gw-1/status", []byte(`{"state":"online","page":"http://gw-1:8080/"}`))
	sendSeqs(t, a, ca, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 5, 12) // 5 again; 11 missing
	ca.advance(2 * time.Minute)
	a.Expire()             // 11 lost
	sendSeqs(t, a, ca, 14) // 13 missing
	ca.advance(30 * time.Second)
	before := counts(t, a)
	if before != (Counts{Received: 12, Duplicates: 1, Pending: 1, Lost: 1}) {
		t.Fatalf("before the restart: %+v", before)
	}
	checkpoint(t, a)

	b, cb := newTestFleet(t, withState)
	if got := counts(t, b); got != before {
		t.Fatalf("after the restart: %+v, want %+v", got, before)
	}
	if gi, _, _ := b.Gateway("gw-1", false); gi.Page != "http://gw-1:8080/" || gi.LastSeen.IsZero() {
		t.Errorf("gateway after the restart: %+v, want its page and last seen", gi)
	}
	b.Expire() // 13 has been missing 30 s of the fleet's time: not lost yet
	if got := counts(t, b); got.Lost != 1 || got.Pending != 1 {
		t.Fatalf("right after the restart: %+v, want 13 still pending", got)
	}
	sendSeqs(t, b, cb, 14, 20) // 14 again; 15..19 missing across the restart
	cb.advance(31 * time.Second)
	b.Expire() // 13 lost
	if got := counts(t, b); got != (Counts{Received: 13, Duplicates: 2, Pending: 5, Lost: 2}) {
		t.Fatalf("after the gap across the restart: %+v", got)
	}
	cb.advance(time.Minute)
	b.Expire()
	if got := counts(t, b); got.Lost != 7 || got.Pending != 0 {
		t.Fatalf("at the end: %+v, want 7 lost (11, 13, 15..19)", got)
	}
}

// TestStateUnreadable: a state file that does not read back whole
// (truncated, corrupt, not one) is logged and the fleet starts empty,
// never fails; one from a fleet with more room is cut to this one's
// bounds.
func TestStateUnreadable(t *testing.T) {
	good := t.TempDir()
	a, ca := newTestFleet(t, func(c *Config) { c.StateDir = good })
	sendSeqs(t, a, ca, 1, 3)
	for _, gw := range []string{"gw-2", "gw-3"} {
		a.Handle("kelvin/"+gw+"/air", payload(reading.FormatJSON, gw, "air", 1, 20, ca.now()))
	}
	checkpoint(t, a)
	valid, err := os.ReadFile(filepath.Join(good, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), valid...)
	flipped[len(flipped)/2] ^= 0x40
	for name, content := range map[string][]byte{
		"truncated":    valid[:len(valid)-5],
		"cut in half":  valid[:len(valid)/2],
		"corrupt":      flipped,
		"empty":        {},
		"another file": []byte("not a fleet state\n"),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, stateFile), content, 0o640); err != nil {
				t.Fatal(err)
			}
			var logs testenv.SyncBuffer
			f, _ := newTestFleetLog(t, slog.New(slog.NewTextHandler(&logs, nil)), func(c *Config) { c.StateDir = dir })
			if n := f.Summary("", 0, 10).Total; n != 0 {
				t.Errorf("%d gateways from an unreadable file", n)
			}
			if !strings.Contains(logs.String(), "fleet state unreadable: starting with empty counts") {
				t.Errorf("no log line saying so:\n%s", logs.String())
			}
			t.Logf("%s", strings.TrimSpace(logs.String()))
		})
	}
	// Any byte changed and the checksum made to match: the decoder stays
	// within the file and the bounds, and never panics.
	for i := len(stateMagic); i < len(valid)-4; i++ {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			b := append([]byte(nil), valid...)
			b[i] ^= x
			body := b[:len(b)-4]
			binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.ChecksumIEEE(body))
			f, _ := newTestFleet(t, nil)
			f.cfg.MaxGateways, f.cfg.MaxSensors = 2, 1
			if err := f.decodeState(b); err == nil && len(f.gateways) > 2 {
				t.Fatalf("byte %d ^ %#x: %d gateways loaded, over the bound", i, x, len(f.gateways))
			}
		}
	}
	small, _ := newTestFleet(t, func(c *Config) { c.StateDir, c.MaxGateways = good, 2 })
	if n := small.Summary("", 0, 10).Total; n != 2 {
		t.Errorf("a fleet of max_gateways 2 loaded %d gateways", n)
	}
}

// TestStateSavedOnlyWhenChanged: an idle fleet does not rewrite the file.
func TestStateSavedOnlyWhenChanged(t *testing.T) {
	dir := t.TempDir()
	f, c := newTestFleet(t, func(cfg *Config) { cfg.StateDir = dir })
	sendSeqs(t, f, c, 1)
	checkpoint(t, f)
	path := filepath.Join(dir, stateFile)
	old := time.Unix(1_000_000_000, 0)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	checkpoint(t, f)
	if st, err := os.Stat(path); err != nil || !st.ModTime().Equal(old) {
		t.Fatalf("rewritten without a change: %v, %v", st.ModTime(), err)
	}
	sendSeqs(t, f, c, 2)
	checkpoint(t, f)
	if st, _ := os.Stat(path); st.ModTime().Equal(old) {
		t.Fatal("not rewritten after a change")
	}
}

// BenchmarkStateEncode: the snapshot the fleet takes, under its lock,
// once a minute: 1,000 gateways × 10 sensors, a gap each.
func BenchmarkStateEncode(b *testing.B) {
	f, c := newTestFleet(b, nil)
	for g := range 1000 {
		for s := range 10 {
			a, id := fmt.Sprintf("greenhouse-%04d", g), fmt.Sprintf("28-0316a2b8%04x", s)
			for _, q := range []uint64{1_000_000, 1_000_001, 1_000_005} {
				f.Handle("kelvin/"+a+"/"+id, payload(reading.FormatJSON, a, id, q, 1, c.now()))
			}
		}
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		f.mu.Lock()
		buf = f.appendStateLocked(buf[:0])
		f.mu.Unlock()
	}
	b.ReportMetric(float64(len(buf)), "file_bytes")
}
