//go:build !nokafka

package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kelvin-gw/kelvin/internal/kafkaauth"
	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/publish"
	"github.com/kelvin-gw/kelvin/reading"
)

// Producer tuning. Not configurable: these are what a gateway on a small
// board with a possibly slow uplink needs.
const (
	// defaultDeliveryTimeout bounds how long Publish waits for a batch to
	// be acknowledged, so it fails within about this long when the
	// cluster is unreachable.
	defaultDeliveryTimeout = 30 * time.Second
	// recordRetries bounds the tries of one record batch; with kgo's
	// backoff (250ms doubling to 2.5s) the delivery timeout comes first.
	recordRetries = 20
	// batchMaxBytes caps one partition's record batch: small requests for
	// slow links, well under the broker default message.max.bytes (1 MiB).
	batchMaxBytes = 256 << 10
	// maxBufferedRecords bounds the records the client holds in memory.
	// A larger batch is not refused: Produce blocks until acknowledgements
	// make room.
	maxBufferedRecords = 4096
	// metadataMinAge is the least time between metadata requests.
	metadataMinAge = time.Second
	// cancelGrace is how long Publish waits, after its deadline, for
	// the client to fail the records it gave up on.
	cancelGrace = 5 * time.Second
	// maxSeries bounds the cache of per-series topic, key and headers.
	maxSeries = 1024
	// maxRestartMarks bounds the restart announcements waiting for their
	// sensor's next reading (this agent's, and the gateways' a fleet
	// forwards): 64 per gateway for 1,000 gateways.
	maxRestartMarks = 1 << 16
)

// States reported in publish.Status.State.
const (
	stateConnecting   = "connecting"
	stateConnected    = "connected"
	stateDisconnected = "disconnected"
	stateFailed       = "failed"
)

// Errors Publish returns, wrapped; match them with errors.Is.
var (
	// ErrClosed is returned by Publish once Close was called.
	ErrClosed = errors.New("output closed")
	// ErrTimeout is a batch the cluster did not acknowledge in time
	// (30 s): it is unreachable or too slow.
	ErrTimeout = errors.New("timeout")
)

// options are the knobs tests turn; New uses the defaults.
// Available is false in a binary built with -tags nokafka.
const Available = true

type options struct {
	deliveryTimeout time.Duration    // default defaultDeliveryTimeout
	now             func() time.Time // default wallclock.Now
	extra           []kgo.Opt        // appended to the client options
}

// Output publishes readings to a Kafka cluster. It implements
// publish.Output; Publish is called from one goroutine at a time, Status and
// Close are safe for concurrent use.
type Output struct {
	log             *slog.Logger
	url             string
	now             func() time.Time
	opts            []kgo.Opt
	deliveryTimeout time.Duration

	agent  string
	topic  topicTemplate
	format reading.Format
	series map[seriesKey]*series // used by Publish only

	sent  atomic.Uint64
	bytes atomic.Uint64

	// marks are the restart announcements waiting to go out as the
	// "restart" header of their sensor's next reading (see
	// AnnounceSkipped); nMarks is their number, read without the lock.
	marksMu   sync.Mutex
	marks     map[restartKey]restartMark
	nMarks    atomic.Int64
	marksFull bool // maxRestartMarks was reached: logged once

	mu      sync.Mutex
	client  *kgo.Client
	stale   bool // a fatal error: replace client before the next Publish
	closed  bool
	state   string
	lastErr string
	errTime time.Time
	connErr error              // the most telling broker connection error of this Publish
	giveUp  context.CancelFunc // ends the Publish in progress
}

var _ publish.Output = (*Output)(nil)

// New returns an Output for cfg (on which SetDefaults has run and Validate
// found nothing), publishing as agentID. It reads the TLS and password files
// now (errors name the file) and builds the client, which connects on the
// first Publish. log may be nil to discard logs.
func New(cfg Config, agentID string, log *slog.Logger) (*Output, error) {
	return newOutput(cfg, agentID, log, options{})
}

