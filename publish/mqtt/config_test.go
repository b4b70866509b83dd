package mqtt

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.URL = "tcp://broker.lan"
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v", ok, err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no url", func(c *Config) { c.URL = "" }, "mqtt: url: missing"},
		{"scheme", func(c *Config) { c.URL = "http://broker.lan" },
			`mqtt: url: "http://broker.lan": scheme must be tcp, mqtt, ssl, tls, mqtts, ws or wss`},
		{"no host", func(c *Config) { c.URL = "tcp://:1883" }, `mqtt: url: "tcp://:1883": no host`},
		{"qos", func(c *Config) { c.QoS = 3 }, "mqtt: qos 3: must be 0, 1 or 2"},
		{"wildcard topic", func(c *Config) { c.Topic = "kelvin/+/{sensor}" },
			`mqtt: topic "kelvin/+/{sensor}": wildcard '+' in a topic to publish to`},
		{"placeholder", func(c *Config) { c.Topic = "kelvin/{sensr}" },
			`mqtt: topic "kelvin/{sensr}": unknown placeholder {sensr}: want {agent}, {sensor} or {quantity}`},
		{"brace", func(c *Config) { c.Topic = "kelvin/{sensor" }, `mqtt: topic "kelvin/{sensor": unmatched {`},
		{"cert without key", func(c *Config) { c.URL = "ssl://b"; c.TLS.Cert = "c.pem" }, "mqtt: tls: cert and key go together"},
		{"tls on tcp", func(c *Config) { c.TLS.CA = "ca.pem" },
			`mqtt: tls: set, but url scheme "tcp" is not a TLS one (ssl, tls, mqtts, wss)`},
		{"password without user", func(c *Config) { c.PasswordFile = "pw" }, "mqtt: password_file: set without username"},
		{"keepalive", func(c *Config) { c.KeepAlive = 1500 * time.Millisecond },
			"mqtt: keepalive 1.5s: want whole seconds from 1s to 65535s (18h12m15s); leave it out for 30s"},
		{"keepalive too long", func(c *Config) { c.KeepAlive = 65536 * time.Second },
			"mqtt: keepalive 18h12m16s: want whole seconds from 1s to 65535s (18h12m15s); leave it out for 30s"},
		{"all at once", func(c *Config) { c.URL = ""; c.QoS = -1; c.Topic = "}" },
			"mqtt: url: missing\nmqtt: qos -1: must be 0, 1 or 2\nmqtt: topic \"}\": unmatched }"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			err := cfg.Validate()
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Validate = %v\nwant %s", err, tc.want)
			}
			if _, err := New(cfg, "a", nil); err == nil || err.Error() != tc.want {
				t.Fatalf("New = %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestNewFileErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"password file", Config{URL: "tcp://b", Username: "u", PasswordFile: missing},
			"mqtt: password_file " + missing + ": no such file or directory"},
		{"ca file", Config{URL: "ssl://b", TLS: TLSConfig{CA: missing}},
			"mqtt: tls.ca " + missing + ": no such file or directory"},
		{"ca not PEM", Config{URL: "mqtts://b", TLS: TLSConfig{CA: notPEM}},
			"mqtt: tls.ca " + notPEM + ": no PEM certificate found"},
		{"cert file", Config{URL: "tls://b", TLS: TLSConfig{Cert: missing, Key: notPEM}},
			"mqtt: tls.cert " + missing + ": no such file or directory"},
		{"key file", Config{URL: "tls://b", TLS: TLSConfig{Cert: notPEM, Key: missing}},
			"mqtt: tls.key " + missing + ": no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, "a", nil)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("New = %v\nwant %s", err, tc.want)
			}
			if strings.Contains(tc.want, "no such file") && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
			}
		})
	}
	if _, err := New(Config{URL: "tcp://b"}, "", nil); err == nil {
		t.Error("New with an empty agent id succeeded")
	}
}

func TestNewDefaults(t *testing.T) {
	for url, want := range map[string]string{
		"tcp://broker.lan":            "tcp://broker.lan:1883",
		"mqtt://broker.lan:1884":      "mqtt://broker.lan:1884",
		"ssl://broker.lan":            "ssl://broker.lan:8883",
		"mqtts://u:secret@broker.lan": "mqtts://u@broker.lan:8883",
		"ws://broker.lan/mqtt":        "ws://broker.lan/mqtt",
	} {
		c, err := New(Config{URL: url}, "a", nil) // zero Topic and ClientID take the defaults
		if err != nil {
			t.Fatalf("New(%s): %v", url, err)
		}
		st := c.Status()
		if st.URL != want || st.State != "disconnected" || st.Name != "mqtt" {
			t.Errorf("New(%s).Status() = %+v, want URL %s, disconnected", url, st, want)
		}
		if got := c.pc.OptionsReader(); got.ClientID() != "kelvin-a" || got.KeepAlive() != DefaultKeepAlive {
			t.Errorf("client id = %q, keep-alive %v; want kelvin-a, %v", got.ClientID(), got.KeepAlive(), DefaultKeepAlive)
		}
	}
	c, err := New(Config{URL: "tcp://broker.lan", KeepAlive: 5 * time.Second}, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.pc.OptionsReader(); r.KeepAlive() != 5*time.Second {
		got := r.KeepAlive()
		t.Errorf("keep-alive = %v, want the configured 5s", got)
	}
}
