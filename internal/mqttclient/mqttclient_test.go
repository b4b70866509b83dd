package mqttclient

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// TestRunFollowsAcrossAnOutage: Run subscribes, hands messages over, says
// when the connection is lost, logs a streak of failed attempts once at
// warn, and subscribes again when the broker is back.
func TestRunFollowsAcrossAnOutage(t *testing.T) {
	m := testenv.StartMosquitto(t)
	var logs testenv.SyncBuffer
	var connects, subscribed, lost, got atomic.Int32
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			URL:                  m.URL,
			ClientID:             "mqttclient-test",
			RetryInterval:        50 * time.Millisecond,
			MaxReconnectInterval: 100 * time.Millisecond,
			Topics:               []string{"t/#"},
			Handle:               func(paho.Client, paho.Message) { got.Add(1) },
			OnConnect:            func() { connects.Add(1) },
			OnSubscribed:         func() { subscribed.Add(1) },
			OnLost:               func(error) { lost.Add(1) },
			Log:                  slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Name:                 "test",
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	testenv.WaitFor(t, "the subscription", func() bool { return subscribed.Load() == 1 })
	testenv.PublishMQTT(t, testenv.ConnectMQTT(t, m.URL, "mqttclient-test-pub"), "t/1", false, "x")
	testenv.WaitFor(t, "the message", func() bool { return got.Load() == 1 })

	m.Stop()
	testenv.WaitFor(t, "the loss", func() bool { return lost.Load() == 1 })
	testenv.WaitFor(t, "retries", func() bool { return strings.Count(logs.String(), "test: connect retry failed") >= 2 })
	m.Start()
	testenv.WaitFor(t, "the second subscription", func() bool { return subscribed.Load() == 2 })
	if n := connects.Load(); n != 2 {
		t.Errorf("OnConnect called %d times, want 2", n)
	}
	if n := strings.Count(logs.String(), "level=WARN msg=\"test: cannot connect to the broker, retrying\""); n != 1 {
		t.Errorf("the failed attempts were warned of %d times, want once:\n%s", n, logs.String())
	}
}
