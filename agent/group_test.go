package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kelvin-gw/kelvin/httpui"
	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
	"github.com/kelvin-gw/kelvin/sensors"
)

// bulkFake is a bus that reads every device in one call; one device fails.
type bulkFake struct {
	reads atomic.Int32
	gate  chan struct{}
}

func (b *bulkFake) Read(ctx context.Context) ([]reading.Reading, error) {
	b.reads.Add(1)
	if b.gate != nil {
		<-b.gate
	}
	rs := []reading.Reading{
		{Sensor: "28-000000000001", Quantity: reading.Temperature, Raw: 21.5, Value: 21.5},
		{Sensor: "28-000000000002", Quantity: reading.Temperature, Raw: -10.125, Value: -10.125},
	}
	return rs, errors.Join(fmt.Errorf("ds2482: 28-000000000003: %w", sensors.ErrCRC))
}

func TestGroupSharesOneReadPerRound(t *testing.T) {
	b := &bulkFake{gate: make(chan struct{})}
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	g := &group{open: func() (sensors.Sensor, error) { return b, nil }, interval: 10 * time.Second, now: clock}

	devices := []string{"28-000000000001", "28-000000000002", "28-000000000003"}
	type result struct {
		rs  []reading.Reading
		err error
	}
	results := make([]chan result, len(devices))
	for i, d := range devices {
		results[i] = make(chan result, 1)
		go func() {
			rs, err := (&member{g: g, device: d}).Read(context.Background())
			results[i] <- result{rs, err}
		}()
	}
	testenv.WaitForWithin(t, 5*time.Second, "the bulk read to start", func() bool { return b.reads.Load() == 1 })
	close(b.gate)
	r0, r1, r2 := <-results[0], <-results[1], <-results[2]
	if r0.err != nil || len(r0.rs) != 1 || r0.rs[0].Raw != 21.5 || r0.rs[0].Sensor != "" {
		t.Errorf("device 1: %+v", r0)
	}
	if r1.err != nil || len(r1.rs) != 1 || r1.rs[0].Raw != -10.125 {
		t.Errorf("device 2: %+v", r1)
	}
	if !errors.Is(r2.err, sensors.ErrCRC) || len(r2.rs) != 0 {
		t.Errorf("device 3: %+v, want a CRC error and no reading", r2)
	}
	// Within the same round a member gets the cached result...
	if _, err := (&member{g: g, device: devices[0]}).Read(context.Background()); err != nil || b.reads.Load() != 1 {
		t.Errorf("same round: err %v, %d bus reads", err, b.reads.Load())
	}
	// ...and the next round reads the bus again.
	mu.Lock()
	now = now.Add(10 * time.Second)
	mu.Unlock()
	if _, err := (&member{g: g, device: devices[1]}).Read(context.Background()); err != nil || b.reads.Load() != 2 {
		t.Errorf("next round: err %v, %d bus reads", err, b.reads.Load())
	}
}