func newOutput(cfg Config, agentID string, log *slog.Logger, opt options) (*Output, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if agentID == "" {
		return nil, errors.New("kafka: empty agent id")
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("kafka: invalid config: %w", errors.Join(errs...))
	}
	if opt.deliveryTimeout <= 0 {
		opt.deliveryTimeout = defaultDeliveryTimeout
	}
	if opt.now == nil {
		opt.now = wallclock.Now
	}
	topic, err := newTopicTemplate(cfg.Topic)
	if err != nil {
		return nil, fmt.Errorf("kafka: topic: %w", err)
	}
	o := &Output{
		log:             log,
		url:             strings.Join(cfg.Brokers, ","),
		now:             opt.now,
		deliveryTimeout: opt.deliveryTimeout,
		agent:           agentID,
		topic:           topic,
		format:          reading.FormatJSON,
		series:          make(map[seriesKey]*series),
		state:           stateConnecting,
	}

	if cfg.Format != "" {
		o.format, _ = reading.ParseFormat(cfg.Format) // Validate checked it
	}

	o.opts = []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID("kelvin-" + sanitizeTopic(agentID)),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Ask for a missing topic to be created, as the Java producer does;
		// the broker's auto.create.topics.enable decides.
		kgo.AllowAutoTopicCreation(),
		// Idempotent writes stay on (kgo's default) so the client's own
		// retries never duplicate, but an in-flight batch may be given up
		// on: without this, a batch sent to a broker that then died is
		// retried forever and Publish never returns. Publish's caller
		// re-sends what failed; duplicates are allowed, gaps are not.
		kgo.AllowIdempotentProduceCancellation(),
		kgo.RecordRetries(recordRetries),
		// After a load error kgo retries once metadata is refreshed, at
		// most every MetadataMinAge: 1s rather than 5s lets Publish give up
		// close to its deadline and recover quickly after an outage.
		kgo.MetadataMinAge(metadataMinAge),
		kgo.ProducerBatchCompression(codec(cfg.Compression)),
		kgo.ProducerLinger(cfg.Linger),
		kgo.ProducerBatchMaxBytes(batchMaxBytes),
		kgo.MaxBufferedRecords(maxBufferedRecords),
		kgo.WithHooks(hooks{o}),
		kgo.WithLogger(kgoLogger{log}),
	}
	auth, err := kafkaauth.Opts(cfg.TLS, cfg.SASL, log)
	if err != nil {
		return nil, err
	}
	o.opts = append(o.opts, auth...)
	o.opts = append(o.opts, opt.extra...)

	o.client, err = kgo.NewClient(o.opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: new client: %w", err)
	}
	return o, nil
}

func codec(name string) kgo.CompressionCodec {
	switch name {
	case "none":
		return kgo.NoCompression()
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	}
	return kgo.ZstdCompression()
}

// Name returns "kafka".
func (o *Output) Name() string { return "kafka" }

// seriesKey identifies a series of readings: one sensor's quantity.
type seriesKey struct{ agent, sensor, quantity string }

// series holds what every record of a series shares. The byte slices are
// shared between records and never modified.
type series struct {
	topic   string
	key     []byte
	headers []kgo.RecordHeader
}

func (o *Output) seriesOf(agent, sensor, quantity string) *series {
	k := seriesKey{agent, sensor, quantity}
	if s, ok := o.series[k]; ok {
		return s
	}
	if len(o.series) >= maxSeries {
		clear(o.series)
	}
	s := &series{
		topic: o.topic.expand(agent, sensor, quantity),
		key:   []byte(agent + "/" + sensor),
		headers: []kgo.RecordHeader{
			{Key: "agent", Value: []byte(agent)},
			{Key: "sensor", Value: []byte(sensor)},
			{Key: "quantity", Value: []byte(quantity)},
		},
	}
	o.series[k] = s
	return s
}

// restartKey is a sensor of an agent that restarted.
type restartKey struct{ agent, sensor string }

// restartMark is a restart announcement waiting for its sensor's first
// reading at or after seq.
type restartMark struct {
	seq    uint64
	header kgo.RecordHeader
}

