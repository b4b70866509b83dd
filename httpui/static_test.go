package httpui

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/kelvin-gw/kelvin/internal/theme"
)

func gunzip(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestStaticPage(t *testing.T) {
	s := New(Config{}, nil, nil, nil)
	rec := get(t, s, "/")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /: %d", rec.Code)
	}
	h := rec.Header()
	if h.Get("Content-Type") != "text/html; charset=utf-8" || h.Get("Cache-Control") != "no-cache" ||
		h.Get("Content-Security-Policy") == "" || h.Get("ETag") == "" {
		t.Errorf("GET / headers: %v", h)
	}
	page := rec.Body.String()
	for _, want := range []string{`<canvas>`, `src="app.js"`, `href="style.css"`, `id="offline"`} {
		if !strings.Contains(page, want) {
			t.Errorf("GET / lacks %s", want)
		}
	}
	js := get(t, s, "/app.js").Body.String()
	for _, want := range []string{"getContext('2d')", "devicePixelRatio", "ResizeObserver", "new WebSocket", "api/readings", "api/status"} {
		if !strings.Contains(js, want) {
			t.Errorf("app.js lacks %s", want)
		}
	}
	css := get(t, s, "/style.css").Body.String()
	if !strings.Contains(css, "prefers-color-scheme: dark") {
		t.Error("style.css has no dark mode")
	}
	if !strings.HasPrefix(css, theme.CSS) || !strings.Contains(css, ".pill {") {
		t.Error("style.css is not the shared theme followed by the page's own rules")
	}
	// /index.html is the page too (issue 15).
	if rec := get(t, s, "/index.html"); rec.Code != http.StatusOK || rec.Body.String() != page {
		t.Errorf("GET /index.html: %d, want the page", rec.Code)
	}
	if rec := get(t, s, "/nope.js"); rec.Code != http.StatusNotFound {
		t.Errorf("GET /nope.js: %d, want 404", rec.Code)
	}
}

// TestStaticSelfContained checks the assets' size and that they load
// nothing from elsewhere.
func TestStaticSelfContained(t *testing.T) {
	s := New(Config{}, nil, nil, nil)
	total := 0
	remote := regexp.MustCompile(`(?i:(https?:)?//[a-z0-9.-]+\.[a-z]{2,})|@import|url\(`)
	for p, a := range s.assets {
		total += len(a.body)
		if m := remote.Find(a.body); m != nil {
			t.Errorf("%s refers to something outside the binary: %s", p, m)
		}
	}
	t.Logf("static assets: %d files, %d bytes", len(s.assets), total)
	if total > 40<<10 {
		t.Errorf("static assets are %d bytes, budget 40 KiB", total)
	}
}

func TestStaticETag(t *testing.T) {
	s := New(Config{}, nil, nil, nil)
	for _, p := range []string{"/", "/app.js", "/style.css"} {
		for _, enc := range []string{"", "gzip"} {
			rec := get(t, s, p, "Accept-Encoding", enc)
			etag := rec.Header().Get("ETag")
			if rec.Code != http.StatusOK || !strings.HasPrefix(etag, `"`) {
				t.Fatalf("GET %s (%q): %d, ETag %q", p, enc, rec.Code, etag)
			}
			rec = get(t, s, p, "Accept-Encoding", enc, "If-None-Match", etag)
			if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 || rec.Header().Get("ETag") != etag {
				t.Errorf("GET %s (%q) If-None-Match %s: %d, %d bytes", p, enc, etag, rec.Code, rec.Body.Len())
			}
			rec = get(t, s, p, "Accept-Encoding", enc, "If-None-Match", `"other", W/`+etag)
			if rec.Code != http.StatusNotModified {
				t.Errorf("GET %s (%q) If-None-Match list with weak %s: %d", p, enc, etag, rec.Code)
			}
			rec = get(t, s, p, "Accept-Encoding", enc, "If-None-Match", `"stale"`)
			if rec.Code != http.StatusOK {
				t.Errorf("GET %s (%q) with a stale ETag: %d", p, enc, rec.Code)
			}
		}
	}
}

func TestStaticGzip(t *testing.T) {
	s := New(Config{}, nil, nil, nil)
	plain := get(t, s, "/app.js")
	if plain.Header().Get("Content-Encoding") != "" || plain.Header().Get("Vary") != "Accept-Encoding" {
		t.Errorf("plain: %v", plain.Header())
	}
	gz := get(t, s, "/app.js", "Accept-Encoding", "br, gzip;q=0.8")
	if gz.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding = %q, want gzip", gz.Header().Get("Content-Encoding"))
	}
	if gz.Header().Get("ETag") == plain.Header().Get("ETag") {
		t.Error("gzip and plain forms share an ETag")
	}
	if gz.Body.Len() >= plain.Body.Len() {
		t.Errorf("gzip body %d bytes, plain %d", gz.Body.Len(), plain.Body.Len())
	}
	if got := gunzip(t, gz.Body.Bytes()); got != plain.Body.String() {
		t.Error("gunzipped body differs from the plain one")
	}
	// Compressed once at startup: the same bytes every time.
	if again := get(t, s, "/app.js", "Accept-Encoding", "gzip"); !bytes.Equal(again.Body.Bytes(), gz.Body.Bytes()) {
		t.Error("gzip form differs between requests")
	}
	head := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodHead, "/", nil)
	req.Host = "localhost"
	s.Handler().ServeHTTP(head, req)
	if head.Code != http.StatusOK || head.Body.Len() != 0 || head.Header().Get("Content-Length") == "" {
		t.Errorf("HEAD /: %d, %d bytes, %v", head.Code, head.Body.Len(), head.Header())
	}
}

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"gzip, deflate, br", true},
		{"br;q=1.0, GZIP;q=0.5", true},
		{"gzip;q=0", false},
		{"gzip; q=0.0", false},
		{"deflate", false},
		{"*", true},
		{"*;q=0", false},
		{"gzip;q=0, *", false},
		{"identity", false},
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Accept-Encoding", tc.header)
		if got := acceptsGzip(req); got != tc.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}
