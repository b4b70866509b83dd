//go:build !nokafka

package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kelvin-gw/kelvin/internal/kafkaauth"
	"github.com/kelvin-gw/kelvin/reading"
)

// kafkaSource reads one topic as a member of a consumer group. Offsets are
// committed by the fleet's Checkpoint (once a minute, when the group takes
// partitions away, and at stop), only for records handed to the fleet
// before a state file that holds them is saved: a restart resumes where
// the saved state stopped, and what it reads again (at most the last
// minute's records) is counted once, or as duplicates where the state
// already has it.
//
// A broker connection that fails (unreachable, a certificate that does not
// verify, credentials the cluster refuses) is shown as the source's error
// in Summary.SourceErrors and logged once per distinct error, not once per
// retry; kgo keeps retrying with its backoff, so fixing the cause (a
// rotated password file) needs no restart.
type kafkaSource struct {
	cfg  KafkaConfig
	auth []kgo.Opt // TLS and SASL
	log  *slog.Logger

	mu sync.Mutex
	f  *Fleet      // while run runs
	cl *kgo.Client // while run runs and not closing
	// marks are the offsets after the last record handed to the fleet,
	// by topic and partition: what the next checkpoint commits.
	marks       map[string]map[int32]kgo.EpochOffset
	lastErr     string // the last error logged
	lastRefused bool   // lastErr was a refusal (kafkaauth.Refused)
}

func newKafkaSource(cfg KafkaConfig, log *slog.Logger) (*kafkaSource, error) {
	auth, err := kafkaauth.Opts(cfg.TLS, cfg.SASL, log)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	return &kafkaSource{cfg: cfg, auth: auth, log: log}, nil
}

func (s *kafkaSource) name() string { return "kafka" }

func (s *kafkaSource) run(ctx context.Context, f *Fleet) error {
	s.mu.Lock()
	s.f = f
	s.mu.Unlock()
	start := kgo.NewOffset().AtStart()
	if s.cfg.Start == "latest" {
		start = kgo.NewOffset().AtEnd()
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(s.cfg.Brokers...),
		kgo.ConsumerGroup(s.cfg.Group),
		kgo.ConsumeTopics(s.cfg.Topic),
		kgo.ConsumeResetOffset(start),
		kgo.DisableAutoCommit(), // Checkpoint commits the marks
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(func(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
			// Before another member takes them over: save and commit.
			f.checkpointOrWarn(ctx)
			s.forget(revoked)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) { s.forget(lost) }),
		kgo.WithHooks(kafkaHooks{s}),
	}, s.auth...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("fleet: kafka: %w", err)
	}
	s.mu.Lock()
	s.cl = cl
	s.mu.Unlock()
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		f.checkpointOrWarn(cctx)
		s.mu.Lock()
		s.cl = nil // leaving the group revokes: nothing more to commit
		s.mu.Unlock()
		cl.Close()
	}()
	for {
		fs := cl.PollRecords(ctx, 1000)
		if ctx.Err() != nil {
			cl.AllowRebalance()
			f.setConnected("kafka", false)
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			s.failed(fmt.Errorf("fetch %s/%d: %w", t, p, err))
		})
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			for _, r := range p.Records {
				if h := header(r, reading.RestartHeader); h != nil {
					// Before the reading it came with: its gap is skipped.
					agent, sensor := string(header(r, "agent")), string(header(r, "sensor"))
					if agent == "" || sensor == "" {
						agent, sensor, _ = strings.Cut(string(r.Key), "/") // the key is {agent}/{sensor}
					}
					f.handleRestartHeader(agent, sensor, h)
				}
				f.Handle(r.Topic, r.Value)
			}
			last := p.Records[len(p.Records)-1]
			s.mark(last.Topic, last.Partition, kgo.EpochOffset{Epoch: last.LeaderEpoch, Offset: last.Offset + 1})
		})
		cl.AllowRebalance()
	}
}

