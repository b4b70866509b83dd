package mqtt

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
)

// TLSConfig holds the TLS settings of a Config. They apply only to the
// ssl://, tls://, mqtts:// and wss:// schemes.
type TLSConfig struct {
	// CA is a PEM file of the CAs to trust; empty means the system roots.
	CA string `yaml:"ca"`
	// Cert is the client certificate PEM file; it needs Key.
	Cert string `yaml:"cert"`
	// Key is the client key PEM file; it needs Cert.
	Key string `yaml:"key"`
	// InsecureSkipVerify disables the verification of the broker's
	// certificate. For tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Config is the configuration of the MQTT output. Decode it over
// DefaultConfig() so that omitted keys take their defaults.
type Config struct {
	// URL is the broker: tcp://, mqtt://, ssl://, tls://, mqtts://, ws://
	// or wss://. Without a port, tcp and mqtt take 1883 and the TLS schemes
	// 8883. A password in the URL is used but never shown.
	URL string `yaml:"url"`
	// Topic is the template of the topic of each reading, with the
	// placeholders {agent}, {sensor} and {quantity}; empty means
	// DefaultTopic.
	Topic string `yaml:"topic"`
	// QoS is the MQTT QoS of the readings: 0, 1 or 2. DefaultConfig sets 1;
	// New takes the value as given.
	QoS int `yaml:"qos"`
	// Retain sets the retain flag on the readings.
	Retain bool `yaml:"retain"`
	// Format is the payload of each reading: json (the default), influx
	// (InfluxDB line protocol), value (the bare number) or senml (RFC 8428).
	Format string `yaml:"format"`
	// HomeAssistant publishes retained MQTT discovery configs, one per
	// sensor quantity (HASensors), under HomeAssistantPrefix (default
	// "homeassistant"), so that Home Assistant creates the sensors itself.
	// It needs Format json or value.
	HomeAssistant       bool   `yaml:"homeassistant"`
	HomeAssistantPrefix string `yaml:"homeassistant_prefix"`
	// HASensors and HADevice are what discovery announces; the agent sets
	// them from its config.
	HASensors []HASensor `yaml:"-"`
	HADevice  HADevice   `yaml:"-"`
	// ClientID is the MQTT client id, where {agent} is replaced; empty means
	// DefaultClientID.
	ClientID string `yaml:"client_id"`
	// Username is the MQTT user name; empty means none.
	Username string `yaml:"username"`
	// PasswordFile is a file holding the password, trailing newline
	// trimmed; empty means no password.
	PasswordFile string `yaml:"password_file"`
	// TLS is used by the TLS schemes.
	TLS TLSConfig `yaml:"tls"`
	// KeepAlive is the MQTT keep-alive: with nothing else to send, the
	// agent pings the broker this often, and a broker that hears nothing
	// for one and a half times it takes the agent for gone and publishes
	// its last will (status "offline"). Whole seconds, 1s to 65535s; zero
	// means DefaultKeepAlive.
	KeepAlive time.Duration `yaml:"keepalive"`
	// MultiQuantity reports whether a sensor publishes more than one
	// quantity; for such sensors "/{quantity}" is appended to the topic
	// unless the template already contains {quantity}. Set by the agent;
	// nil means no sensor does. It is called from Publish, once per sensor
	// and quantity.
	MultiQuantity func(sensor string) bool `yaml:"-"`
}

// Defaults of Config.
const (
	DefaultTopic    = "kelvin/{agent}/{sensor}"
	DefaultClientID = "kelvin-{agent}"
	DefaultQoS      = 1
	// DefaultKeepAlive is paho's own default.
	DefaultKeepAlive = 30 * time.Second
)

// CheckKeepAlive returns why d cannot be an MQTT keep-alive, or nil: the
// protocol carries it as a 16-bit count of seconds. Zero (the default) is
// fine.
func CheckKeepAlive(d time.Duration) error {
	if d == 0 {
		return nil
	}
	if d < time.Second || d > 65535*time.Second || d%time.Second != 0 {
		return fmt.Errorf("%v: want whole seconds from 1s to 65535s (18h12m15s); leave it out for %v", d, DefaultKeepAlive)
	}
	return nil
}

// DefaultConfig returns the Config that a configuration file is decoded
// over: DefaultTopic, DefaultQoS, DefaultClientID and DefaultKeepAlive.
func DefaultConfig() Config {
	return Config{Topic: DefaultTopic, QoS: DefaultQoS, ClientID: DefaultClientID, KeepAlive: DefaultKeepAlive}
}

// SetDefaults fills in the topic, client id and keep-alive left empty. QoS is left as
// it is, since 0 is a valid choice: a decoder that knows the key was
// absent sets DefaultQoS.
func (c *Config) SetDefaults() {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
}

// Validate returns every problem of c at once, joined, each naming its key,
// or nil. It reads no file; New does.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("mqtt: "+format, args...))
	}
	u, err := parseURL(c.URL)
	if err != nil {
		add("url: %w", err)
	}
	if c.Format != "" {
		if _, err := reading.ParseFormat(c.Format); err != nil {
			add("format: %w", err)
		}
	}
	if c.HomeAssistant && c.Format != "" && c.Format != "json" && c.Format != "value" {
		add("homeassistant: needs format json or value (Home Assistant cannot read %s), got format %q", c.Format, c.Format)
	}
	if p := c.HomeAssistantPrefix; p != "" && (strings.ContainsAny(p, "+#") || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/")) {
		add("homeassistant_prefix %q: a topic prefix without + # or a leading or trailing /", p)
	}
	if c.QoS < 0 || c.QoS > 2 {
		add("qos %d: must be 0, 1 or 2", c.QoS)
	}
	if err := CheckKeepAlive(c.KeepAlive); err != nil {
		add("keepalive %w", err)
	}
	if c.Topic != "" {
		if _, err := parseTopic(c.Topic); err != nil {
			add("topic %q: %w", c.Topic, err)
		}
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		add("tls: cert and key go together")
	}
	hasTLS := c.TLS != TLSConfig{}
	if u != nil && hasTLS && !isTLS(u.Scheme) {
		add("tls: set, but url scheme %q is not a TLS one (ssl, tls, mqtts, wss)", u.Scheme)
	}
	if c.PasswordFile != "" && c.Username == "" && (u == nil || u.User == nil) {
		add("password_file: set without username")
	}
	return errors.Join(errs...)
}

