package mqtt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kelvin-gw/kelvin/publish"
	"github.com/kelvin-gw/kelvin/reading"
)

// Errors of Publish, matched with errors.Is.
var (
	// ErrNotConnected is returned by Publish when there is no connection
	// to the broker; it fails at once, without queueing in paho.
	ErrNotConnected = errors.New("not connected")
	// ErrConnectionChanged is returned by Publish when the connection was
	// lost or re-established while the batch was in flight: whatever paho
	// reported, the batch must be sent again.
	ErrConnectionChanged = errors.New("connection lost during publish")
)

// States of Status.State.
const (
	stateConnecting   = "connecting"
	stateConnected    = "connected"
	stateDisconnected = "disconnected"
)

// Timeouts of the client.
const (
	connectTimeout = 10 * time.Second       // TCP, TLS and MQTT handshake
	tcpKeepAlive   = 30 * time.Second       // the socket's TCP keep-alive probes
	writeTimeout   = 10 * time.Second       // paho: handing a packet to the connection
	publishTimeout = 10 * time.Second       // Publish: waiting for the acknowledgements
	retryMin       = 500 * time.Millisecond // Run: connection retry delays, see retryDelay
	retryMax       = 4 * time.Second        // so a broker that is back is found within seconds
	// A connection lost within quickDrop of being made was most likely
	// taken over by another client with the same client id (the broker
	// closes the older one): Run waits before reconnecting, retryMin
	// doubling to takeoverMax, and after takeoverWarn such drops in a row
	// says so once.
	quickDrop        = 5 * time.Second
	takeoverMax      = 30 * time.Second
	takeoverWarn     = 3
	offlineTimeout   = 2 * time.Second // Run: publishing "offline" on shutdown
	disconnectQuiesc = 250             // Run: ms paho waits for the DISCONNECT
)

// maxInflightQoS2 bounds the QoS 2 messages in flight. Brokers bound the
// QoS 2 messages they hold awaiting PUBREL (mosquitto: max_inflight_messages,
// default 20) and treat a client going beyond as faulty: mosquitto 2.0.11
// answers the extra messages with PUBREC and PUBCOMP but drops them, which a
// client cannot detect. QoS 0 and 1 are not bounded.
const maxInflightQoS2 = 10

// Client is an MQTT output: New prepares it, Run keeps it connected, and
// Publish sends batches while it is. Publish is called from one goroutine
// at a time; Name and Status are safe for concurrent use; Run is called once.
type Client struct {
	log         *slog.Logger
	pc          paho.Client
	url         string // without password
	qos         byte
	retain      bool
	format      reading.Format
	statusTopic string
	topic       topicTemplate

	// restart is the retained announcement of this start (AnnounceSkipped),
	// published on restartTopic at every connection; nil until set.
	// restartEpoch is the connection epoch it was last published in.
	restartMu    sync.Mutex
	restart      []byte
	restartEpoch uint64
	restartTopic string
	multi        func(sensor string) bool

	// Owned by the goroutine calling Publish.
	topics  map[topicKey]string
	scratch []byte
	timer   *time.Timer  // Publish's acknowledgement timeout, stopped between calls
	tokens  []paho.Token // of the batch, cleared between calls
	// payloads is the buffer of the last batch's payloads when paho holds
	// none of them any more (that batch was acknowledged), nil otherwise.
	payloads []byte
	// acked is when the last batch was acknowledged in full.
	acked time.Time

	// issueMu is held by Publish while it hands messages to paho.
	issueMu sync.Mutex
	// lost has a value when a connection was lost.
	lost chan struct{}

	// onlineMu orders the "online" publish of a (re)connection before the
	// "offline" one of the shutdown.
	onlineMu sync.Mutex

	mu        sync.Mutex
	state     string
	connected bool
	stopping  bool
	epoch     uint64        // incremented on every connect and connection loss
	changed   chan struct{} // closed (and replaced) when epoch is incremented
	lostAt    time.Time     // start of the current outage, zero when connected
	lastErr   string
	errTime   time.Time

	clientID string
	takeover atomic.Bool // a session takeover was detected: losses are logged at debug

	// jitter draws a retry delay from [d/2, d]; tests replace it.
	jitter func(d time.Duration) time.Duration

	sent  atomic.Uint64
	bytes atomic.Uint64
	sock  atomic.Pointer[socket]  // of the current TCP connection, for quickAck
	conn  atomic.Pointer[bufConn] // the current plain TCP connection, for hold and release

	agent     string // sanitised, as in topics
	agentID   string // as given to New: a reading of another agent is forwarded
	haOn      bool
	haPrefix  string
	haSensors []HASensor
	haDevice  HADevice
	// haAnnounced holds the forwarded sensor quantities whose discovery
	// config this connection published.
	haMu        sync.Mutex
	haAnnounced map[topicKey]bool

	// mirror holds the retained messages of gateways that this agent
	// republishes (mirror.go), by topic; dirty those still to publish.
	mirrorMu sync.Mutex
	mirror   map[string]string
	dirty    map[string]bool
	kick     chan struct{} // has a value when dirty may have entries
}

