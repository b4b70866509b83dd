package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/kelvin-gw/kelvin/internal/mqttclient"
)

// Subscription is one sensor fed by an MQTT topic.
type Subscription struct {
	Sensor string
	Topic  string // an exact topic, no wildcards
	// ValuePath picks the value out of a JSON payload: "$.AM2301.Temperature"
	// (Tasmota), "$.temperature" (Zigbee2MQTT); empty means the payload is
	// the bare number (ESPHome's state topics).
	ValuePath string
}

// CheckPath reports whether path is a value path ValueAt understands.
func CheckPath(path string) error {
	if path == "" || path == "$" {
		return nil
	}
	rest, ok := strings.CutPrefix(path, "$.")
	if !ok {
		return fmt.Errorf("want $.field or $.field.subfield, got %q", path)
	}
	for _, k := range strings.Split(rest, ".") {
		if k == "" {
			return fmt.Errorf("empty field name in %q", path)
		}
	}
	return nil
}

// ValueAt returns the number at path in payload (see Subscription).
// Numbers in JSON strings ("21.5") are accepted, as some firmwares send
// them; anything else (hex floats, "inf", an object with a key twice) is
// an ErrBadInput.
func ValueAt(payload []byte, path string) (float64, error) {
	payload = bytes.TrimSpace(payload)
	if path == "" {
		v, err := parseDecimal(string(payload))
		if err != nil {
			return 0, bad("payload %.40q is not a number", payload)
		}
		return v, checkItem(Item{Sensor: "-", Value: v})
	}
	if err := noDuplicateKeys(payload); err != nil {
		return 0, err
	}
	var doc any
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil {
		return 0, bad("payload is not JSON: %v", err)
	}
	if rest, ok := strings.CutPrefix(path, "$."); ok {
		for _, k := range strings.Split(rest, ".") {
			m, ok := doc.(map[string]any)
			if !ok {
				return 0, bad("%s: no field %q in the payload", path, k)
			}
			if doc, ok = m[k]; !ok {
				return 0, bad("%s: no field %q in the payload", path, k)
			}
		}
	}
	var s string
	switch v := doc.(type) {
	case json.Number:
		s = v.String()
	case string:
		s = strings.TrimSpace(v)
	default:
		return 0, bad("%s: want a number, got %T", path, doc)
	}
	v, err := parseDecimal(s)
	if err != nil {
		return 0, bad("%s: want a number, got %q", path, s)
	}
	return v, checkItem(Item{Sensor: "-", Value: v})
}

// Session takeover detection of the subscriber: see Run.
const (
	takeoverWindow = 5 * time.Second
	takeoverWarn   = 3
)

// SubscriberConfig is the broker readings are taken from.
type SubscriberConfig struct {
	URL          string
	ClientID     string
	Username     string
	Password     string
	ConnectRetry time.Duration // between connection attempts; default 5s
	// MaxPayload bounds a message's payload, in bytes; default
	// DefaultMaxPayload. A larger one is discarded as it arrives, never
	// held in memory, counted (TooLarge) and reported to fail as
	// ErrTooLarge.
	MaxPayload int
}

// Subscriber takes readings from MQTT topics and hands them to deliver, one
// message at a time; a message whose value cannot be read, or that is
// larger than MaxPayload, is dropped and reported to fail; one deliver
// refuses is dropped with a log line.
type Subscriber struct {
	cfg     SubscriberConfig
	subs    map[string]Subscription // by topic
	deliver func(ctx context.Context, items []Item) error
	fail    func(sensor string, err error)
	log     *slog.Logger

	tooLargeN atomic.Uint64

	mu        sync.Mutex
	ctx       context.Context
	discarded map[string]int // by topic: oversized payloads whose empty stand-in is still to come

	connected atomic.Bool
}

// URL returns the broker's address.
func (s *Subscriber) URL() string { return s.cfg.URL }

// Connected reports whether the subscriber is connected to its broker; safe
// for concurrent use.
func (s *Subscriber) Connected() bool { return s.connected.Load() }