// TestKernelSensorsShareOneBulkReader: every kernel DS18B20 goes through
// one W1Bulk whatever its interval (a bulk conversion converts the whole
// bus, so no device may be read on its own meanwhile), paced by the
// shortest interval; a lone kernel sensor too, so it is told the same way
// when its bus cannot convert in bulk.
func TestKernelSensorsShareOneBulkReader(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sensors string
		grouped int
	}{
		{"three", `
  - { id: a, type: ds18b20, address: 28-000000000191, interval: 1s }
  - { id: b, type: ds18b20, address: 28-0000000bad00, interval: 1s }
  - { id: c, type: ds18b20, address: 28-000000000550, interval: 5s }
  - { id: s, type: sim, interval: 1s }`, 3},
		{"alone", `
  - { id: a, type: ds18b20, address: 28-000000000191, interval: 1s }
  - { id: s, type: sim, interval: 1s }`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("test.yaml", []byte(fmt.Sprintf("agent: { id: g, data_dir: %s }\nonewire: { sysfs: testdata/w1 }\nhttp: { listen: \"\" }\nsensors:%s\n", t.TempDir(), tc.sensors)), nil)
			if err != nil {
				t.Fatal(err)
			}
			a, err := New(cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer a.store.Close()
			var groups []*group
			for _, r := range a.runners {
				s, err := r.open()
				if err != nil {
					t.Fatalf("%s: open: %v", r.cfg.ID, err)
				}
				if m, ok := s.(*member); ok {
					groups = append(groups, m.g)
				}
			}
			if len(groups) != tc.grouped {
				t.Fatalf("%d sensors in a group, want %d", len(groups), tc.grouped)
			}
			// The members with the group's interval are read by the
			// first one's loop; c (5s) keeps a loop of its own.
			var led []string
			for _, f := range a.runners[0].followers {
				led = append(led, f.cfg.ID)
			}
			if want := map[string]string{"three": "b", "alone": ""}[tc.name]; strings.Join(led, ",") != want {
				t.Errorf("a leads %v, want [%s]", led, want)
			}
			for _, g := range groups {
				if g != groups[0] {
					t.Fatal("kernel sensors in different groups")
				}
				if g.interval != time.Second {
					t.Errorf("group interval %v, want the shortest, 1s", g.interval)
				}
			}
			if len(groups) > 0 {
				rs, _ := groups[0].read(context.Background())
				if len(rs) != 1 || rs[0].Sensor != "28-000000000191" || rs[0].Raw != 25.0625 {
					t.Errorf("bulk read = %+v, want 28-000000000191 at 25.0625 °C (the datasheet's example)", rs)
				}
			}
		})
	}
}

func TestPageURL(t *testing.T) {
	host, _ := os.Hostname()
	for listen, want := range map[string]string{
		":8080":          "http://" + host + ":8080/",
		"0.0.0.0:80":     "http://" + host + ":80/",
		"192.0.2.7:8080": "http://192.0.2.7:8080/",
		"[::]:8080":      "http://" + host + ":8080/",
		"":               "",
	} {
		if got := pageURL(httpui.Config{Listen: listen}); got != want {
			t.Errorf("pageURL(%q) = %q, want %q", listen, got, want)
		}
	}
	if got := pageURL(httpui.Config{Listen: "pi.lan:8443", TLS: &httpui.TLSConfig{}}); got != "https://pi.lan:8443/" {
		t.Errorf("with TLS: %q", got)
	}
}

// hangingBus is a bulk read that lasts until its context is done.
type hangingBus struct {
	started, ended atomic.Bool
}

func (h *hangingBus) Read(ctx context.Context) ([]reading.Reading, error) {
	h.started.Store(true)
	<-ctx.Done()
	h.ended.Store(true)
	return nil, ctx.Err()
}

// TestGroupReadEndsWithTheAgent: a bulk read in flight is cancelled by the
// agent's context, not left to run out its own timeout (an hour here), and
// wait returns only once it ended, so that the bus can then be closed.
func TestGroupReadEndsWithTheAgent(t *testing.T) {
	h := &hangingBus{}
	g := &group{open: func() (sensors.Sensor, error) { return h, nil }, interval: time.Hour, now: time.Now}
	agentCtx, stopAgent := context.WithCancel(context.Background())
	defer stopAgent()
	g.start(agentCtx)
	memberCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go (&member{g: g, device: "28-000000000001"}).Read(memberCtx)
	testenv.WaitFor(t, "the bulk read to start", h.started.Load)

	stopAgent()
	waited := make(chan struct{})
	go func() { g.wait(); close(waited) }()
	testenv.WaitFor(t, "wait to return after the agent stopped", func() bool {
		select {
		case <-waited:
			return true
		default:
			return false
		}
	})
	if !h.ended.Load() {
		t.Fatal("wait returned while the bulk read was still in flight")
	}
}

