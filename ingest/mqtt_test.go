package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// runSubscriber runs s until the test ends and waits for it to return.
func runSubscriber(t *testing.T, s *Subscriber) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
}

// TestSubscriberSaysWhyItIsSilent: a broker that cannot be reached is
// logged (once at warn, the retries at debug), and Run still ends with its
// context.
func TestSubscriberSaysWhyItIsSilent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	var logs testenv.SyncBuffer
	s := NewSubscriber(SubscriberConfig{URL: "tcp://" + addr, ClientID: "t", ConnectRetry: 50 * time.Millisecond},
		[]Subscription{{Sensor: "a", Topic: "a"}}, func(context.Context, []Item) error { return nil },
		func(string, error) {}, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	runSubscriber(t, s)
	testenv.WaitForWithin(t, 10*time.Second, "three failed retries logged", func() bool {
		return strings.Count(logs.String(), "mqtt input: connect retry failed") >= 3
	})
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings for one outage, want 1:\n%s", n, logs.String())
	}
}

// TestSubscriberPayloadLimit: a payload over MaxPayload, published to a
// real mosquitto, is discarded as it arrives (this process never
// allocates it), counted and reported as ErrTooLarge for its sensor; the
// readings before and after it, and payloads at the limit, are taken.
func TestSubscriberPayloadLimit(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	pub := testenv.Require(t, "mosquitto_pub", "mosquitto-clients")
	var (
		mu     sync.Mutex
		values []float64
		fails  []error
	)
	var logs testenv.SyncBuffer
	const limit = 1024
	s := NewSubscriber(SubscriberConfig{URL: broker.URL, ClientID: "limit", MaxPayload: limit},
		[]Subscription{{Sensor: "a", Topic: "dev/a"}, {Sensor: "b", Topic: "dev/b", ValuePath: "$.t"}},
		func(_ context.Context, items []Item) error {
			mu.Lock()
			defer mu.Unlock()
			values = append(values, items[0].Value)
			return nil
		},
		func(_ string, err error) {
			mu.Lock()
			defer mu.Unlock()
			fails = append(fails, err)
		}, slog.New(slog.NewTextHandler(&logs, nil)))
	runSubscriber(t, s)
	testenv.WaitFor(t, "the subscription", func() bool { return strings.Contains(logs.String(), "mqtt input: subscribed") })

	publish := func(topic string, qos int, payload []byte) {
		t.Helper()
		cmd := exec.Command(pub, "-h", "127.0.0.1", "-p", fmt.Sprint(broker.Port), "-t", topic, "-q", fmt.Sprint(qos), "-s")
		cmd.Stdin = bytes.NewReader(payload)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub: %v\n%s", err, out)
		}
	}
	got := func() ([]float64, []error) {
		mu.Lock()
		defer mu.Unlock()
		return append([]float64(nil), values...), append([]error(nil), fails...)
	}
	const big = 16 << 20
	atLimit := []byte(`{"t":2.5,"pad":"` + strings.Repeat("x", limit-len(`{"t":2.5,"pad":""}`)) + `"}`)
	publish("dev/a", 1, []byte("1.5"))
	testenv.WaitFor(t, "the first reading", func() bool { v, _ := got(); return len(v) == 1 })

	bigA := bytes.Repeat([]byte("9"), big)
	bigB := append([]byte(`{"t":`), bytes.Repeat([]byte("1"), big)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	publish("dev/a", 1, bigA)
	publish("dev/b", 0, bigB)
	publish("dev/b", 1, atLimit)
	publish("dev/a", 1, []byte("3.5"))
	testenv.WaitFor(t, "the readings after the big ones", func() bool { v, _ := got(); return len(v) == 3 })
	runtime.ReadMemStats(&after)

	v, f := got()
	if fmt.Sprint(v) != "[1.5 2.5 3.5]" {
		t.Errorf("readings %v, want [1.5 2.5 3.5]", v)
	}
	if len(f) != 2 || s.TooLarge() != 2 {
		t.Fatalf("%d failures, %d counted, want 2: %v", len(f), s.TooLarge(), f)
	}
	for _, err := range f {
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), fmt.Sprintf("a payload of %d bytes, over the limit of 1024", big)) &&
			!strings.Contains(err.Error(), fmt.Sprintf("a payload of %d bytes, over the limit of 1024", big+5)) {
			t.Errorf("failure %v, want ErrTooLarge with the size", err)
		}
	}
	d := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KiB while two payloads of %d MiB arrived", d>>10, big>>20)
	if d > big/4 {
		t.Errorf("%d MiB allocated while two payloads of %d MiB arrived: they were held in memory", d>>20, big>>20)
	}
}

// TestSubscriberNamesTheTakeover: two inputs with one client id on one
// broker take the session from each other; one of them says so, once.
func TestSubscriberNamesTheTakeover(t *testing.T) {
	m := testenv.StartMosquitto(t)
	var logs [2]testenv.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	var done [2]chan error
	for i := range 2 {
		s := NewSubscriber(SubscriberConfig{URL: m.URL, ClientID: "kelvin-twin-in"},
			[]Subscription{{Sensor: "a", Topic: "a"}}, func(context.Context, []Item) error { return nil },
			func(string, error) {}, slog.New(slog.NewTextHandler(&logs[i], &slog.HandlerOptions{Level: slog.LevelDebug})))
		done[i] = make(chan error, 1)
		go func() { done[i] <- s.Run(ctx) }()
	}
	defer func() {
		cancel()
		<-done[0]
		<-done[1]
	}()
	const told = "another client with the same client id keeps taking over the session"
	testenv.WaitForWithin(t, 30*time.Second, "an input to name the takeover", func() bool {
		return strings.Contains(logs[0].String(), told) || strings.Contains(logs[1].String(), told)
	})
	for i := range logs {
		s := logs[i].String()
		if n := strings.Count(s, told); n > 1 {
			t.Errorf("input %d named the takeover %d times", i, n)
		}
		if n := strings.Count(s, `level=WARN msg="mqtt input: connection lost`); n > takeoverWarn-1 {
			t.Errorf("input %d warned of %d lost connections:\n%s", i, n, s)
		}
	}
}
