//go:build !nokafka

package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kelvin-gw/kelvin/internal/kafkaauth"
)

// kafkaSource reads one topic as a member of a consumer group. Offsets are
// committed only for records already handed to the fleet, so a restart
// resumes where it stopped and re-reads at most a few seconds, which the
// fleet drops as duplicates.
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

	mu          sync.Mutex
	f           *Fleet // while run runs
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
		kgo.AutoCommitMarks(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, _ map[string][]int32) {
			if err := cl.CommitMarkedOffsets(ctx); err != nil {
				s.log.Warn("fleet kafka commit on revoke failed", "err", err)
			}
		}),
		kgo.WithHooks(kafkaHooks{s}),
	}, s.auth...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("fleet: kafka: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := cl.CommitMarkedOffsets(cctx); err != nil {
			s.log.Warn("fleet kafka final commit failed", "err", err)
		}
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
		fs.EachRecord(func(r *kgo.Record) {
			f.Handle(r.Topic, r.Value)
			cl.MarkCommitRecords(r)
		})
		cl.AllowRebalance()
	}
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
