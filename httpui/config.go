package httpui

import (
	"cmp"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/kelvin-gw/kelvin/archive"
	"github.com/kelvin-gw/kelvin/internal/bytesize"
)

// Defaults applied by Config.SetDefaults.
const (
	DefaultHistory    = time.Hour // Config.History
	DefaultHistoryMax = 3600      // Config.HistoryMax, readings per series
	// DefaultHistoryBytes is Config.HistoryBytes: 32 MiB, about 230,000
	// readings, a small part of a 512 MB Pi.
	DefaultHistoryBytes = 32 << 20
	minHistoryBytes     = 256 << 10
	DefaultMaxClients   = 64 // Config.MaxClients
	// DefaultMaxConnections is Config.MaxConnections.
	DefaultMaxConnections = 256
	// DefaultMaxConnectionsPerAddress is Config.MaxConnectionsPerAddress.
	DefaultMaxConnectionsPerAddress = 32
	DefaultArchive                  = 7 * 24 * time.Hour
	minArchive                      = time.Hour
	minArchiveFlush                 = time.Minute
	maxArchiveFlush                 = time.Hour
)

// Config configures the live page. It is decoded from the agent's YAML
// (`http:` section) and read-only once passed to New.
type Config struct {
	// Listen is the TCP address the page is served on, e.g. ":8080" or
	// "127.0.0.1:8080". Empty disables the page; the agent, not
	// SetDefaults, chooses its default.
	Listen string `yaml:"listen"`
	// History is how far back /api/readings (and the page's charts) look;
	// default 1h.
	History time.Duration `yaml:"history"`
	// HistoryMax is the most readings kept per sensor and quantity,
	// whatever their age; default 3600. Memory grows with the readings
	// actually kept, up to HistoryMax per series.
	HistoryMax int `yaml:"history_max"`
	// HistoryBytes is the memory the history may take for all series
	// together (ReadingBytes per reading); default 32 MiB, at least 256
	// KiB. Each series gets an equal share at most (and keeps at least 16
	// readings), so with many fast sensors the page shows less than
	// History of each; `kelvin check` says when.
	HistoryBytes bytesize.Size `yaml:"history_bytes"`
	// MaxClients is the most websocket clients connected at once; one more
	// gets HTTP 503. Default 64.
	MaxClients int `yaml:"max_clients"`
	// MaxConnections is the most TCP connections open at once (page,
	// API, websockets, ingest); one more is closed at once. Default 256;
	// more than MaxClients.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerAddress is the most connections open at once from
	// one client IP address. Default 32; behind a reverse proxy on the
	// same machine every client shares its address: raise it.
	MaxConnectionsPerAddress int `yaml:"max_connections_per_address"`
	// AllowedOrigins lists extra Origin host patterns (path.Match syntax,
	// e.g. "*.example.com", or "https://dash.example.com" to also match the
	// scheme) allowed to open /ws and to send requests that change state
	// (POST /api/ingest) from another site's page. Default: none, only the
	// page's own origin.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// AllowedHosts lists extra names (path.Match patterns, e.g.
	// "kelvin.example.com" or "*.lan") a request's Host may use. Without
	// them only IP addresses, "localhost" and this machine's hostname
	// (also under .local) are served: any other name is what a DNS
	// rebinding attack sends, and gets 403. Default: none.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// Archive is how long the long history (1-minute min/mean/max per
	// series, on disk, for the 24 h and 7 d charts and /api/history) is
	// kept; default 7 days, at least 1h.
	Archive time.Duration `yaml:"archive"`
	// ArchiveFlush is how often the long history is written to disk, all
	// series in one write; default 15 min, from 1m to 1h. A power cut loses
	// at most this much of the charts' history (never readings).
	ArchiveFlush time.Duration `yaml:"archive_flush"`
	// Auth, when set, asks for HTTP basic authentication (user and the
	// password in PasswordFile) on the page and its API. Off by default.
	Auth *AuthConfig `yaml:"auth"`
	// TokenFile, when set, holds an access token accepted as
	// "Authorization: Bearer TOKEN", as ?token=TOKEN (bookmark the page
	// with it; a cookie then carries it) or instead of Auth's password.
	TokenFile string `yaml:"token_file"`
	// TLS, when set, serves HTTPS with this certificate and key.
	TLS *TLSConfig `yaml:"tls"`
	// IngestMaxBytes bounds the body of POST /api/ingest; default 1 MiB.
	IngestMaxBytes bytesize.Size `yaml:"ingest_max_bytes"`
	// IngestTokenFile, when set, holds a token devices send as
	// "Authorization: Bearer TOKEN" to push readings (POST /api/ingest
	// only). With neither it nor the page's auth, ingest is open.
	IngestTokenFile string `yaml:"ingest_token_file"`

	secrets *secrets // read by LoadSecrets
}