func isTLS(scheme string) bool {
	switch scheme {
	case "ssl", "tls", "mqtts", "wss":
		return true
	}
	return false
}

// parseURL checks a broker URL and adds the default port.
func parseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("missing")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	var port string
	switch u.Scheme {
	case "tcp", "mqtt":
		port = "1883"
	case "ssl", "tls", "mqtts":
		port = "8883"
	case "ws", "wss":
	default:
		return nil, fmt.Errorf("%q: scheme must be tcp, mqtt, ssl, tls, mqtts, ws or wss", raw)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%q: no host", raw)
	}
	if port != "" && u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	return u, nil
}

// redact returns u without its password.
func redact(u *url.URL) string {
	r := *u
	if r.User != nil {
		r.User = url.User(r.User.Username())
	}
	return r.String()
}

// fileError names the config key and the file, and keeps the cause:
// "mqtt: password_file /x: no such file or directory".
func fileError(key, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("mqtt: %s %s: %w", key, path, err)
}

func readPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fileError("password_file", path, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// tlsConfig loads the files of c.
func (c TLSConfig) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CA != "" {
		pem, err := os.ReadFile(c.CA)
		if err != nil {
			return nil, fileError("tls.ca", c.CA, err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fileError("tls.ca", c.CA, errors.New("no PEM certificate found"))
		}
	}
	if c.Cert != "" {
		for key, path := range map[string]string{"tls.cert": c.Cert, "tls.key": c.Key} {
			if _, err := os.Stat(path); err != nil {
				return nil, fileError(key, path, err)
			}
		}
		cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("mqtt: tls.cert %s, tls.key %s: %w", c.Cert, c.Key, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