// AnnounceSkipped makes the first reading of each sensor of skipped after
// this start carry the record header "restart" (reading.SensorRestart):
// the sensor's seqs resumed at last+1, and no reading with a seq in
// first..last will be published that was not before the restart (reserved
// and never used after a crash; see reading.SensorRestart for a power
// cut). A header rather than a record of
// its own: consumers that only parse reading values see nothing new; it
// travels with the reading through the buffer and any outage, so it
// reaches the topic with the first reading after the restart, in the
// sensor's order (same key, same partition), however long the gateway
// was offline; and it names the skipped range exactly, so a consumer
// still counts a real gap below first as lost. The header is dropped
// once a record that carries it was acknowledged. Safe for concurrent use.
func (o *Output) AnnounceSkipped(started time.Time, skipped map[string][2]uint64) {
	for sensor, r := range skipped {
		o.setMark(o.agent, sensor, reading.SensorRestart{Started: started, SeqResume: r[1] + 1, SkipFrom: r[0]})
	}
}

// MirrorGatewayRestart carries another agent's restart announcement on
// (a fleet forwarding the gateways it follows): payload is the
// announcement as the fleet received it (reading.Restart, from
// kelvin/AGENT/restart or from a "restart" header), and each of its
// sensors' next reading forwarded at or after its seq_resume carries the
// "restart" header, as this agent's own do (AnnounceSkipped). An
// announcement that does not parse is ignored. Safe for concurrent use.
func (o *Output) MirrorGatewayRestart(agent string, payload []byte) {
	a, err := reading.ParseRestart(payload)
	if err != nil {
		o.log.Debug("kafka: a gateway's restart announcement not carried on", "agent", agent, "err", err)
		return
	}
	for sensor := range a.SeqResume {
		if r, ok := a.Sensor(sensor); ok {
			o.setMark(agent, sensor, r)
		}
	}
}

func (o *Output) setMark(agent, sensor string, r reading.SensorRestart) {
	k := restartKey{agent, sensor}
	o.marksMu.Lock()
	defer o.marksMu.Unlock()
	if o.marks == nil {
		o.marks = map[restartKey]restartMark{}
	}
	if _, ok := o.marks[k]; !ok && len(o.marks) >= maxRestartMarks {
		if !o.marksFull {
			o.marksFull = true
			o.log.Warn("kafka: too many restart announcements waiting for their readings; further ones are not carried on, and their skipped seqs will look lost downstream",
				"max", maxRestartMarks)
		}
		return
	}
	o.marks[k] = restartMark{seq: r.SeqResume, header: kgo.RecordHeader{Key: reading.RestartHeader, Value: reading.MarshalSensorRestart(r)}}
	o.nMarks.Store(int64(len(o.marks)))
}

// markHeaders returns the headers of a record of sensor at seq: the
// series' own, plus the restart header when a mark waits for it and no
// record of the series in this batch carries it yet (a topic per quantity
// gets it once per topic); carried collects the marks used, marked the
// series that carry one. marksMu is held.
func (o *Output) markHeaders(s *series, agent, sensor string, seq uint64, carried map[restartKey]uint64, marked map[*series]bool) []kgo.RecordHeader {
	k := restartKey{agent, sensor}
	m, ok := o.marks[k]
	if !ok || seq < m.seq || marked[s] {
		return s.headers
	}
	carried[k], marked[s] = m.seq, true
	h := make([]kgo.RecordHeader, len(s.headers), len(s.headers)+1)
	copy(h, s.headers)
	return append(h, m.header)
}

// dropMarks forgets the marks an acknowledged batch carried, unless they
// were replaced since.
func (o *Output) dropMarks(carried map[restartKey]uint64) {
	o.marksMu.Lock()
	defer o.marksMu.Unlock()
	for k, seq := range carried {
		if o.marks[k].seq == seq {
			delete(o.marks, k)
		}
	}
	o.nMarks.Store(int64(len(o.marks)))
}

// pending tracks the acknowledgements of one Publish call.
type pending struct {
	left  atomic.Int64
	done  chan struct{}
	mu    sync.Mutex
	err   error
	topic string
}

