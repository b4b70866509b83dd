package ingest

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// TestSubscriberSaysWhyItIsSilent: a broker that cannot be reached is
// logged (once at warn), and Run still ends with its context.
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
		func(string, error) {}, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "mqtt input: cannot connect") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("nothing logged about the unreachable broker:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // several retries
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings for one outage, want 1:\n%s", n, logs.String())
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
