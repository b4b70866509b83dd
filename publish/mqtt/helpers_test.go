package mqtt

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/publish"
	"github.com/kelvin-gw/kelvin/reading"
)

// testLog logs at debug to the test output with -v, and nowhere otherwise.
func testLog(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

// msg is a message a subscriber received.
type msg struct {
	Topic    string
	Payload  string
	Retained bool
}

// subscriber is a paho client recording what it receives, in order.
type subscriber struct {
	pc    paho.Client
	count atomic.Int64
	mu    sync.Mutex
	msgs  []msg
	keep  bool // record messages, not only count them
}

var subscriberID atomic.Int64

// subscribe connects a recording subscriber to brokerURL and subscribes to
// filter at qos; it disconnects when the test ends.
func subscribe(t testing.TB, brokerURL, filter string, qos byte) *subscriber {
	t.Helper()
	s := &subscriber{keep: true}
	o := paho.NewClientOptions().
		AddBroker(brokerURL).
		SetClientID(fmt.Sprintf("test-sub-%d-%d", os.Getpid(), subscriberID.Add(1))).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetOrderMatters(true).
		SetConnectTimeout(5 * time.Second)
	s.pc = paho.NewClient(o)
	if tok := s.pc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect to %s: %v", brokerURL, tok.Error())
	}
	t.Cleanup(func() { s.pc.Disconnect(50) })
	tok := s.pc.Subscribe(filter, qos, func(_ paho.Client, m paho.Message) {
		if s.keep {
			s.mu.Lock()
			s.msgs = append(s.msgs, msg{m.Topic(), string(m.Payload()), m.Retained()})
			s.mu.Unlock()
		}
		s.count.Add(1)
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return s
}

func (s *subscriber) snapshot() []msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]msg(nil), s.msgs...)
}

// wait polls until cond holds for the messages received so far.
func (s *subscriber) wait(t testing.TB, what string, cond func([]msg) bool) []msg {
	t.Helper()
	var got []msg
	testenv.WaitFor(t, what, func() bool { got = s.snapshot(); return cond(got) })
	return got
}

// settle returns what the subscriber received before now: it publishes a
// marker on a topic of its own and waits for it to come back, after
// everything the broker had queued for it (retained messages included).
func (s *subscriber) settle(t testing.TB) []msg {
	t.Helper()
	marker := fmt.Sprintf("test/settle/%d-%d", os.Getpid(), subscriberID.Add(1))
	tok := s.pc.Subscribe(marker, 1, func(_ paho.Client, m paho.Message) {
		s.mu.Lock()
		s.msgs = append(s.msgs, msg{Topic: m.Topic()})
		s.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", marker, tok.Error())
	}
	if tok := s.pc.Publish(marker, 1, false, "x"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", marker, tok.Error())
	}
	var before []msg
	s.wait(t, "the settle marker", func(ms []msg) bool {
		for i, m := range ms {
			if m.Topic == marker {
				before = ms[:i]
				return true
			}
		}
		return false
	})
	s.pc.Unsubscribe(marker).WaitTimeout(10 * time.Second)
	return before
}

// retained returns the retained message on topic, as a new subscriber sees
// it, failing the test when none arrives.
func retained(t testing.TB, brokerURL, topic string) msg {
	t.Helper()
	s := subscribe(t, brokerURL, topic, 1)
	return s.wait(t, "retained message on "+topic, func(m []msg) bool { return len(m) > 0 })[0]
}

// started is a Client whose Run goroutine the test controls.
type started struct {
	*Client
	cancel context.CancelFunc
	done   chan error
}

// start creates a Client and runs it until the test ends or stop.
func start(t testing.TB, cfg Config, agent string) *started {
	t.Helper()
	c, err := New(cfg, agent, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{Client: c, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- c.Run(ctx) }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop cancels Run and waits for it, for at most 10 s.
func (s *started) stop(t testing.TB) {
	t.Helper()
	s.cancel()
	select {
	case err, ok := <-s.done:
		if !ok {
			return
		}
		close(s.done)
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of cancel")
	}
}

func (s *started) waitConnected(t testing.TB) {
	t.Helper()
	testenv.WaitFor(t, "client connected", func() bool { return s.Status().Connected })
}

// publish publishes batch with a 15 s bound.
func (s *started) publish(t testing.TB, batch []reading.Reading) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.Publish(ctx, batch); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

var t0 = time.Date(2026, 11, 23, 7, 0, 0, 123e6, time.UTC)

// testReadings returns n readings of agent, alternating between sensor "air"
// (temperature) and the three quantities of sensor "bme", seq 1..n.
func testReadings(agent string, n int) []reading.Reading {
	quantities := []string{reading.Temperature, reading.Humidity, reading.Pressure}
	out := make([]reading.Reading, n)
	for i := range out {
		r := reading.Reading{Agent: agent, Sensor: "air", Quantity: reading.Temperature,
			Value: 20 + float64(i)/100, Raw: 20.5, Time: t0.Add(time.Duration(i) * time.Second), Seq: uint64(i + 1)}
		if i%2 == 1 {
			r.Sensor, r.Quantity = "bme", quantities[(i/2)%3]
		}
		r.Unit = reading.UnitOf(r.Quantity)
		out[i] = r
	}
	return out
}

func multiBME(sensor string) bool { return sensor == "bme" }

// seqOf returns the seq of a JSON reading, failing the test when it is not
// one.
func seqOf(t testing.TB, payload string) uint64 {
	t.Helper()
	var r struct {
		Seq *uint64 `json:"seq"`
	}
	if err := json.Unmarshal([]byte(payload), &r); err != nil || r.Seq == nil {
		t.Fatalf("payload %q is not a reading: %v", payload, err)
	}
	return *r.Seq
}

// sameJSON reports whether two JSON documents are equal as values.
func sameJSON(t testing.TB, a, b string) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal([]byte(a), &va); err != nil {
		t.Fatalf("%q: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &vb); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// checkNoGap checks seqs as received (duplicates allowed): each seq seen for
// the first time is the next one after the highest so far, starting at
// first, and the last is last. It returns the number of duplicates.
func checkNoGap(t testing.TB, seqs []uint64, first, last uint64) int {
	t.Helper()
	next, dups := first, 0
	for i, s := range seqs {
		switch {
		case s < next:
			dups++
		case s == next:
			next++
		default:
			t.Fatalf("seq %d received (message %d) when %d was expected: a gap or a reordering", s, i, next)
		}
	}
	if next != last+1 {
		t.Fatalf("received up to seq %d, want %d", next-1, last)
	}
	return dups
}

// forward runs publish.Forward until the test ends.
func forward(t testing.TB, src publish.Source, out publish.Output, opts publish.ForwardOptions) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- publish.Forward(ctx, src, out, opts, testLog(t)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Forward = %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Forward did not return after cancel")
		}
	})
}