// Publish produces every reading of batch as one record (key
// "{agent}/{sensor}", value the reading's JSON, headers agent, sensor and
// quantity, and restart on a sensor's first reading after a restart (see
// AnnounceSkipped), timestamp the reading's time) and returns nil once the cluster
// acknowledged all of them with acks=all. A reading with no Agent is sent
// with the agent id given to New.
//
// When a record fails, Publish returns the error once every record of the
// batch is settled: within about 30 s when the cluster is unreachable, at
// once on a fatal error (see the package doc); the caller sends the whole
// batch again. When ctx is done first, Publish returns ctx.Err() at once and
// records not yet sent are given up. After Close it returns ErrClosed.
// Publish must not be called concurrently with itself.
func (o *Output) Publish(ctx context.Context, batch []reading.Reading) error {
	cl, err := o.currentClient()
	if err != nil {
		return err
	}
	if len(batch) == 0 {
		return nil
	}

	recs := make([]kgo.Record, len(batch))
	buf := make([]byte, 0, len(batch)*200)
	var carried map[restartKey]uint64 // restart marks this batch carries
	var marked map[*series]bool       // the series that carry one
	if o.nMarks.Load() > 0 {
		carried, marked = map[restartKey]uint64{}, map[*series]bool{}
		o.marksMu.Lock()
	}
	for i := range batch {
		r := &batch[i]
		agent := r.Agent
		if agent == "" {
			rr := *r
			rr.Agent = o.agent
			r, agent = &rr, o.agent
		}
		s := o.seriesOf(agent, r.Sensor, r.Quantity)
		headers := s.headers
		if carried != nil {
			headers = o.markHeaders(s, agent, r.Sensor, r.Seq, carried, marked)
		}
		start := len(buf)
		buf = o.format.Append(buf, r)
		recs[i] = kgo.Record{
			Topic:     s.topic,
			Key:       s.key,
			Headers:   headers,
			Timestamp: r.Time,
			Value:     buf[start:], // only its length counts for now
		}
	}
	if carried != nil {
		o.marksMu.Unlock()
	}
	// All values share one allocation: slice them out of the final buf
	// (appending may have moved it since the slices above were taken).
	off := 0
	for i := range recs {
		n := len(recs[i].Value)
		recs[i].Value = buf[off : off+n : off+n]
		off += n
	}

	// Bound the wait with a context rather than kgo.RecordDeliveryTimeout:
	// kgo measures that timeout from the record's timestamp, which here is
	// the reading's time and may be hours old after an outage.
	tctx, cancel := context.WithTimeout(ctx, o.deliveryTimeout)
	defer cancel()
	o.mu.Lock()
	o.connErr, o.giveUp = nil, cancel // connFailed gives up on a fatal error
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		o.giveUp = nil
		o.mu.Unlock()
	}()
	p := &pending{done: make(chan struct{})}
	p.left.Store(int64(len(recs)))
	promise := func(r *kgo.Record, err error) {
		if err == nil {
			o.sent.Add(1)
			o.bytes.Add(uint64(len(r.Value)))
		} else {
			p.mu.Lock()
			if p.err == nil {
				p.err, p.topic = err, r.Topic
			}
			p.mu.Unlock()
		}
		if p.left.Add(-1) == 0 {
			close(p.done)
		}
	}
	for i := range recs {
		cl.Produce(tctx, &recs[i], promise)
	}
	// Lingering kept each partition's records together while the batch
	// was buffered; now that it is, waiting longer only delays the acks.
	// Flush ends the linger and waits for the records (or tctx).
	_ = cl.Flush(tctx)

	select {
	case <-p.done:
	case <-tctx.Done():
		if err := ctx.Err(); err != nil {
			return err // the records not yet sent are failed by kgo
		}
		// kgo fails the records now; give it a moment to say so.
		grace := time.NewTimer(cancelGrace)
		defer grace.Stop()
		select {
		case <-p.done:
		case <-grace.C:
			p.mu.Lock()
			if p.err == nil {
				p.err, p.topic = context.DeadlineExceeded, recs[0].Topic
			}
			p.mu.Unlock()
		}
	}
	p.mu.Lock()
	err, topic := p.err, p.topic
	p.mu.Unlock()
	if err == nil {
		if len(carried) > 0 {
			o.dropMarks(carried)
		}
		o.setState(stateConnected, nil, false)
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("%w: not acknowledged within %v", ErrTimeout, o.deliveryTimeout)
	case errors.Is(err, context.Canceled):
		o.mu.Lock()
		if o.connErr != nil {
			err = o.connErr // connFailed gave up on it
		}
		o.mu.Unlock()
	}
	return o.publishFailed(topic, err)
}

