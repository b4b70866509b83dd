package mqtt

import (
	"context"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// BenchmarkPublishQoS1 publishes batches of 256 readings at QoS 1 to a
// loopback mosquitto and counts only what a subscriber received.
func BenchmarkPublishQoS1(b *testing.B) {
	m := testenv.StartMosquitto(b)
	sub := subscribe(b, m.URL, "kelvin/bench/#", 1)
	sub.keep = false
	cfg := DefaultConfig()
	cfg.URL = m.URL
	c := start(b, cfg, "bench")
	c.waitConnected(b)
	sub.wait(b, "online", func([]msg) bool { return sub.count.Load() > 0 })
	base := sub.count.Load()

	batch := testReadings("bench", 256)
	ctx := context.Background()
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
