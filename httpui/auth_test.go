package httpui

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/kelvin-gw/kelvin/internal/testenv"
)

func writeSecret(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func authServer(t *testing.T, cfg Config) string {
	t.Helper()
	cfg.SetDefaults()
	if errs := cfg.Validate(); errs != nil {
		t.Fatal(errs)
	}
	if err := cfg.LoadSecrets(); err != nil {
		t.Fatal(err)
	}
	return serve(t, New(cfg, nil, nil, nil), nil)
}

func getWith(t *testing.T, c *http.Client, url string, set func(*http.Request)) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if set != nil {
		set(req)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestBasicAuth: with http.auth, every path needs the user and password
// (the page, the API, the websocket); the browser is asked for them.
func TestBasicAuth(t *testing.T) {
	addr := authServer(t, Config{Auth: &AuthConfig{User: "ops", PasswordFile: writeSecret(t, "pw", "s3cret\n")}})
	for _, path := range []string{"/", "/api/status", "/api/readings", "/ws"} {
		resp := getWith(t, http.DefaultClient, "http://"+addr+path, nil)
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("GET %s without credentials: %d %q, want 401 asking for basic auth", path, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	for _, c := range []struct{ user, pw string }{{"ops", "wrong"}, {"root", "s3cret"}, {"ops", "s3cret\n"}} {
		if resp := getWith(t, http.DefaultClient, "http://"+addr+"/api/status", func(r *http.Request) { r.SetBasicAuth(c.user, c.pw) }); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("user %q password %q: %d, want 401", c.user, c.pw, resp.StatusCode)
		}
	}
	if resp := getWith(t, http.DefaultClient, "http://"+addr+"/api/status", func(r *http.Request) { r.SetBasicAuth("ops", "s3cret") }); resp.StatusCode != 200 {
		t.Errorf("right credentials: %d, want 200", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{}
	h.Set("Authorization", "Basic b3BzOnMzY3JldA==") // ops:s3cret
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("websocket with credentials: %v", err)
	}
	ws.CloseNow()
}

// TestTokenAuth: http.token_file accepts the token as a bearer header, as
// ?token= (which sets a cookie for the page's own requests) and in that
// cookie; nothing else.
func TestTokenAuth(t *testing.T) {
	addr := authServer(t, Config{TokenFile: writeSecret(t, "token", "abc123\n")})
	base := "http://" + addr
	if resp := getWith(t, http.DefaultClient, base+"/api/status", nil); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("no token: %d %q, want 401 without a basic-auth prompt", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if resp := getWith(t, http.DefaultClient, base+"/api/status?token=abc124", nil); resp.StatusCode != 401 {
		t.Errorf("wrong token: %d, want 401", resp.StatusCode)
	}
	if resp := getWith(t, http.DefaultClient, base+"/api/status", func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc123") }); resp.StatusCode != 200 {
		t.Errorf("bearer token: %d, want 200", resp.StatusCode)
	}
	resp := getWith(t, http.DefaultClient, base+"/?token=abc123", nil)
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == tokenCookie {
			cookie = c
		}
	}
	if resp.StatusCode != 200 || cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("?token=: %d, cookie %+v; want 200 and an HttpOnly, SameSite=Strict cookie", resp.StatusCode, cookie)
	}
	if resp := getWith(t, http.DefaultClient, base+"/api/readings", func(r *http.Request) { r.AddCookie(cookie) }); resp.StatusCode != 200 {
		t.Errorf("with the cookie: %d, want 200", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{}
	h.Set("Cookie", cookie.String())
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("websocket with the cookie: %v", err)
	}
	ws.CloseNow()
}

// TestTLS: with http.tls the page is served over HTTPS only.
func TestTLS(t *testing.T) {
	p := testenv.WritePKI(t, t.TempDir())
	addr := authServer(t, Config{TLS: &TLSConfig{Cert: p.ServerCert, Key: p.ServerKey}})
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.CertPool(t)}}}
	if resp := getWith(t, c, "https://"+addr+"/api/status", nil); resp.StatusCode != 200 {
		t.Errorf("HTTPS: %d, want 200", resp.StatusCode)
	}
	if resp, err := http.Get("http://" + addr + "/api/status"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP answered 200 on a TLS listener")
		}
	}
}

// TestLoadSecretsErrors: each unreadable or empty file is named with its
// key; all problems at once.
func TestLoadSecretsErrors(t *testing.T) {
	empty := writeSecret(t, "empty", "\n")
	c := Config{Auth: &AuthConfig{User: "ops", PasswordFile: "/nonexistent/pw"}, TokenFile: empty,
		TLS: &TLSConfig{Cert: "/nonexistent/cert.pem", Key: "/nonexistent/key.pem"}}
	err := c.LoadSecrets()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"auth.password_file: open /nonexistent/pw", "token_file: " + empty + " is empty", "tls: open /nonexistent/cert.pem"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	bad := Config{Auth: &AuthConfig{User: "a:b"}, TLS: &TLSConfig{Cert: "c.pem"}}
	bad.SetDefaults()
	if err := errors.Join(bad.Validate()...); err == nil || !strings.Contains(err.Error(), "auth.user: must not contain a colon") ||
		!strings.Contains(err.Error(), "auth.password_file: required") || !strings.Contains(err.Error(), "tls: needs both cert and key") {
		t.Errorf("Validate: %v", err)
	}
}

// TestBearerSchemeCaseInsensitive: the bearer scheme is matched without
// regard to case (RFC 9110 section 11.1), for the page's token and for
// the ingest token alike (issue 15, item 10).
func TestBearerSchemeCaseInsensitive(t *testing.T) {
	addr := authServer(t, Config{TokenFile: writeSecret(t, "token", "abc123\n")})
	for _, h := range []string{"Bearer abc123", "bearer abc123", "BEARER abc123", "bEaReR  abc123"} {
		if resp := getWith(t, http.DefaultClient, "http://"+addr+"/api/status", func(r *http.Request) { r.Header.Set("Authorization", h) }); resp.StatusCode != 200 {
			t.Errorf("Authorization %q: %d, want 200", h, resp.StatusCode)
		}
	}
	for _, h := range []string{"Bearerabc123", "Basic abc123", "bearer abc124", "bearer "} {
		if resp := getWith(t, http.DefaultClient, "http://"+addr+"/api/status", func(r *http.Request) { r.Header.Set("Authorization", h) }); resp.StatusCode != 401 {
			t.Errorf("Authorization %q: %d, want 401", h, resp.StatusCode)
		}
	}

	cfg := Config{IngestTokenFile: writeSecret(t, "ingest", "dev1\n")}
	cfg.SetDefaults()
	if err := cfg.LoadSecrets(); err != nil {
		t.Fatal(err)
	}
	reached := 0
	h := cfg.authorizeIngest(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++ }))
	for _, auth := range []string{"Bearer dev1", "bearer dev1"} {
		req, _ := http.NewRequest("POST", "http://localhost/api/ingest", nil)
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Errorf("ingest with %q: %d, want it let through", auth, rec.Code)
		}
	}
	if reached != 2 {
		t.Errorf("ingest handler reached %d times, want 2", reached)
	}
}