// header returns the value of a record's header key; nil when it has none.
func header(r *kgo.Record, key string) []byte {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

// checkpoint captures the offsets of the records handed to the fleet so
// far (marked after Handle returned, so the state saved next holds them)
// and returns their commit.
func (s *kafkaSource) checkpoint() func(context.Context) {
	s.mu.Lock()
	cl := s.cl
	s.mu.Unlock()
	if cl == nil {
		return nil
	}
	s.mu.Lock()
	marks := make(map[string]map[int32]kgo.EpochOffset, len(s.marks))
	for t, ps := range s.marks {
		marks[t] = maps.Clone(ps)
	}
	s.mu.Unlock()
	if len(marks) == 0 {
		return nil
	}
	return func(ctx context.Context) {
		cl.CommitOffsetsSync(ctx, marks, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err == nil {
				err = commitErr(resp)
			}
			if err != nil {
				s.log.Warn("fleet kafka commit failed: a restart reads these records again, as duplicates", "err", err)
			}
		})
	}
}

// mark records that the records of a partition before offset were handed
// to the fleet.
func (s *kafkaSource) mark(topic string, partition int32, next kgo.EpochOffset) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.marks == nil {
		s.marks = map[string]map[int32]kgo.EpochOffset{}
	}
	if s.marks[topic] == nil {
		s.marks[topic] = map[int32]kgo.EpochOffset{}
	}
	s.marks[topic][partition] = next
}

// forget drops the marks of partitions the group took away.
func (s *kafkaSource) forget(gone map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, ps := range gone {
		for _, p := range ps {
			delete(s.marks[t], p)
		}
	}
}

// commitErr returns the first partition error of an offset commit.
func commitErr(resp *kmsg.OffsetCommitResponse) error {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err)
			}
		}
	}
	return nil
}

// failed shows err as the source's error and logs it, unless it is the
// error logged last (a retry failing the same way).
func (s *kafkaSource) failed(err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
		return
	}
	msg, refused := err.Error(), kafkaauth.Refused(err)
	s.mu.Lock()
	if !refused && s.lastRefused {
		// The EOF that follows a refusal does not hide it.
		s.mu.Unlock()
		return
	}
	f, repeat := s.f, msg == s.lastErr
	s.lastErr, s.lastRefused = msg, refused
	s.mu.Unlock()
	if f != nil {
		f.setSourceError("kafka", err)
	}
	if !repeat {
		s.log.Warn("fleet kafka source failing, retrying", "err", err, "refused", refused)
	}
}

// up shows the source as connected, clearing its error.
func (s *kafkaSource) up() {
	s.mu.Lock()
	f, was := s.f, s.lastErr
	s.lastErr, s.lastRefused = "", false
	s.mu.Unlock()
	if f == nil {
		return
	}
	if was != "" || !f.isConnected("kafka") {
		s.log.Info("fleet kafka source connected", "brokers", s.cfg.Brokers, "topic", s.cfg.Topic)
	}
	f.setConnected("kafka", true)
}

// kafkaHooks receives kgo's broker events: failed connections and the
// first successful request after authentication.
type kafkaHooks struct{ s *kafkaSource }

var (
	_ kgo.HookBrokerConnect = kafkaHooks{}
	_ kgo.HookBrokerRead    = kafkaHooks{}
)

func (h kafkaHooks) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		h.s.failed(brokerErr(meta, err))
	}
}

func (h kafkaHooks) OnBrokerRead(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	switch {
	case err != nil:
		if herr := kafkaauth.SASLHangup(key, err); herr != nil {
			err = herr
		}
		h.s.failed(brokerErr(meta, err))
	case key != int16(kmsg.SASLHandshake) && key != int16(kmsg.SASLAuthenticate) && key != int16(kmsg.ApiVersions):
		// A request past authentication went through.
		h.s.up()
	}
}

func brokerErr(meta kgo.BrokerMetadata, err error) error {
	return fmt.Errorf("broker %s: %w", net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port))), err)
}