// currentClient returns the client to publish with, replacing it first when
// the last error was fatal: a fresh client re-reads metadata at once and
// carries no producer state from the failure.
func (o *Output) currentClient() (*kgo.Client, error) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil, fmt.Errorf("kafka: %w", ErrClosed)
	}
	if !o.stale {
		cl := o.client
		o.mu.Unlock()
		return cl, nil
	}
	old := o.client
	o.stale = false
	o.mu.Unlock()

	old.Close() // outside the lock: closing runs hooks and promises
	cl, err := kgo.NewClient(o.opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: new client: %w", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		cl.Close()
		return nil, fmt.Errorf("kafka: %w", ErrClosed)
	}
	o.client = cl
	return cl, nil
}

func (o *Output) publishFailed(topic string, err error) error {
	o.mu.Lock()
	connErr := o.connErr
	o.mu.Unlock()
	if connErr != nil && (errors.Is(err, ErrTimeout) || errors.Is(err, kgo.ErrRecordRetries) || errors.Is(err, kgo.ErrRecordTimeout)) {
		// Say why: the broker connection's error, which may be fatal.
		err = fmt.Errorf("%w (%w)", err, connErr)
	}
	err = fmt.Errorf("kafka: produce to %s: %w", topic, err)
	fatal := kafkaauth.Refused(err)
	if fatal {
		o.setState(stateFailed, err, true)
	} else {
		o.setState(stateDisconnected, err, false)
	}
	return err
}

// setState records a state change; err, when not nil, becomes LastError.
// stale marks the client for replacement.
func (o *Output) setState(state string, err error, stale bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	prev := o.state
	o.state = state
	if err != nil {
		o.lastErr = err.Error()
		o.errTime = o.now()
	}
	if stale {
		o.stale = true
	}
	if state == stateConnected {
		o.stale = false
	}
	if prev != state {
		if state == stateConnected {
			o.log.Info("kafka output connected", "brokers", o.url)
		} else {
			o.log.Debug("kafka output state", "state", state, "from", prev)
		}
	}
}

// Status returns a snapshot of the output's health. Safe for concurrent use.
func (o *Output) Status() publish.Status {
	o.mu.Lock()
	defer o.mu.Unlock()
	return publish.Status{
		Name:      o.Name(),
		URL:       o.url,
		State:     o.state,
		Connected: o.state == stateConnected,
		Sent:      o.sent.Load(),
		Bytes:     o.bytes.Load(),
		LastError: o.lastErr,
		ErrorTime: o.errTime,
	}
}

// Close closes the client; records not yet acknowledged fail, and a Publish
// in progress returns an error. Publish after Close returns ErrClosed.
// Close is safe to call more than once and concurrently with Status.
func (o *Output) Close() {
	o.mu.Lock()
	cl := o.client
	o.client = nil
	o.closed = true
	o.mu.Unlock()
	if cl != nil {
		cl.Close()
	}
}

// hooks receives kgo's connection events.
type hooks struct{ o *Output }

var (
	_ kgo.HookBrokerConnect = hooks{}
	_ kgo.HookBrokerRead    = hooks{}
)

// OnBrokerConnect shows a failed connection in Status at once, without
// waiting for the records to time out.
func (h hooks) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	h.o.connFailed(meta, err)
}

// OnBrokerRead catches a broker hanging up during SASL authentication,
// which is how some brokers (and kfake) refuse credentials.
func (h hooks) OnBrokerRead(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err := kafkaauth.SASLHangup(key, err); err != nil {
		h.o.connFailed(meta, err)
	}
}

// connFailed records a failed connection to a broker: its error explains a
// later timeout, and Status shows it now.
func (o *Output) connFailed(meta kgo.BrokerMetadata, err error) {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
		return
	}
	err = fmt.Errorf("broker %s: %w", net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port))), err)
	fatal := kafkaauth.Refused(err)
	o.mu.Lock()
	if o.connErr == nil || fatal || !kafkaauth.Refused(o.connErr) {
		o.connErr = err // a fatal error is not hidden by the EOF that follows it
	}
	failed := o.state == stateFailed
	giveUp := o.giveUp
	o.mu.Unlock()
	switch {
	case fatal:
		o.setState(stateFailed, fmt.Errorf("kafka: %w", err), true)
		if giveUp != nil {
			giveUp() // retrying will not help: fail the Publish now
		}
	case !failed:
		o.setState(stateDisconnected, fmt.Errorf("kafka: %w", err), false)
	}
}