// NewSubscriber prepares a subscriber; Run connects it.
func NewSubscriber(cfg SubscriberConfig, subs []Subscription, deliver func(context.Context, []Item) error,
	fail func(sensor string, err error), log *slog.Logger) *Subscriber {
	if cfg.ConnectRetry == 0 {
		cfg.ConnectRetry = 5 * time.Second
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	s := &Subscriber{cfg: cfg, subs: map[string]Subscription{}, deliver: deliver, fail: fail, log: log, discarded: map[string]int{}}
	for _, sub := range subs {
		s.subs[sub.Topic] = sub
	}
	return s
}

// Run connects, subscribes (again after every reconnection) and takes
// messages until ctx is done.
func (s *Subscriber) Run(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	// A connection lost within takeoverWindow of being made is most often
	// another client with the same client id taking the session over;
	// paho already backs off such losses. After takeoverWarn in a row it is
	// said once, and the losses are then logged at debug.
	var (
		upAt  atomic.Int64 // unix ns of the last connection
		drops atomic.Int32 // quick losses in a row
	)
	topics := make([]string, 0, len(s.subs))
	for t := range s.subs {
		topics = append(topics, t)
	}
	err := mqttclient.Run(ctx, mqttclient.Options{
		URL:                  s.cfg.URL,
		ClientID:             s.cfg.ClientID,
		Username:             s.cfg.Username,
		Password:             s.cfg.Password,
		RetryInterval:        s.cfg.ConnectRetry,
		MaxReconnectInterval: 30 * time.Second,
		Topics:               topics,
		Handle:               s.onMessage,
		Dial:                 s.dial,
		OnConnect: func() {
			s.connected.Store(true)
			upAt.Store(time.Now().UnixNano())
		},
		OnLost: func(err error) {
			s.connected.Store(false)
			var n int32
			if time.Since(time.Unix(0, upAt.Load())) < takeoverWindow {
				n = drops.Add(1)
			} else {
				drops.Store(0)
			}
			switch {
			case n == takeoverWarn:
				s.log.Error("mqtt input: another client with the same client id keeps taking over the session: "+
					"two gateways with the same agent.id (or mqtt_in.client_id) are connected to this broker. "+
					"Give each gateway its own agent.id", "client_id", s.cfg.ClientID, "url", s.cfg.URL, "drops", n)
			case n > takeoverWarn:
				s.log.Debug("mqtt input: connection lost, reconnecting", "err", err)
			default:
				s.log.Warn("mqtt input: connection lost, reconnecting", "err", err)
			}
		},
		Log:  s.log,
		Name: "mqtt input",
	})
	s.connected.Store(false)
	return err
}

// TooLarge returns how many payloads were larger than MaxPayload, since
// NewSubscriber. Safe for concurrent use.
func (s *Subscriber) TooLarge() uint64 { return s.tooLargeN.Load() }

// tooLarge counts and reports a payload the connection discarded; the
// message reaches onMessage with an empty payload, which it then skips.
func (s *Subscriber) tooLarge(topic string, size int, retained bool) {
	s.tooLargeN.Add(1)
	sub, ok := s.subs[topic]
	if !ok || retained {
		return
	}
	s.mu.Lock()
	s.discarded[topic]++
	s.mu.Unlock()
	s.fail(sub.Sensor, fmt.Errorf("topic %s: a payload of %d bytes, over the limit of %d: %w", topic, size, s.cfg.MaxPayload, ErrTooLarge))
}

func (s *Subscriber) onMessage(_ paho.Client, m paho.Message) {
	sub, ok := s.subs[m.Topic()]
	// A retained message is a device's last value, sent again on every
	// (re)subscription: not a new reading.
	if !ok || m.Retained() {
		return
	}
	s.mu.Lock()
	ctx := s.ctx
	discarded := len(m.Payload()) == 0 && s.discarded[m.Topic()] > 0
	if discarded {
		s.discarded[m.Topic()]--
	}
	s.mu.Unlock()
	if discarded { // reported by tooLarge
		return
	}
	v, err := ValueAt(m.Payload(), sub.ValuePath)
	if err != nil {
		s.fail(sub.Sensor, fmt.Errorf("topic %s: %w", m.Topic(), err))
		return
	}
	if err := s.deliver(ctx, []Item{{Sensor: sub.Sensor, Value: v}}); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("mqtt input: reading not taken", "sensor", sub.Sensor, "topic", m.Topic(), "err", err)
	}
}
