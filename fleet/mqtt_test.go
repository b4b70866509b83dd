package fleet

import (
	"context"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

// TestMQTTRestartKeepsCounts: a fleet following a real broker (the
// gateway publishing SenML, with its seq record) stops
// cleanly and saves its state; readings published while it is down wait
// in its persistent session; the restarted fleet continues the counts
// from the file and sees the gap that spans the restart.
func TestMQTTRestartKeepsCounts(t *testing.T) {
	m := testenv.StartMosquitto(t)
	dir := t.TempDir()
	pub := testenv.ConnectMQTT(t, m.URL, "gw-1")
	send := func(seqs ...uint64) {
		t.Helper()
		for _, q := range seqs {
			p := payload(reading.FormatSenML, "gw-1", "air", q, 20, time.Unix(1_800_000_000+int64(q), 0))
			testenv.PublishMQTT(t, pub, "kelvin/gw-1/air", false, p)
		}
	}
	run := func() (*Fleet, func()) {
		f, _ := newTestFleet(t, func(c *Config) {
			c.MQTT = &MQTTConfig{URL: m.URL, ClientID: "fleet-restart"}
			c.StateDir, c.LossAfter = dir, time.Hour
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx) }()
		testenv.WaitFor(t, "the fleet to subscribe", func() bool { return f.isConnected("mqtt") })
		stopped := false
		stop := func() {
			if !stopped {
				stopped = true
				cancel()
				if err := <-done; err != nil {
					t.Errorf("fleet run: %v", err)
				}
			}
		}
		t.Cleanup(stop)
		return f, stop
	}
	want := func(f *Fleet, c Counts) {
		t.Helper()
		testenv.WaitFor(t, "counts", func() bool {
			gi, _, _ := f.Gateway("gw-1", false)
			return gi.Counts == c
		})
	}

	a, stopA := run()
	send(1, 2, 3, 5, 5) // 4 missing, 5 twice
	want(a, Counts{Received: 4, Duplicates: 1, Pending: 1})
	stopA()

	send(6, 7, 9, 10) // while the fleet is down: 8 missing
	b, _ := run()
	want(b, Counts{Received: 8, Duplicates: 1, Pending: 2})
	send(4, 8, 12) // the gaps filled late; 11 missing
	want(b, Counts{Received: 11, Duplicates: 1, Pending: 1})
}
