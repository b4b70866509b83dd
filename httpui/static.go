package httpui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/kelvin-gw/kelvin/internal/theme"
)

//go:embed static
var staticFS embed.FS

// contentTypes maps the extensions of the embedded files to their type, so
// the answer never depends on the host's /etc/mime.types.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// csp keeps the page to its own files: no inline script, nothing from
// elsewhere. ws: and wss: are listed for browsers whose 'self' does not yet
// cover the websocket of the same host.
const csp = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// asset is one embedded file, with its gzip form and ETags computed once.
type asset struct {
	ctype string
	body  []byte
	etag  string // strong ETag of body

	// The gzip form is made at the first request that accepts it, not at
	// start: compressing the page's files takes milliseconds that the
	// first reading should not wait for.
	gzOnce sync.Once
	gz     []byte // nil when compressing does not make it smaller
	etgz   string // strong ETag of gz
}

// gzipped returns the asset's gzip form and its ETag, nil when
// compressing does not make it smaller. Safe for concurrent use.
func (a *asset) gzipped() ([]byte, string) {
	a.gzOnce.Do(func() {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(a.body)
		if err := zw.Close(); err == nil && buf.Len() < len(a.body) {
			a.gz = buf.Bytes()
			a.etgz = a.etag[:len(a.etag)-1] + `-gz"`
		}
	})
	return a.gz, a.etgz
}

// loadAssets reads every file under static/ and prepares it for serving,
// keyed by URL path ("/app.js"; index.html is "/"); style.css is served
// after the shared theme.CSS.
func loadAssets() (map[string]*asset, error) {
	assets := make(map[string]*asset)
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		if p == "static/style.css" {
			body = append([]byte(theme.CSS), body...)
		}
		sum := sha256.Sum256(body)
		a := &asset{
			ctype: contentTypes[path.Ext(p)],
			body:  body,
			etag:  `"` + hex.EncodeToString(sum[:12]) + `"`,
		}
		if a.ctype == "" {
			a.ctype = "application/octet-stream"
		}
		urlPath := strings.TrimPrefix(p, "static")
		if urlPath == "/index.html" {
			urlPath = "/"
		}
		assets[urlPath] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("httpui: load static files: %w", err)
	}
	return assets, nil
}

// ServeHTTP serves the asset with revalidation (ETag, If-None-Match → 304)
// and its pre-compressed gzip form when the client accepts gzip.
func (a *asset) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("Vary", "Accept-Encoding")
	h.Set("X-Content-Type-Options", "nosniff")
	if a.ctype == contentTypes[".html"] {
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "no-referrer")
	}
	body, etag := a.body, a.etag
	if acceptsGzip(r) {
		if gz, etgz := a.gzipped(); gz != nil {
			body, etag = gz, etgz
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	if etagMatch(r.Header.Get("If-None-Match"), etag) {
		h.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", a.ctype)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip
// (listed, or covered by "*", and not with q=0).
func acceptsGzip(r *http.Request) bool {
	ok := false
	for _, v := range r.Header.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			if coding != "gzip" && coding != "x-gzip" && coding != "*" {
				continue
			}
			q := 1.0
			for param := range strings.SplitSeq(params, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(param), "=")
				if strings.EqualFold(k, "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
						q = f
					}
				}
			}
			if coding != "*" {
				return q > 0
			}
			ok = q > 0
		}
	}
	return ok
}

// etagMatch reports whether an If-None-Match header value matches etag
// (weak comparison, as RFC 9110 asks for If-None-Match).
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	for tag := range strings.SplitSeq(header, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
			return true
		}
	}
	return false
}