var _ publish.Output = (*Client)(nil)

// New prepares a Client for agentID from cfg: it validates cfg, reads the
// password file and the TLS files (an error names the key and the file:
// "mqtt: password_file /x: no such file or directory") and builds paho's
// options. It does not connect. In topics and the client id, MQTT
// wildcards and "/" in agentID become "_". log may be nil; the caller
// names the output in it (log.With("output", "mqtt")).
func New(cfg Config, agentID string, log *slog.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if agentID == "" {
		return nil, errors.New("mqtt: empty agent id")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	agent := sanitise(agentID)
	cfg.SetDefaults()
	format := reading.FormatJSON
	if cfg.Format != "" {
		format, _ = reading.ParseFormat(cfg.Format) // Validate checked it
	}
	topic, err := parseTopic(cfg.Topic)
	if err != nil { // already checked by Validate
		return nil, fmt.Errorf("mqtt: topic %q: %w", cfg.Topic, err)
	}
	u, err := parseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("mqtt: url: %w", err)
	}
	c := &Client{
		log:          log,
		url:          redact(u),
		qos:          byte(cfg.QoS),
		retain:       cfg.Retain,
		statusTopic:  "kelvin/" + agent + "/status",
		restartTopic: "kelvin/" + agent + "/restart",
		topic:        topic,
		multi:        cfg.MultiQuantity,
		format:       format,
		agent:        agent,
		agentID:      agentID,
		haOn:         cfg.HomeAssistant,
		haPrefix:     cmp.Or(cfg.HomeAssistantPrefix, DefaultHomeAssistantPrefix),
		haSensors:    cfg.HASensors,
		haDevice:     cfg.HADevice,
		haAnnounced:  map[topicKey]bool{},
		mirror:       map[string]string{},
		dirty:        map[string]bool{},
		kick:         make(chan struct{}, 1),
		topics:       map[topicKey]string{},
		state:        stateDisconnected,
		changed:      make(chan struct{}),
		lost:         make(chan struct{}, 1),
		jitter:       func(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) },
		timer:        time.NewTimer(publishTimeout),
	}
	c.timer.Stop()

	c.clientID = strings.ReplaceAll(cfg.ClientID, "{agent}", agent)
	o := paho.NewClientOptions().
		AddBroker(u.String()).
		SetClientID(c.clientID).
		SetProtocolVersion(4).
		SetCleanSession(true). // noStore relies on it
		SetStore(noStore{}).   // see store.go: a clean session never resends from it
		SetOrderMatters(false).
		SetConnectTimeout(connectTimeout).
		SetDialer(&net.Dialer{Timeout: connectTimeout, KeepAlive: tcpKeepAlive}).
		SetKeepAlive(cmp.Or(cfg.KeepAlive, DefaultKeepAlive)).
		SetWriteTimeout(writeTimeout).
		SetAutoReconnect(false). // Run reconnects
		SetConnectRetry(false).
		SetWill(c.statusTopic, "offline", 1, true).
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(c.onConnectionLost).
		SetConnectionNotificationHandler(c.onNotification)
	if cfg.Username != "" {
		o.SetUsername(cfg.Username)
	}
	if cfg.PasswordFile != "" {
		pw, err := readPassword(cfg.PasswordFile)
		if err != nil {
			return nil, err
		}
		o.SetPassword(pw)
	}
	if isTLS(u.Scheme) {
		tc, err := cfg.TLS.tlsConfig()
		if err != nil {
			return nil, err
		}
		o.SetTLSConfig(tc)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		o.SetCustomOpenConnectionFn(c.openConn(o.Dialer, isTLS(u.Scheme)))
	}
	c.pc = paho.NewClient(o)
	return c, nil
}

