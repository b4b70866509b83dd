package agent

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
)

// fakeClock is a Pi before and after NTP: its wall clock and sync state
// are set by the test; the monotonic clock runs on regardless.
type fakeClock struct {
	mu     sync.Mutex
	synced bool
	wall   time.Time
	mono   int64
}

func (f *fakeClock) clock() *Clock {
	return &Clock{
		Synced:   func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.synced },
		Boottime: func() int64 { f.mu.Lock(); defer f.mu.Unlock(); return f.mono },
		Now:      func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.wall },
		BootID:   7,
	}
}

func (f *fakeClock) set(synced bool, wall time.Time, mono time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.synced, f.wall, f.mono = synced, wall, int64(mono)
}

// TestUnsyncedClock: readings taken before the clock is synchronised are
// marked "unsynced" and stored with their place on the monotonic clock;
// once the clock is right, the ones still waiting in the buffer are sent
// with their true time, marked "corrected". A reading of an earlier boot
// cannot be placed and stays "unsynced".
func TestUnsyncedClock(t *testing.T) {
	cfg, err := Parse("test.yaml", []byte(fmt.Sprintf(`
agent: { id: gh, data_dir: %s }
sensors: [ { id: air, type: sim, interval: 1s } ]
mqtt: { url: "tcp://127.0.0.1:1" }
http: { listen: "" }
`, t.TempDir())), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeClock{}
	clk := f.clock()
	a, err := New(cfg, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer a.store.Close()

	// Boot: the clock says 1 January 2000 (no RTC), 100 s after the boot.
	boot := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	f.set(false, boot, 100*time.Second)
	a.accept([]reading.Reading{{Sensor: "air", Quantity: reading.Temperature, Value: 20, Raw: 20, Time: boot}})
	f.set(false, boot.Add(time.Second), 101*time.Second)
	a.accept([]reading.Reading{{Sensor: "air", Quantity: reading.Temperature, Value: 21, Raw: 21, Time: boot.Add(time.Second)}})
	if a.Status().ClockSynced {
		t.Error("status says the clock is synchronised")
	}
	// A reading left from an earlier boot.
	old := []reading.Reading{{Sensor: "air", Quantity: reading.Temperature, Value: 19, Raw: 19, Time: boot}}
	old[0].Agent = "gh"
	f.set(false, boot, 99*time.Second)
	clk.mark(old)
	old[0].Boot = 6
	if err := a.store.Append(old); err != nil {
		t.Fatal(err)
	}

	// NTP: the true time is 12:00 on 26 November 2026, 160 s after the boot.
	ntp := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	f.set(true, ntp, 160*time.Second)
	a.accept([]reading.Reading{{Sensor: "air", Quantity: reading.Temperature, Value: 22, Raw: 22, Time: ntp}})

	if err := a.store.Flush(); err != nil {
		t.Fatal(err)
	}
	src, err := a.store.Source("mqtt")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs, err := correctingSource{src, clk}.Next(ctx, 10)
	if err != nil || len(rs) != 4 {
		t.Fatalf("Next: %d readings, %v", len(rs), err)
	}
	want := []struct {
		t     time.Time
		clock string
	}{
		{ntp.Add(-60 * time.Second), reading.ClockCorrected}, // taken 60 s before on the monotonic clock
		{ntp.Add(-59 * time.Second), reading.ClockCorrected},
		{boot, reading.ClockUnsynced}, // an earlier boot: cannot be placed
		{ntp, ""},
	}
	for i, w := range want {
		if !rs[i].Time.Equal(w.t) || rs[i].Clock != w.clock {
			t.Errorf("reading %d: %v %q, want %v %q", i, rs[i].Time, rs[i].Clock, w.t, w.clock)
		}
	}
	if got := string(rs[0].AppendJSON(nil)); !strings.HasSuffix(got, `"ts":"2026-11-26T11:59:00.000Z","seq":1,"clock":"corrected"}`) {
		t.Errorf("published as %s", got)
	}
}

// TestClockConfig: agent.clock is auto (the default) or trust; trust
// never marks readings.
func TestClockConfig(t *testing.T) {
	dir := t.TempDir()
	_, err := Parse("test.yaml", []byte("agent: { clock: maybe, data_dir: "+dir+" }\nsensors: [ { id: a, type: sim } ]\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "test.yaml:1: agent.clock: want auto or trust") {
		t.Errorf("agent.clock: maybe: %v", err)
	}
	cfg, err := Parse("test.yaml", []byte("agent: { clock: trust, data_dir: "+dir+" }\nsensors: [ { id: a, type: sim } ]\nhttp: { listen: \"\" }\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.store.Close()
	rs := []reading.Reading{{Sensor: "a", Time: time.Unix(0, 0)}}
	a.clock.mark(rs)
	if rs[0].Clock != "" {
		t.Errorf("agent.clock: trust marked a reading %q", rs[0].Clock)
	}
}

// TestBoottimeFrom: CLOCK_BOOTTIME is read at most once a minute and
// extrapolated with the monotonic clock in between.
func TestBoottimeFrom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reads := 0
		start := time.Now()
		bt := boottimeFrom(func() int64 { reads++; return int64(time.Since(start)) + 5e9 })
		if v := bt(); v != 5e9 || reads != 1 {
			t.Fatalf("first: %d after %d reads", v, reads)
		}
		time.Sleep(59400 * time.Millisecond)
		if v := bt(); v != 64.4e9 || reads != 1 {
			t.Errorf("within the minute: %d after %d reads, want 64.4e9 and no read", v, reads)
		}
		time.Sleep(700 * time.Millisecond)
		if v := bt(); v != 65.1e9 || reads != 2 {
			t.Errorf("after the minute: %d after %d reads, want 65.1e9 read anew", v, reads)
		}
	})
}

// TestSyncedFrom: the kernel is asked once a minute while the clock is
// synchronised, once a second while it is not.
func TestSyncedFrom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		checks, kernel := 0, false
		synced := syncedFrom(func(time.Time) bool { checks++; return kernel })
		if synced() || checks != 1 {
			t.Fatalf("first: synced %v after %d checks, want false after 1", synced(), checks)
		}
		kernel = true
		time.Sleep(500 * time.Millisecond)
		if synced() || checks != 1 {
			t.Errorf("within the second: %d checks, want the cached false", checks)
		}
		time.Sleep(500 * time.Millisecond)
		if !synced() || checks != 2 {
			t.Errorf("after a second unsynced: %d checks, want the kernel asked again", checks)
		}
		kernel = false
		time.Sleep(59 * time.Second)
		if !synced() || checks != 2 {
			t.Errorf("within the minute: %d checks, want the cached true", checks)
		}
		time.Sleep(time.Second)
		if synced() || checks != 3 {
			t.Errorf("after a minute synced: %d checks, want the kernel asked again", checks)
		}
	})
}
