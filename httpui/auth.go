package httpui

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// AuthConfig is HTTP basic authentication for the page and its API.
type AuthConfig struct {
	User         string `yaml:"user"`
	PasswordFile string `yaml:"password_file"` // the password, in a file readable by the agent only
}

// TLSConfig serves the page over HTTPS.
type TLSConfig struct {
	Cert string `yaml:"cert"` // PEM certificate (chain), with key
	Key  string `yaml:"key"`  // PEM private key
}

// tokenCookie carries the access token of a page opened with ?token=, so
// its fetches and websocket need not repeat it.
const tokenCookie = "kelvin_token"

// secrets are what LoadSecrets read from the files the config names.
type secrets struct {
	password []byte // sha256 of it, for constant-time comparison
	token    []byte // likewise
	ingest   []byte // the ingest token's sha256
	cert     *tls.Certificate
}

// LoadSecrets reads the password, token and TLS files c names; each error
// names the key and the file. Call it once before New.
func (c *Config) LoadSecrets() error {
	var errs []error
	s := &secrets{}
	if c.Auth != nil {
		pw, err := readSecret(c.Auth.PasswordFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("httpui: auth.password_file: %w", err))
		}
		sum := sha256.Sum256([]byte(pw))
		s.password = sum[:]
	}
	if c.TokenFile != "" {
		tok, err := readSecret(c.TokenFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("httpui: token_file: %w", err))
		}
		sum := sha256.Sum256([]byte(tok))
		s.token = sum[:]
	}
	if c.IngestTokenFile != "" {
		tok, err := readSecret(c.IngestTokenFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("httpui: ingest_token_file: %w", err))
		}
		sum := sha256.Sum256([]byte(tok))
		s.ingest = sum[:]
	}
	if c.TLS != nil {
		cert, err := tls.LoadX509KeyPair(c.TLS.Cert, c.TLS.Key)
		if err != nil {
			errs = append(errs, fmt.Errorf("httpui: tls: %w", err))
		}
		s.cert = &cert
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.secrets = s
	return nil
}

// readSecret reads a one-line secret file; surrounding white space (the
// newline an editor adds) is not part of it.
func readSecret(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s is empty", file)
	}
	return v, nil
}

func equalHashed(want []byte, got string) bool {
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(want, sum[:]) == 1
}

// bearer returns the token of an "Authorization: Bearer TOKEN" header.
// The scheme is case-insensitive (RFC 9110 section 11.1): "bearer" and
// "BEARER" are the same.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimLeft(tok, " ")
	return tok, tok != ""
}

// authorize wraps h with the access control of c: with neither auth nor a
// token configured it is h itself. A request passes with the basic-auth
// user and password, or with the token as "Authorization: Bearer TOKEN", as
// ?token=TOKEN (which also sets a cookie for the page's own requests), or
// in that cookie.
func (c *Config) authorize(h http.Handler) http.Handler {
	s := c.secrets
	if s == nil || (s.password == nil && s.token == nil) {
		return h
	}
	user := ""
	if c.Auth != nil {
		user = c.Auth.User
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.password != nil {
			if u, p, ok := r.BasicAuth(); ok && subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1 && equalHashed(s.password, p) {
				h.ServeHTTP(w, r)
				return
			}
		}
		if s.token != nil {
			if t, ok := bearer(r); ok && equalHashed(s.token, t) {
				h.ServeHTTP(w, r)
				return
			}
			if t := r.URL.Query().Get("token"); t != "" && equalHashed(s.token, t) {
				http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: t, Path: "/", HttpOnly: true,
					SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
				h.ServeHTTP(w, r)
				return
			}
			if ck, err := r.Cookie(tokenCookie); err == nil && equalHashed(s.token, ck.Value) {
				h.ServeHTTP(w, r)
				return
			}
		}
		if s.password != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="Kelvin", charset="UTF-8"`)
		}
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	})
}

// authorizeIngest guards POST /api/ingest: the ingest token as a bearer
// token, or whatever the page accepts. With neither configured it is open.
func (c *Config) authorizeIngest(h http.Handler) http.Handler {
	page := c.authorize(h)
	s := c.secrets
	if s == nil || s.ingest == nil {
		return page
	}
	open := s.password == nil && s.token == nil
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, ok := bearer(r); ok && equalHashed(s.ingest, t) {
			h.ServeHTTP(w, r)
			return
		}
		if open {
			http.Error(w, "unauthorized: send the ingest token as Authorization: Bearer TOKEN", http.StatusUnauthorized)
			return
		}
		page.ServeHTTP(w, r)
	})
}