// Name returns "mqtt".
func (c *Client) Name() string { return "mqtt" }

// Status returns a snapshot of the client's health: State is "disconnected"
// before Run, between connection attempts and after Run, "connecting" during
// an attempt and "connected"; URL has no password; LastError is the last
// connection or publish failure. Dropped and Backlog are the caller's, left
// zero. Safe for concurrent use.
func (c *Client) Status() publish.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return publish.Status{
		Name:      c.Name(),
		URL:       c.url,
		State:     c.state,
		Connected: c.connected,
		Sent:      c.sent.Load(),
		Bytes:     c.bytes.Load(),
		LastError: c.lastErr,
		ErrorTime: c.errTime,
	}
}

// setErrorLocked records a failure for Status; c.mu is held.
func (c *Client) setErrorLocked(err error) {
	c.lastErr = err.Error()
	c.errTime = time.Now()
}

// retryDelay is the wait before connection attempt n (1, 2, …) of a
// streak: retryMin doubling up to limit, through jitter.
func retryDelay(n int, limit time.Duration, jitter func(time.Duration) time.Duration) time.Duration {
	return jitter(min(retryMin<<min(n-1, 16), limit))
}

// Run connects to the broker and keeps it connected until ctx is done. It
// retries a failed connection after 0.5 s doubling to 4 s (each delay drawn
// from [d/2, d], so a fleet does not reconnect in lock-step), forever, and
// reconnects 0.25 to 0.5 s after a loss, then likewise. A connection lost within
// 5 s of being made is not an outage but, most often, another client with
// the same client id taking the session over: Run then waits 0.5 s
// doubling to 30 s before reconnecting, and after three such drops in a
// row logs once, at error, what to change. Each outage is logged once at
// warn, its end at info, the attempts between at debug. When ctx is done
// Run publishes the retained "offline" status (waiting at most 2 s),
// disconnects (250 ms quiesce) and returns nil. Run may be called again
// after it returned.
//
// Run reconnects itself rather than through paho's auto-reconnect, which
// would hand a message blocked in paho.Client.Publish when the connection
// dropped to the next connection, ahead of the batch the caller sends again:
// subscribers would see readings out of order. Run waits until Publish is
// past such a message (at most paho's 10 s write timeout) to reconnect.
func (c *Client) Run(ctx context.Context) error {
	c.onlineMu.Lock()
	c.mu.Lock()
	c.stopping = false
	c.mu.Unlock()
	c.onlineMu.Unlock()
	defer c.shutdown()
	mirrorCtx, stopMirror := context.WithCancel(ctx)
	mirrored := make(chan struct{})
	go func() {
		defer close(mirrored)
		c.mirrorLoop(mirrorCtx)
	}()
	defer func() {
		stopMirror()
		<-mirrored
	}()
	failures := 0   // failed attempts in a row
	drops := 0      // connections lost right after being made, in a row
	told := false   // the takeover was logged
	warned := false // the current outage was logged
	var wait time.Duration
	for {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil
			}
		}
		tok := c.pc.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			return nil
		}
		if err := tok.Error(); err != nil {
			failures++
			wait = retryDelay(failures, retryMax, c.jitter)
			if !warned {
				c.log.Warn("mqtt connect failed, retrying", "url", c.url, "err", err,
					"retry_in_seconds", wait.Seconds())
				warned = true
			} else {
				c.log.Debug("mqtt connect failed", "url", c.url, "err", err,
					"attempt", failures, "retry_in_seconds", wait.Seconds())
			}
			continue
		}
		failures, warned, wait = 0, false, 0
		up := time.Now()

		select {
		case <-c.lost:
		case <-ctx.Done():
			return nil
		}
		warned = true // by onConnectionLost
		if time.Since(up) < quickDrop {
			drops++
			wait = retryDelay(drops, takeoverMax, c.jitter)
			if drops >= takeoverWarn && !told {
				told = true
				c.takeover.Store(true)
				c.log.Error("mqtt: another client with the same client id keeps taking over the session: "+
					"two gateways with the same agent.id (or mqtt.client_id) are connected to this broker. "+
					"Give each gateway its own agent.id; until then they take turns, backing off",
					"client_id", c.clientID, "url", c.url, "drops", drops, "retry_in_seconds", wait.Seconds())
			}
		} else {
			drops, told = 0, false
			c.takeover.Store(false)
			// A broker that drops every client at once must not get the
			// whole fleet back in the same instant.
			wait = c.jitter(retryMin)
		}
		idle := make(chan struct{})
		go func() {
			c.issueMu.Lock()
			c.issueMu.Unlock()
			close(idle)
		}()
		select {
		case <-idle:
		case <-ctx.Done():
			return nil
		}
	}
}

