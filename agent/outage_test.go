package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kelvin-gw/kelvin/buffer"
	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

// seqSink collects the seq of every reading a subscriber receives, per
// sensor, in arrival order.
type seqSink struct {
	mu   sync.Mutex
	seqs map[string][]uint64
}

func (s *seqSink) add(r reading.Reading) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seqs[r.Sensor] = append(s.seqs[r.Sensor], r.Seq)
}

// check reports whether sensor's seqs, duplicates (resends) aside, are
// exactly 1..last in order.
func (s *seqSink) check(sensor string, last uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[uint64]bool{}
	var next uint64 = 1
	for _, q := range s.seqs[sensor] {
		if seen[q] {
			continue // an at-least-once duplicate
		}
		if q != next {
			return fmt.Errorf("%s: got seq %d, want %d (a gap or reordering)", sensor, q, next)
		}
		seen[q] = true
		next++
	}
	if next-1 != last {
		return fmt.Errorf("%s: received up to seq %d of %d", sensor, next-1, last)
	}
	return nil
}

// TestBrokerOutageLosesNothing stops the broker for several seconds while
// the sensors keep reading, then starts it again: a persistent subscriber
// sees every seq of every sensor, in order, with no gap; with the buffer's
// hot tail (what the outage does not hold back never reaches the disk) and
// without it.
func TestBrokerOutageLosesNothing(t *testing.T) {
	for _, hot := range []bool{true, false} {
		t.Run(map[bool]string{true: "hot_tail", false: "hot_dir_off"}[hot], func(t *testing.T) { brokerOutage(t, hot) })
	}
}

func brokerOutage(t *testing.T, hot bool) {
	if testing.Short() {
		t.Skip("outage test takes ~10 s")
	}
	dir := t.TempDir()
	broker := testenv.StartMosquitto(t, "persistence true", "persistence_location "+dir+"/", "autosave_interval 1")

	sink := &seqSink{seqs: map[string][]uint64{}}
	opts := paho.NewClientOptions().AddBroker(broker.URL).SetClientID("outage-subscriber").
		SetCleanSession(false).SetAutoReconnect(true).SetMaxReconnectInterval(200 * time.Millisecond).
		SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond)
	opts.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		var r reading.Reading
		if json.Unmarshal(m.Payload(), &r) == nil && r.Seq > 0 {
			sink.add(r)
		}
	})
	sub := paho.NewClient(opts)
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe("kelvin/gh1/+", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	dataDir := filepath.Join(dir, "agent")
	hotDir := "off"
	if hot {
		hotDir = t.TempDir()
	}
	cfg, err := Parse("outage.yaml", []byte(fmt.Sprintf(`
agent: { id: gh1, data_dir: %s }
sensors:
  - { id: air, type: sim, interval: 50ms }
  - { id: soil, type: sim, interval: 70ms }
buffer: { sync: 100ms, hot_dir: %s }
mqtt: { url: %q, qos: 1 }
http: { listen: "" }
`, dataDir, hotDir, broker.URL)), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan *Agent, 1)
	go func() {
		done <- Run(ctx, cfg, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), OnReady: func(a *Agent) { ready <- a }})
	}()
	a := <-ready

	count := func(s string) int { sink.mu.Lock(); defer sink.mu.Unlock(); return len(sink.seqs[s]) }
	testenv.WaitForWithin(t, 15*time.Second, "first readings", func() bool { return count("air") >= 5 && count("soil") >= 5 })
	broker.Terminate() // persists the subscriber's session
	// An outage long enough for a real backlog: the agent noticed it and
	// stored readings of both sensors that it could not send.
	testenv.WaitForWithin(t, 30*time.Second, "a backlog of 60 readings during the outage", func() bool {
		o := a.Status().Outputs[0]
		return !o.Connected && o.Backlog >= 60
	})
	// The outage's writes show on the page, in the last day's figures too.
	if b := a.Status().Buffer; b.BytesWritten == 0 || b.BytesWrittenLastDay != b.BytesWritten || b.FsyncsLastDay != b.Fsyncs {
		t.Errorf("buffer status during the outage: %d bytes and %d fsyncs since the start, %d and %d in the last day; want the same, not 0",
			b.BytesWritten, b.Fsyncs, b.BytesWrittenLastDay, b.FsyncsLastDay)
	}
	broker.Start()
	maxSeq := func(s string) uint64 {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		var m uint64
		for _, q := range sink.seqs[s] {
			m = max(m, q)
		}
		return m
	}
	// Delivery resumes, and goes on past the outage.
	testenv.WaitForWithin(t, 40*time.Second, "delivery to resume after the outage", func() bool { return maxSeq("air") > 100 && maxSeq("soil") > 70 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// What the agent stored, read back from its buffer: every reading must
	// have reached the subscriber.
	l, err := buffer.Open(filepath.Join(dataDir, "buffer"), buffer.Config{HotDir: hotDir}, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, c := range l.Stats().Cursors {
		if c.Name == "mqtt" && c.Backlog != 0 {
			t.Logf("mqtt backlog after shutdown: %d (sent after restart)", c.Backlog)
		}
	}
	// The last seq the buffer handed out (after a clean stop, exact):
	// what was delivered and acknowledged in time is not on disk any more.
	last := map[string]uint64{"air": l.LastSeq("air"), "soil": l.LastSeq("soil")}
	if last["air"] < 100 || last["soil"] < 70 {
		t.Fatalf("the sensors did not keep reading through the outage: %v", last)
	}
	var checkErr error
	testenv.WaitForWithin(t, 15*time.Second, "every stored reading at the subscriber", func() bool {
		checkErr = nil
		for s, n := range last {
			if err := sink.check(s, n); err != nil {
				checkErr = err
			}
		}
		return checkErr == nil
	})
	if checkErr != nil {
		t.Fatalf("%v\nbroker log:\n%s", checkErr, broker.Log())
	}
}
