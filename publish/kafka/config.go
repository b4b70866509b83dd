package kafka

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

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

// SASL mechanisms accepted in SASLConfig.Mechanism.
const (
	// MechanismPlain is SASL/PLAIN: the password as is, for use over TLS.
	MechanismPlain = "PLAIN"
	// MechanismSCRAMSHA256 is SASL/SCRAM with SHA-256 (RFC 7677).
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	// MechanismSCRAMSHA512 is SASL/SCRAM with SHA-512.
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

// Mechanisms returns the SASL mechanisms accepted in SASLConfig.Mechanism
// (besides "", none); the config schema lists the same.
func Mechanisms() []string {
	return []string{MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512}
}

// TLSConfig enables TLS towards the brokers. File names are read once, by
// New. An empty TLSConfig verifies the brokers against the system roots.
type TLSConfig struct {
	// CA is a PEM file of the certificate authorities that sign the
	// brokers' certificates; empty means the system roots.
	CA string `yaml:"ca"`
	// Cert is a PEM client certificate for mutual TLS; needs Key.
	Cert string `yaml:"cert"`
	// Key is the PEM private key of Cert; needs Cert.
	Key string `yaml:"key"`
	// InsecureSkipVerify turns off verification of the brokers'
	// certificates. For tests only: it makes TLS worthless against an
	// attacker on the path.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// SASLConfig authenticates the producer. The zero value (no mechanism)
// means no authentication.
type SASLConfig struct {
	// Mechanism is "" (none), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512,
	// matched without regard to case. PLAIN sends the password as is: use
	// it only with TLS.
	Mechanism string `yaml:"mechanism"`
	// Username is the SASL user; needed with a mechanism.
	Username string `yaml:"username"`
	// PasswordFile is a file holding the password (a trailing newline is
	// ignored). It is read by New and again on every new broker
	// connection, so a rotated password is picked up without a restart.
	PasswordFile string `yaml:"password_file"`
}

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

	if t := c.TLS; t != nil {
		if t.Cert != "" && t.Key == "" {
			bad("tls.key", "needed with tls.cert")
		}
		if t.Key != "" && t.Cert == "" {
			bad("tls.cert", "needed with tls.key")
		}
	}

	s := c.SASL
	switch {
	case s.Mechanism == "":
		if s.Username != "" || s.PasswordFile != "" {
			bad("sasl.mechanism", "needed with sasl.username or sasl.password_file (want one of %s, %s, %s)",
				MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512)
		}
	case mechanism(s.Mechanism) == "":
		bad("sasl.mechanism", "want one of %s, %s, %s, got %q",
			MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512, s.Mechanism)
	default:
		if s.Username == "" {
			bad("sasl.username", "needed with a mechanism")
		}
		if s.PasswordFile == "" {
			bad("sasl.password_file", "needed with a mechanism")
		}
	}
	return errs
}

// mechanism returns the canonical name of a SASL mechanism, or "" when m is
// not one Kelvin supports.
func mechanism(m string) string {
	for _, known := range Mechanisms() {
		if strings.EqualFold(m, known) {
			return known
		}
	}
	return ""
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