// shutdown publishes "offline" when connected and disconnects.
func (c *Client) shutdown() {
	c.onlineMu.Lock()
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	c.onlineMu.Unlock()

	if c.pc.IsConnectionOpen() {
		done := make(chan error, 1)
		go func() {
			tok := c.pc.Publish(c.statusTopic, 1, true, "offline")
			<-tok.Done()
			done <- tok.Error()
		}()
		t := time.NewTimer(offlineTimeout)
		select {
		case err := <-done:
			if err != nil {
				c.log.Warn("mqtt publish offline status failed", "err", err)
			}
		case <-t.C:
			c.log.Warn("mqtt publish offline status timed out", "timeout_seconds", offlineTimeout.Seconds())
		}
		t.Stop()
	}
	c.pc.Disconnect(disconnectQuiesc)

	c.mu.Lock()
	c.state, c.connected = stateDisconnected, false
	c.bumpLocked()
	c.mu.Unlock()
	c.log.Info("mqtt stopped")
}

// WaitConnected returns a channel that is closed once the client is
// connected: at once when it is, else at the next change of the connection
// (which may be a failed attempt: check Status again). publish.Forward
// uses it to retry at the moment a connection comes up rather than after
// a blind backoff.
func (c *Client) WaitConnected() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.connected {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return c.changed
}

// bumpLocked increments the connection epoch; c.mu is held.
func (c *Client) bumpLocked() {
	c.epoch++
	close(c.changed)
	c.changed = make(chan struct{})
}

// onConnect runs in its own goroutine after every (re)connection.
func (c *Client) onConnect(pc paho.Client) {
	c.mu.Lock()
	c.bumpLocked()
	// A late call for a connection already lost again must not mark the
	// client connected.
	open := pc.IsConnectionOpen() && !c.stopping
	if open {
		c.state, c.connected = stateConnected, true
	}
	lostAt := c.lostAt
	c.lostAt = time.Time{}
	c.mu.Unlock()
	if !open {
		return
	}
	switch {
	case lostAt.IsZero():
		c.log.Info("mqtt connected", "url", c.url)
	case c.takeover.Load():
		c.log.Debug("mqtt reconnected", "url", c.url, "outage_seconds", time.Since(lostAt).Seconds())
	default:
		c.log.Info("mqtt reconnected", "url", c.url, "outage_seconds", time.Since(lostAt).Seconds())
	}

	c.onlineMu.Lock()
	c.mu.Lock()
	stopping := c.stopping
	c.mu.Unlock()
	var tok paho.Token
	if !stopping {
		tok = pc.Publish(c.statusTopic, 1, true, "online")
	}
	c.onlineMu.Unlock()
	if tok != nil && tok.WaitTimeout(publishTimeout) && tok.Error() != nil {
		c.log.Debug("mqtt publish online status failed", "err", tok.Error())
	}
	c.publishRestart(pc)
	if c.haOn && !stopping {
		c.haForget()
		c.haOnConnect(pc)
	}
	c.mirrorAll()
}

// onConnectionLost runs in its own goroutine when a connection is lost; it
// wakes Run up to reconnect.
func (c *Client) onConnectionLost(_ paho.Client, err error) {
	c.mu.Lock()
	c.bumpLocked()
	c.state, c.connected = stateDisconnected, false
	if c.lostAt.IsZero() {
		c.lostAt = time.Now()
	}
	if err == nil {
		err = errors.New("unknown cause")
	}
	c.setErrorLocked(fmt.Errorf("connection lost: %w", err))
	c.mu.Unlock()
	if c.takeover.Load() {
		c.log.Debug("mqtt connection lost, reconnecting", "url", c.url, "err", err)
	} else {
		c.log.Warn("mqtt connection lost, reconnecting", "url", c.url, "err", err)
	}
	select {
	case c.lost <- struct{}{}:
	default:
	}
}

