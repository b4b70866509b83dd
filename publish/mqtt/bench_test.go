package mqtt

import (
	"context"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// benchClient connects a Client of agent "bench" and a subscriber counting
// what arrives on its topics to a loopback mosquitto, once the client's
// "online" status arrived.
func benchClient(b *testing.B) (*started, *subscriber) {
	b.Helper()
	m := testenv.StartMosquitto(b)
	sub := subscribe(b, m.URL, "kelvin/bench/#", 1)
	sub.keep = false
	cfg := DefaultConfig()
	cfg.URL = m.URL
	c := start(b, cfg, "bench")
	c.waitConnected(b)
	sub.wait(b, "online", func([]msg) bool { return sub.count.Load() > 0 })
	return c, sub
}

// BenchmarkPublishQoS1 publishes batches of 256 readings at QoS 1 to a
// loopback mosquitto and counts only what a subscriber received.
func BenchmarkPublishQoS1(b *testing.B) {
	c, sub := benchClient(b)
	base := sub.count.Load()

	batch := testReadings("bench", 256)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.ResetTimer()
	begin := time.Now()
	for b.Loop() {
		if err := c.Publish(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	want := base + int64(b.N)*int64(len(batch))
	testenv.WaitFor(b, "every message delivered", func() bool { return sub.count.Load() >= want })
	elapsed := time.Since(begin)
	b.StopTimer()
	b.ReportMetric(float64(want-base)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkPublishBatch8QoS1 publishes the agent's usual round, a batch of
// 8 readings at QoS 1, to a loopback mosquitto: ns/op is the time from
// Publish to the last acknowledgement, allocs/op what one round costs the
// client (no subscriber in the process: the acknowledgements are the proof
// of delivery at QoS 1).
func BenchmarkPublishBatch8QoS1(b *testing.B) {
	m := testenv.StartMosquitto(b)
	cfg := DefaultConfig()
	cfg.URL = m.URL
	c := start(b, cfg, "bench")
	c.waitConnected(b)

	batch := testReadings("bench", 8)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Publish(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}
