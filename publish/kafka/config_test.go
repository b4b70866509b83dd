//go:build !nokafka

package kafka

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSetDefaults(t *testing.T) {
	t.Parallel()
	cfg := Config{Brokers: []string{"127.0.0.1:9092"}}
	cfg.SetDefaults()
	if cfg.Topic != "kelvin.readings" || cfg.Compression != "zstd" || cfg.Linger != 50*time.Millisecond || cfg.TLS != nil {
		t.Errorf("defaults: %+v", cfg)
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Errorf("Validate: %v", errs)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"no broker", func(c *Config) { c.Brokers = nil },
			[]string{"brokers: at least one broker is needed"}},
		{"broker without port", func(c *Config) { c.Brokers = []string{"127.0.0.1:9092", "kafka"} },
			[]string{`brokers[1]: want host:port, got "kafka"`}},
		{"broker port zero", func(c *Config) { c.Brokers = []string{"kafka:0"} },
			[]string{`brokers[0]: want a port between 1 and 65535, got "kafka:0"`}},
		{"compression", func(c *Config) { c.Compression = "brotli" },
			[]string{`compression: want one of none, gzip, snappy, lz4, zstd, got "brotli"`}},
		{"negative linger", func(c *Config) { c.Linger = -time.Second },
			[]string{"linger: want between 0s and 10s, got -1s"}},
		{"long linger", func(c *Config) { c.Linger = time.Minute },
			[]string{"linger: want between 0s and 10s, got 1m0s"}},
		{"topic character", func(c *Config) { c.Topic = "kelvin readings" },
			[]string{`topic: character ' ' is not allowed in a Kafka topic name (allowed: a-z A-Z 0-9 . _ -)`}},
		{"topic placeholder", func(c *Config) { c.Topic = "{site}.readings" },
			[]string{"topic: unknown placeholder {site}, want {agent}, {sensor} or {quantity}"}},
		{"topic unclosed", func(c *Config) { c.Topic = "kelvin.{agent" },
			[]string{`topic: "{" without a closing "}" in "kelvin.{agent"`}},
		{"topic unopened", func(c *Config) { c.Topic = "kelvin.agent}" },
			[]string{`topic: "}" without an opening "{" in "kelvin.agent}"`}},
		{"topic dot", func(c *Config) { c.Topic = ".." },
			[]string{`topic: ".." is not a valid Kafka topic name`}},
		{"topic too long", func(c *Config) { c.Topic = strings.Repeat("k", 250) },
			[]string{"topic: 250 characters is longer than Kafka's limit of 249"}},
		{"tls cert without key", func(c *Config) { c.TLS = &TLSConfig{Cert: "c.pem"} },
			[]string{"tls.key: needed with tls.cert"}},
		{"tls key without cert", func(c *Config) { c.TLS = &TLSConfig{Key: "c.key"} },
			[]string{"tls.cert: needed with tls.key"}},
		{"sasl mechanism", func(c *Config) { c.SASL = SASLConfig{Mechanism: "GSSAPI", Username: "u", PasswordFile: "p"} },
			[]string{`sasl.mechanism: want one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, got "GSSAPI"`}},
		{"sasl without credentials", func(c *Config) { c.SASL = SASLConfig{Mechanism: "PLAIN"} },
			[]string{"sasl.username: needed with a mechanism", "sasl.password_file: needed with a mechanism"}},
		{"sasl credentials without mechanism", func(c *Config) { c.SASL = SASLConfig{Username: "u", PasswordFile: "p"} },
			[]string{"sasl.mechanism: needed with sasl.username or sasl.password_file (want one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"}},
		{"everything at once", func(c *Config) { *c = Config{Compression: "lzma", Topic: "a/b", Linger: -1} },
			[]string{
				"brokers: at least one broker is needed",
				`topic: character '/' is not allowed in a Kafka topic name (allowed: a-z A-Z 0-9 . _ -)`,
				`compression: want one of none, gzip, snappy, lz4, zstd, got "lzma"`,
				"linger: want between 0s and 10s, got -1ns",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Brokers: []string{"127.0.0.1:9092"}}
			cfg.SetDefaults()
			tc.edit(&cfg)
			var got []string
			for _, err := range cfg.Validate() {
				got = append(got, err.Error())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Validate:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestNewErrors checks New reads the files it needs and names them when it
// cannot.
func TestNewErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	empty := writeFile(t, "empty", "\n")
	notPEM := writeFile(t, "ca.pem", "not a certificate")
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"password file missing", func(c *Config) {
			c.SASL = SASLConfig{Mechanism: "PLAIN", Username: "u", PasswordFile: missing}
		}, "kafka: read sasl.password_file: open " + missing + ": no such file or directory"},
		{"password file empty", func(c *Config) {
			c.SASL = SASLConfig{Mechanism: "PLAIN", Username: "u", PasswordFile: empty}
		}, "kafka: sasl.password_file " + empty + ": empty password"},
		{"ca missing", func(c *Config) { c.TLS = &TLSConfig{CA: missing} },
			"kafka: read tls.ca: open " + missing + ": no such file or directory"},
		{"ca not PEM", func(c *Config) { c.TLS = &TLSConfig{CA: notPEM} },
			"kafka: tls.ca " + notPEM + ": no PEM certificate found"},
		{"client cert missing", func(c *Config) { c.TLS = &TLSConfig{Cert: missing, Key: missing} },
			"kafka: load tls.cert " + missing + " and tls.key " + missing + ": open " + missing + ": no such file or directory"},
		{"invalid config", func(c *Config) { c.Compression = "brotli" },
			`kafka: invalid config: compression: want one of none, gzip, snappy, lz4, zstd, got "brotli"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig([]string{"127.0.0.1:9"})
			tc.edit(&cfg)
			o, err := New(cfg, testAgent, nil)
			if err == nil {
				o.Close()
				t.Fatal("New succeeded")
			}
			if err.Error() != tc.want {
				t.Errorf("New:\n got %s\nwant %s", err, tc.want)
			}
		})
	}
	if _, err := New(testConfig([]string{"127.0.0.1:9"}), "", nil); err == nil {
		t.Error("New with an empty agent id succeeded")
	}
}