// onNotification follows connection attempts for Status.
func (c *Client) onNotification(_ paho.Client, n paho.ConnectionNotification) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.connected || c.stopping {
		return
	}
	switch n := n.(type) {
	case paho.ConnectionNotificationConnecting:
		c.state = stateConnecting
	case paho.ConnectionNotificationFailed:
		c.state = stateDisconnected
		err := n.Reason
		if err == nil {
			err = errors.New("unknown cause")
		}
		c.setErrorLocked(fmt.Errorf("connect: %w", err))
	}
}

// Publish sends batch and returns nil once the broker acknowledged all of
// it at the configured QoS (QoS 0: once written). Messages are pipelined:
// all of them are issued before any is waited for, so at most len(batch)
// are in flight; at QoS 2, at most 10 (see maxInflightQoS2). Each message is
// the reading's JSON on the topic of the template.
//
// It fails at once with ErrNotConnected when not connected; with
// ErrConnectionChanged when the connection was lost or re-established while
// the batch was in flight; with an error when a message fails or when no
// acknowledgement comes for 10 s; and with ctx.Err() when ctx is done first.
// On error the caller sends the whole batch again: duplicates, never gaps.
// Publish is called from one goroutine at a time.
func (c *Client) Publish(ctx context.Context, batch []reading.Reading) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	epoch, changed, connected := c.epoch, c.changed, c.connected
	c.mu.Unlock()
	if !connected || !c.pc.IsConnectionOpen() {
		return fmt.Errorf("mqtt: publish: %w", ErrNotConnected)
	}

	window := len(batch)
	if c.qos == 2 {
		window = maxInflightQoS2
	}
	timer := c.timer
	timer.Reset(publishTimeout)
	defer timer.Stop()
	// await waits for one token; the 10 s restart at each acknowledgement.
	await := func(tok paho.Token, left int) error {
		select {
		case <-tok.Done():
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
			return c.failed(ErrConnectionChanged)
		case <-timer.C:
			return c.failed(fmt.Errorf("%d of %d messages not acknowledged within %v",
				left, len(batch), publishTimeout))
		}
		if err := tok.Error(); err != nil {
			return c.failed(err)
		}
		timer.Reset(publishTimeout)
		return nil
	}

	// One buffer for the payloads of the batch, each a full slice of it
	// that paho may hold until acknowledged (or resent after a reconnect):
	// when the buffer grows, earlier payloads keep the old array. The
	// buffer of the previous batch is reused only when that batch was
	// acknowledged (c.payloads is then set); after a failure paho may still
	// hold a payload, and this batch gets a new one.
	buf := c.payloads[:0]
	c.payloads = nil
	if want := len(batch) * 192; cap(buf) < want {
		buf = make([]byte, 0, want)
	}
	tokens := c.tokens[:0]
	defer func() {
		clear(tokens)
		c.tokens = tokens[:0]
	}()
	c.issueMu.Lock()
	defer c.issueMu.Unlock()
	// The batch's messages go out in one write, not one each (bufConn).
	conn := c.conn.Load()
	conn.hold()
	defer conn.release()
	var size uint64
	for i := range batch {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
			return c.failed(ErrConnectionChanged)
		default:
		}
		if !c.pc.IsConnectionOpen() {
			return c.failed(ErrConnectionChanged)
		}
		if i >= window {
			conn.release() // what is awaited must be out
			if err := await(tokens[i-window], len(batch)-(i-window)); err != nil {
				return err
			}
		}
		r := &batch[i]
		topic := c.topicOf(r)
		if c.haOn && c.forwarded(r) {
			if err := c.haAnnounce(r, topic, conn); err != nil {
				return c.failed(err)
			}
		}
		start := len(buf)
		buf = c.format.Append(buf, r)
		payload := buf[start:len(buf):len(buf)]
		size += uint64(len(payload))
		conn.expect()
		tok := c.pc.Publish(topic, c.qos, c.retain, payload)
		tokens = append(tokens, tok)
		// paho blocks up to its write timeout handing a message to a stalled
		// connection, then fails the token: stop at the first such failure.
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				return c.failed(err)
			}
		default:
		}
	}
	drainWriter(ctx, conn, changed)
	if c.qos == 1 && time.Since(c.acked) >= lowatAfterIdle {
		conn.releaseAwaitingAcks()
	} else {
		conn.release()
	}
	timer.Reset(publishTimeout)
	for i := max(0, len(tokens)-window); i < len(tokens); i++ {
		select {
		case <-tokens[i].Done():
		default:
			c.quickAck() // see quickack.go
		}
		if err := await(tokens[i], len(tokens)-i); err != nil {
			return err
		}
	}
	c.mu.Lock()
	same := c.epoch == epoch
	c.mu.Unlock()
	if !same || !c.pc.IsConnectionOpen() {
		return c.failed(ErrConnectionChanged)
	}
	c.sent.Add(uint64(len(batch)))
	c.bytes.Add(size)
	c.payloads = buf // every message was acknowledged: paho holds none
	c.acked = time.Now()
	return nil
}

