package kafka

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/kelvin-gw/kelvin/internal/kafkaauth"
	"github.com/kelvin-gw/kelvin/reading"
)

// Defaults applied by SetDefaults.
const (
	// DefaultTopic is the topic template used when Config.Topic is empty.
	DefaultTopic = "kelvin.readings"
	// DefaultCompression is the batch compression used when
	// Config.Compression is empty.
	DefaultCompression = "zstd"
	// DefaultLinger is the Config.Linger used when it is zero.
	DefaultLinger = 50 * time.Millisecond
	// MaxLinger is the largest Config.Linger accepted by Validate.
	MaxLinger = 10 * time.Second
)

// Compressions returns the codecs accepted in Config.Compression, in the
// order error messages list them; the config schema lists the same.
func Compressions() []string { return []string{"none", "gzip", "snappy", "lz4", "zstd"} }

// SASL mechanisms accepted in SASLConfig.Mechanism (kafkaauth's).
const (
	// MechanismPlain is SASL/PLAIN: the password as is, for use over TLS.
	MechanismPlain = kafkaauth.MechanismPlain
	// MechanismSCRAMSHA256 is SASL/SCRAM with SHA-256 (RFC 7677).
	MechanismSCRAMSHA256 = kafkaauth.MechanismSCRAMSHA256
	// MechanismSCRAMSHA512 is SASL/SCRAM with SHA-512.
	MechanismSCRAMSHA512 = kafkaauth.MechanismSCRAMSHA512
)

// Mechanisms returns the SASL mechanisms accepted in SASLConfig.Mechanism
// (besides "", none); the config schema lists the same.
func Mechanisms() []string { return kafkaauth.Mechanisms() }

// TLSConfig enables TLS towards the brokers: the tls section, shared with
// the fleet's Kafka source. File names are read once, by New.
type TLSConfig = kafkaauth.TLSConfig

// SASLConfig authenticates the producer: the sasl section, shared with the
// fleet's Kafka source. The zero value means no authentication.
type SASLConfig = kafkaauth.SASLConfig

// Config configures the Kafka output, decoded from YAML. The zero value
// plus Brokers is a working config once SetDefaults has run. A Config is a
// plain value: copy it freely, do not change it while New uses it.
type Config struct {
	// Brokers are the host:port seed brokers; the client discovers the
	// rest of the cluster from them.
	Brokers []string `yaml:"brokers"`
	// Topic is the topic name template. {agent}, {sensor} and {quantity}
	// are replaced by the reading's fields, with characters Kafka does not
	// allow in topic names replaced by "_". Default "kelvin.readings".
	Topic string `yaml:"topic"`
	// Compression is the record batch compression: none, gzip, snappy,
	// lz4 or zstd. Default zstd.
	Compression string `yaml:"compression"`
	// Linger is how long the producer may hold a partition's records
	// to batch them while Publish buffers a batch; Publish flushes as soon
	// as the whole batch is buffered, so Linger caps batching and adds no
	// latency. Default 50ms (zero means the default); at most 10s.
	Linger time.Duration `yaml:"linger"`
	// TLS enables TLS; nil means plaintext.
	TLS *TLSConfig `yaml:"tls"`
	// SASL enables authentication.
	SASL SASLConfig `yaml:"sasl"`
	// Format is the record value: json (the default), influx (InfluxDB
	// line protocol), value (the bare number) or senml (RFC 8428).
	Format string `yaml:"format"`
}

// SetDefaults fills in the defaults of every unset field. It is the one
// place defaults are applied; call it before Validate.
func (c *Config) SetDefaults() {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.Compression == "" {
		c.Compression = DefaultCompression
	}
	if c.Linger == 0 {
		c.Linger = DefaultLinger
	}
}

// Validate returns every problem with c, one error per bad field, each
// with the message "key: problem" (keys relative to the output's section).
// It expects SetDefaults to have run and does not read any file.
func (c Config) Validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}

	if len(c.Brokers) == 0 {
		bad("brokers", "at least one broker is needed")
	}
	for i, b := range c.Brokers {
		if err := checkHostPort(b); err != nil {
			bad(fmt.Sprintf("brokers[%d]", i), "%v", err)
		}
	}

	if _, err := parseTopic(c.Topic); err != nil {
		bad("topic", "%v", err)
	}

	if c.Format != "" {
		if _, err := reading.ParseFormat(c.Format); err != nil {
			bad("format", "%v", err)
		}
	}
	if !oneOf(c.Compression, Compressions()) {
		bad("compression", "want one of %s, got %q", strings.Join(Compressions(), ", "), c.Compression)
	}

	if c.Linger < 0 || c.Linger > MaxLinger {
		bad("linger", "want between 0s and %v, got %v", MaxLinger, c.Linger)
	}

	errs = append(errs, kafkaauth.Validate(c.TLS, c.SASL)...)
	return errs
}

func oneOf(s string, set []string) bool {
	for _, v := range set {
		if s == v {
			return true
		}
	}
	return false
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("want host:port, got %q", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("want a port between 1 and 65535, got %q", s)
	}
	return nil
}