// HistoryNeed returns what the history needs to keep History of readings
// of series read every intervals[i] (one entry per series, at most
// HistoryMax readings each), in bytes, and how many readings per series
// HistoryBytes holds for that many series. Call it after SetDefaults.
func (c *Config) HistoryNeed(intervals []time.Duration) (need int64, perSeries int) {
	for _, iv := range intervals {
		n := int64(c.HistoryMax)
		if iv > 0 {
			n = min(n, int64((c.History+iv-1)/iv))
		}
		need += n * ReadingBytes
	}
	h := newHistory(c.History, c.HistoryMax, int64(c.HistoryBytes))
	return need, h.seriesLimit(len(intervals))
}

// SetDefaults fills zero fields with their defaults (DefaultHistory,
// DefaultHistoryMax, DefaultMaxClients). It leaves Listen alone: the agent
// defaults that.
func (c *Config) SetDefaults() {
	c.History = cmp.Or(c.History, DefaultHistory)
	c.HistoryMax = cmp.Or(c.HistoryMax, DefaultHistoryMax)
	c.HistoryBytes = cmp.Or(c.HistoryBytes, DefaultHistoryBytes)
	c.MaxClients = cmp.Or(c.MaxClients, DefaultMaxClients)
	c.MaxConnections = cmp.Or(c.MaxConnections, DefaultMaxConnections)
	c.MaxConnectionsPerAddress = cmp.Or(c.MaxConnectionsPerAddress, DefaultMaxConnectionsPerAddress)
	c.Archive = cmp.Or(c.Archive, DefaultArchive)
	c.ArchiveFlush = cmp.Or(c.ArchiveFlush, archive.DefaultFlushEvery)
	c.IngestMaxBytes = cmp.Or(c.IngestMaxBytes, DefaultIngestMaxBytes)
}

// Validate returns every problem of c, each as "key: message" with the
// YAML key; none is nil. Call it after SetDefaults.
func (c *Config) Validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %w", key, fmt.Errorf(format, args...)))
	}
	if c.History < 0 {
		bad("history", "must not be negative, got %v", c.History)
	}
	if c.HistoryMax < 0 {
		bad("history_max", "must not be negative, got %d", c.HistoryMax)
	}
	if c.HistoryBytes < minHistoryBytes {
		bad("history_bytes", "want at least %s, got %s", bytesize.Size(minHistoryBytes), c.HistoryBytes)
	}
	if c.MaxClients < 0 {
		bad("max_clients", "must not be negative, got %d", c.MaxClients)
	}
	if c.MaxConnections < 0 {
		bad("max_connections", "must not be negative, got %d", c.MaxConnections)
	} else if c.MaxConnections <= c.MaxClients {
		bad("max_connections", "%d leaves no connection beside max_clients (%d) websockets: want more", c.MaxConnections, c.MaxClients)
	}
	if c.MaxConnectionsPerAddress < 0 {
		bad("max_connections_per_address", "must not be negative, got %d", c.MaxConnectionsPerAddress)
	}
	if c.Archive < minArchive {
		bad("archive", "want at least %v, got %v", minArchive, c.Archive)
	}
	if c.ArchiveFlush != 0 && (c.ArchiveFlush < minArchiveFlush || c.ArchiveFlush > maxArchiveFlush) {
		bad("archive_flush", "want %v to %v, got %v", minArchiveFlush, maxArchiveFlush, c.ArchiveFlush)
	}
	if c.Auth != nil {
		if c.Auth.User == "" {
			bad("auth.user", "required with auth")
		} else if strings.Contains(c.Auth.User, ":") {
			bad("auth.user", "must not contain a colon")
		}
		if c.Auth.PasswordFile == "" {
			bad("auth.password_file", "required with auth (passwords are never inline)")
		}
	}
	if c.IngestMaxBytes < 0 {
		bad("ingest_max_bytes", "must not be negative, got %s", c.IngestMaxBytes)
	}
	if c.TLS != nil && (c.TLS.Cert == "" || c.TLS.Key == "") {
		bad("tls", "needs both cert and key")
	}
	for i, p := range c.AllowedHosts {
		if p == "" || strings.ContainsAny(p, ":/") {
			bad(fmt.Sprintf("allowed_hosts[%d]", i), "want a host name or pattern without scheme or port, got %q", p)
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			bad(fmt.Sprintf("allowed_hosts[%d]", i), "bad pattern %q: %w", p, err)
		}
	}
	for i, p := range c.AllowedOrigins {
		if p == "" {
			bad(fmt.Sprintf("allowed_origins[%d]", i), "empty pattern")
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			bad(fmt.Sprintf("allowed_origins[%d]", i), "bad pattern %q: %w", p, err)
		}
	}
	return errs
}