// maxYields bounds the yields of drainWriter: with one P, paho's writer has
// taken every message after one or two.
const maxYields = 16

// drainWriter lets paho's writer goroutine take the messages Publish issued
// before conn is released, so that a batch goes out in one write: with one
// P, the writer runs only when the publishing goroutine yields, and the last
// messages of a batch would follow the release in writes of their own. It
// yields at most maxYields times, and stops when ctx is done or the
// connection changed (the writer may then never take them).
func drainWriter(ctx context.Context, conn *bufConn, changed <-chan struct{}) {
	for i := 0; i < maxYields && conn.unwritten() > 0; i++ {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			return
		default:
		}
		runtime.Gosched()
	}
}

// failed records a publish failure for Status and returns it wrapped.
func (c *Client) failed(err error) error {
	err = fmt.Errorf("publish: %w", err)
	c.mu.Lock()
	c.setErrorLocked(err)
	c.mu.Unlock()
	return fmt.Errorf("mqtt: %w", err)
}

// topicOf returns the topic of r from the cache, computing it once per
// agent, sensor and quantity. A reading of another agent (forwarded by a
// fleet) is published under its own agent, always with its quantity: the
// forwarder does not know which of the gateway's sensors have several.
func (c *Client) topicOf(r *reading.Reading) string {
	k := topicKey{r.Agent, r.Sensor, r.Quantity}
	if t, ok := c.topics[k]; ok {
		return t
	}
	if len(c.topics) >= maxCachedTopics {
		clear(c.topics)
	}
	agent, multi := c.agent, c.multi != nil && c.multi(r.Sensor)
	if c.forwarded(r) {
		agent, multi = r.Agent, true
	}
	c.scratch = c.topic.appendTopic(c.scratch[:0], agent, r.Sensor, r.Quantity, multi)
	t := string(c.scratch)
	c.topics[k] = t
	return t
}

// forwarded reports whether r is another agent's reading.
func (c *Client) forwarded(r *reading.Reading) bool {
	return r.Agent != "" && r.Agent != c.agentID
}

// setRestart sets the restart announcement and publishes it at once when
// the connection is already up (the agent connects while it opens the
// buffer, before it knows what to announce).
func (c *Client) setRestart(b []byte) {
	c.restartMu.Lock()
	c.restart, c.restartEpoch = b, 0
	c.restartMu.Unlock()
	c.mu.Lock()
	pc, connected := c.pc, c.connected && !c.stopping
	c.mu.Unlock()
	if connected {
		go c.publishRestart(pc)
	}
}

// publishRestart publishes the restart announcement, once per connection:
// at the connection, or when it is set while connected, whichever comes
// last.
func (c *Client) publishRestart(pc paho.Client) {
	c.mu.Lock()
	epoch, up := c.epoch, c.connected && !c.stopping
	c.mu.Unlock()
	if !up {
		return
	}
	c.restartMu.Lock()
	restart := c.restart
	if restart == nil || c.restartEpoch == epoch {
		c.restartMu.Unlock()
		return
	}
	c.restartEpoch = epoch
	c.restartMu.Unlock()
	if tok := pc.Publish(c.restartTopic, 1, true, restart); tok.WaitTimeout(publishTimeout) && tok.Error() != nil {
		c.log.Debug("mqtt publish restart announcement failed", "err", tok.Error())
	}
}
