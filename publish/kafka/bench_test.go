//go:build !nokafka

package kafka

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kelvin-gw/kelvin/reading"
)

// batchStats sums what kgo reports of every record batch the cluster
// acknowledged.
type batchStats struct {
	batches, records, uncompressed, compressed atomic.Int64
}

func (s *batchStats) reset() {
	s.batches.Store(0)
	s.records.Store(0)
	s.uncompressed.Store(0)
	s.compressed.Store(0)
}

func (s *batchStats) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	s.batches.Add(1)
	s.records.Add(int64(m.NumRecords))
	s.uncompressed.Add(int64(m.UncompressedBytes))
	s.compressed.Add(int64(m.CompressedBytes))
}

// BenchmarkPublishZstd publishes batches of 256 readings (4 series of one
// reading a second, as a gateway's buffer hands them out after an outage)
// to a one-broker kfake cluster that discards what it acknowledges, with
// acks=all and zstd. It reports readings/s, and the bytes a reading takes
// in a record batch before (record_B/reading) and after (wire_B/reading)
// compression, not counting the 61-byte batch header (batch_B/reading adds
// it back).
func BenchmarkPublishZstd(b *testing.B) {
	c := startCluster(b, kfake.NumBrokers(1), kfake.SeedTopics(4, testTopic), kfake.BlackholeProduce())
	stats := new(batchStats)
	cfg := testConfig(c.ListenAddrs())
	cfg.Linger = DefaultLinger
	o, err := newOutput(cfg, testAgent, nil, options{extra: []kgo.Opt{kgo.WithHooks(stats)}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(o.Close)

	const batchSize = 256
	const perSeries = batchSize / 4
	next := uint64(1)
	batchAt := func() []reading.Reading {
		rs := interleave(
			readings("air", reading.Temperature, next, perSeries),
			readings("i2c-1-0x76", reading.Temperature, next, perSeries),
			readings("i2c-1-0x76", reading.Humidity, next, perSeries),
			readings("28-0316a2b8ff01", reading.Temperature, next, perSeries),
		)
		next += perSeries
		return rs
	}
	ctx := context.Background()
	if err := o.Publish(ctx, batchAt()); err != nil { // connect, load metadata
		b.Fatal(err)
	}
	stats.reset()

	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		batch := batchAt()
		b.StartTimer()
		if err := o.Publish(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	recs := float64(stats.records.Load())
	b.ReportMetric(recs/b.Elapsed().Seconds(), "readings/s")
	b.ReportMetric(float64(stats.uncompressed.Load())/recs, "record_B/reading")
	b.ReportMetric(float64(stats.compressed.Load())/recs, "wire_B/reading")
	b.ReportMetric(float64(stats.compressed.Load()+61*stats.batches.Load())/recs, "batch_B/reading")
}
