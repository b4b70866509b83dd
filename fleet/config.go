package fleet

import (
	"cmp"
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kelvin-gw/kelvin/filter"
	"github.com/kelvin-gw/kelvin/internal/kafkaauth"
	"github.com/kelvin-gw/kelvin/internal/mqttclient"
)

// Defaults applied by Config.SetDefaults.
const (
	DefaultURL           = "tcp://localhost:1883"
	DefaultTopic         = "kelvin/#"
	DefaultDiscovery     = "homeassistant/sensor/+/+/config" // where gateways announce their page
	DefaultKafkaTopic    = "kelvin.readings"
	DefaultLossAfter     = 10 * time.Minute
	DefaultSilentAfter   = 30 * time.Minute
	DefaultMaxGateways   = 2000
	DefaultMaxSensors    = 64
	DefaultHistoryPoints = 300
)

// Config is the fleet section of kelvin.yaml: where the fleet's readings
// come from and how much of them is kept. Read-only once passed to New.
type Config struct {
	// MQTT is the central broker the gateways publish to. With neither
	// MQTT nor Kafka set, the fleet follows DefaultURL.
	MQTT *MQTTConfig `yaml:"mqtt"`
	// Kafka is the topic the gateways produce to, read as a consumer group.
	Kafka *KafkaConfig `yaml:"kafka"`
	// LossAfter is how long a missing seq may stay missing (a gateway
	// still draining its backlog fills it) before it is counted as lost;
	// default 10m.
	LossAfter time.Duration `yaml:"loss_after"`
	// SilentAfter bounds how long a gateway may go unheard (no reading,
	// no status) before the fleet shows it "silent" rather than online;
	// default 30m, at least 10s. Each gateway's own limit is three times
	// its usual interval between messages (the median of its last 8),
	// at least a minute (or SilentAfter when shorter) and at most
	// SilentAfter, which also applies before an interval is known. A
	// gateway whose last MQTT status says online, while the MQTT source
	// is connected, is not silent: its broker would have published its
	// last will.
	SilentAfter time.Duration `yaml:"silent_after"`
	// MaxGateways bounds the gateways tracked (default 2000); readings of
	// any more are refused and counted.
	MaxGateways int `yaml:"max_gateways"`
	// MaxSensors bounds the sensors tracked per gateway (default 64).
	MaxSensors int `yaml:"max_sensors"`
	// HistoryPoints is how many readings per series the fleet keeps in
	// memory for the charts (default 300: 5 minutes at 1 Hz).
	HistoryPoints int `yaml:"history_points"`
	// Archive, when set, keeps every fleet series' min, mean and max per
	// minute on disk for this long (at least 1h), for the page's 24 h and
	// 7 d charts: 40 bytes per series per minute, one file per series.
	// Default 0: off.
	Archive time.Duration `yaml:"archive"`

	// StateDir is where the exactly-once state (per gateway and sensor:
	// the highest seq, the open gaps, the counts) is kept across restarts,
	// one file written at most once a minute and at stop; the agent's
	// default is agent.data_dir/fleet. Empty: kept in memory only.
	StateDir string `yaml:"state_dir"`

	// Rules are filter chains for fleet series, the first matching rule
	// per series; the agent decodes them from fleet.filters.
	Rules []Rule `yaml:"-"`
}

// Rule applies a filter chain to the series whose "AGENT/SENSOR" matches
// Match (path.Match syntax: "greenhouse-*/tank", "*/*").
type Rule struct {
	Match string
	Specs []filter.Spec
}

// MQTTConfig is a broker to follow.
type MQTTConfig struct {
	URL string `yaml:"url"` // default tcp://localhost:1883
	// ClientID is the fleet's session; default kelvin-fleet-{agent}. The
	// session is persistent (clean session off), so the broker keeps the
	// QoS 1 readings that arrive while the fleet is down.
	ClientID     string `yaml:"client_id"`
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// Topics are the filters subscribed to: by default kelvin/# (readings,
	// status, restart announcements) and homeassistant/sensor/+/+/config,
	// where gateways with mqtt.homeassistant announce their page.
	Topics []string `yaml:"topics"`
}