// TestGroupMemberReadTimesOut: a member's read has no timer of its own; the
// group's read gives up after the runner's read timeout (one interval, at
// least 2 s) and the member's runner says so, as for any other sensor.
func TestGroupMemberReadTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &hangingBus{}
		g := &group{open: func() (sensors.Sensor, error) { return h, nil }, interval: time.Second, now: time.Now}
		g.start(t.Context())
		cfg := &SensorConfig{ID: "t1", Type: "ds18b20", Interval: time.Second}
		r, err := newRunner(cfg, func() (sensors.Sensor, error) { return &member{g: g, device: "28-000000000001"}, nil },
			func([]reading.Reading) {}, time.Now, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = r.readOnce(t.Context())
		if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || took != 2*time.Second ||
			!strings.Contains(err.Error(), "read timed out after 2s") {
			t.Errorf("readOnce = %v after %v, want a timeout after 2s", err, took)
		}
		if st := r.status(); st.State != stateFaulty {
			t.Errorf("state %q, want faulty", st.State)
		}
		g.wait()
	})
}

// failingBus is a bulk read in which every device fails.
type failingBus struct{}

func (failingBus) Read(context.Context) ([]reading.Reading, error) {
	return nil, errors.Join(fmt.Errorf("w1: 28-000000000001: %w", sensors.ErrCRC), fmt.Errorf("w1: 28-000000000002: %w", sensors.ErrCRC))
}

// TestLeaderReadsTheRoundForItsFollowers: the members of a bus group that
// share its interval are read by one runner's loop: one bus read and one
// emit per round with every member's reading, each member keeping its own
// status. A member failing alone keeps the round on schedule; the round
// backs off only when every member failed.
func TestLeaderReadsTheRoundForItsFollowers(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	newMembers := func(bus sensors.Sensor, emit func([]reading.Reading)) []*runner {
		g := &group{open: func() (sensors.Sensor, error) { return bus, nil }, interval: time.Second, now: clock}
		g.start(t.Context())
		var rs []*runner
		for i := range 3 {
			cfg := &SensorConfig{ID: fmt.Sprintf("t%d", i+1), Type: "ds18b20", Address: fmt.Sprintf("28-%012x", i+1), Interval: time.Second}
			r, err := newRunner(cfg, func() (sensors.Sensor, error) { return &member{g: g, device: cfg.Address}, nil }, emit, clock, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if i > 0 {
				rs[0].lead(r)
			}
			rs = append(rs, r)
		}
		return rs
	}

	bus := &bulkFake{}
	var emits [][]reading.Reading
	rs := newMembers(bus, func(out []reading.Reading) { emits = append(emits, slices.Clone(out)) })
	if !rs[1].led || !rs[2].led || rs[0].led {
		t.Fatal("the followers are not marked led, or the leader is")
	}
	for round := range 2 {
		now = now.Add(time.Second)
		rs[0].mu.Lock()
		rs[0].lastLoop = now // as its loop does
		rs[0].mu.Unlock()
		if err := rs[0].readOnce(t.Context()); err != nil {
			t.Fatalf("round %d: %v, want nil: one member failing alone does not back the round off", round, err)
		}
	}
	if n := bus.reads.Load(); n != 2 {
		t.Errorf("%d bus reads in 2 rounds, want 2", n)
	}
	if len(emits) != 2 {
		t.Fatalf("%d emits in 2 rounds, want 2 (one per round)", len(emits))
	}
	if got := emits[1]; len(got) != 2 || got[0].Sensor != "t1" || got[0].Raw != 21.5 || got[1].Sensor != "t2" || got[1].Raw != -10.125 {
		t.Errorf("round's emit = %+v, want t1 at 21.5 and t2 at -10.125", got)
	}
	for i, want := range []string{stateOK, stateOK, stateFaulty} {
		st := rs[i].status()
		if st.State != want || (want == stateOK && st.Reads != 2) {
			t.Errorf("t%d: state %q after %d reads, want %q", i+1, st.State, st.Reads, want)
		}
		if got := rs[i].lastLoopAt(); !got.Equal(now) {
			t.Errorf("t%d: loop last made progress at %v, want the leader's round at %v", i+1, got, now)
		}
	}
	if st := rs[2].status(); st.Reason != "crc" {
		t.Errorf("t3: reason %q, want crc", st.Reason)
	}

	rs = newMembers(failingBus{}, func([]reading.Reading) { t.Error("emit with every member failing") })
	if err := rs[0].readOnce(t.Context()); !errors.Is(err, sensors.ErrCRC) {
		t.Errorf("every member failing: readOnce = %v, want the CRC error, so that the loop backs off", err)
	}
}
