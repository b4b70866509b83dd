//go:build !nokafka

package fleet

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaSource reads one topic as a member of a consumer group. Offsets are
// committed (every 5 s, and when the group rebalances or the fleet stops)
// only for records already handed to the fleet, so a restart resumes
// where it stopped and re-reads at most a few seconds, which the fleet
// drops as duplicates.
type kafkaSource struct {
	cfg KafkaConfig
	log *slog.Logger
}

func newKafkaSource(cfg KafkaConfig, log *slog.Logger) (*kafkaSource, error) {
	return &kafkaSource{cfg: cfg, log: log}, nil
}

func (s *kafkaSource) name() string { return "kafka" }

func (s *kafkaSource) run(ctx context.Context, f *Fleet) error {
	start := kgo.NewOffset().AtStart()
	if s.cfg.Start == "latest" {
		start = kgo.NewOffset().AtEnd()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(s.cfg.Brokers...),
		kgo.ConsumerGroup(s.cfg.Group),
		kgo.ConsumeTopics(s.cfg.Topic),
		kgo.ConsumeResetOffset(start),
		kgo.AutoCommitMarks(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, _ map[string][]int32) {
			if err := cl.CommitMarkedOffsets(ctx); err != nil {
				s.log.Warn("fleet kafka commit on revoke failed", "err", err)
			}
		}),
	)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2e9)
		defer cancel()
		if err := cl.CommitMarkedOffsets(cctx); err != nil {
			s.log.Warn("fleet kafka final commit failed", "err", err)
		}
		cl.Close()
	}()
	up := false
	for {
		fs := cl.PollRecords(ctx, 1000)
		if ctx.Err() != nil {
			cl.AllowRebalance()
			f.setConnected("kafka", false)
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			s.log.Warn("fleet kafka fetch failed", "topic", t, "partition", p, "err", err)
		})
		if !up && len(fs.Errors()) == 0 {
			up = true
			f.setConnected("kafka", true)
		}
		fs.EachRecord(func(r *kgo.Record) {
			f.Handle(r.Topic, r.Value)
			cl.MarkCommitRecords(r)
		})
		cl.AllowRebalance()
	}
}