// KafkaConfig is a Kafka topic to follow as a consumer group.
type KafkaConfig struct {
	Brokers []string `yaml:"brokers"`
	Topic   string   `yaml:"topic"` // default kelvin.readings
	// Group is the consumer group; default kelvin-fleet-{agent}. Its
	// committed offsets make a restart resume where it stopped. Each
	// fleet instance with its own group sees every reading; instances
	// sharing a group share the partitions.
	Group string `yaml:"group"`
	// Start is where a group without committed offsets begins: earliest
	// (the default) or latest.
	Start string `yaml:"start"`
	// TLS enables TLS towards the brokers (nil: plaintext), with the
	// same keys and meaning as the Kafka output's kafka.tls.
	TLS *kafkaauth.TLSConfig `yaml:"tls"`
	// SASL authenticates the consumer, with the same keys and meaning as
	// the Kafka output's kafka.sasl.
	SASL kafkaauth.SASLConfig `yaml:"sasl"`
}

// SetDefaults fills zero fields with their defaults; agent names the
// instance in default client ids and groups.
func (c *Config) SetDefaults(agent string) {
	if c.MQTT == nil && c.Kafka == nil {
		c.MQTT = &MQTTConfig{}
	}
	if m := c.MQTT; m != nil {
		m.URL = cmp.Or(m.URL, DefaultURL)
		m.ClientID = cmp.Or(m.ClientID, "kelvin-fleet-"+agent)
		if len(m.Topics) == 0 {
			m.Topics = []string{DefaultTopic, DefaultDiscovery}
		}
	}
	if k := c.Kafka; k != nil {
		k.Topic = cmp.Or(k.Topic, DefaultKafkaTopic)
		k.Group = cmp.Or(k.Group, "kelvin-fleet-"+agent)
		k.Start = cmp.Or(k.Start, "earliest")
	}
	c.LossAfter = cmp.Or(c.LossAfter, DefaultLossAfter)
	c.SilentAfter = cmp.Or(c.SilentAfter, DefaultSilentAfter)
	c.MaxGateways = cmp.Or(c.MaxGateways, DefaultMaxGateways)
	c.MaxSensors = cmp.Or(c.MaxSensors, DefaultMaxSensors)
	c.HistoryPoints = cmp.Or(c.HistoryPoints, DefaultHistoryPoints)
}

// Validate returns every problem, each as "key: message", once
// SetDefaults has run.
func (c *Config) Validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, errors.New(key+": "+fmt.Sprintf(format, args...)))
	}
	if m := c.MQTT; m != nil {
		if err := mqttclient.CheckURL(m.URL); err != nil {
			bad("mqtt.url", "%v", err)
		}
		for i, t := range m.Topics {
			if t == "" || strings.Contains(t, "#") && !strings.HasSuffix(t, "#") {
				bad("mqtt.topics["+strconv.Itoa(i)+"]", "%q: want a topic filter like kelvin/#", t)
			}
		}
		if m.PasswordFile != "" && m.Username == "" {
			bad("mqtt.password_file", "needs mqtt.username")
		}
	}
	if k := c.Kafka; k != nil {
		if len(k.Brokers) == 0 {
			bad("kafka.brokers", "at least one broker is needed, e.g. [kafka.lan:9092]")
		}
		for i, b := range k.Brokers {
			if !strings.Contains(b, ":") {
				bad("kafka.brokers["+strconv.Itoa(i)+"]", "%q: want host:port", b)
			}
		}
		if strings.ContainsAny(k.Topic, "{}") {
			bad("kafka.topic", "%q: the fleet reads one topic, without placeholders", k.Topic)
		}
		if k.Start != "earliest" && k.Start != "latest" {
			bad("kafka.start", "want earliest or latest, got %q", k.Start)
		}
		for _, err := range kafkaauth.Validate(k.TLS, k.SASL) {
			errs = append(errs, errors.New("kafka."+err.Error()))
		}
	}
	if c.LossAfter < time.Second {
		bad("loss_after", "%v is too short: at least 1s", c.LossAfter)
	}
	if c.SilentAfter < 10*time.Second {
		bad("silent_after", "%v is too short: at least 10s", c.SilentAfter)
	}
	if c.Archive != 0 && c.Archive < time.Hour {
		bad("archive", "%v is too short: 0 (off) or at least 1h", c.Archive)
	}
	for i, v := range [...]int{c.MaxGateways, c.MaxSensors, c.HistoryPoints} {
		if v < 1 || v > 1_000_000 {
			bad([...]string{"max_gateways", "max_sensors", "history_points"}[i], "want 1 to 1000000, got %d", v)
		}
	}
	for i, r := range c.Rules {
		if _, err := path.Match(r.Match, ""); err != nil || r.Match == "" {
			bad("filters["+strconv.Itoa(i)+"].match", "%q: want AGENT/SENSOR with * wildcards, like greenhouse-*/tank", r.Match)
		}
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errs
}

// ErrNoSource is returned by Run when no source could be started.
var ErrNoSource = errors.New("fleet: no source configured")
