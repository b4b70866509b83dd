package httpui

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"strings"
	"sync/atomic"
)

// guardStats counts the requests the guard refused, for /metrics.
type guardStats struct {
	host, crossOrigin atomic.Uint64
}

// localNames returns the names the machine answers to without any config:
// "localhost", its hostname and, for a hostname without a dot, the
// hostname under .local (mDNS, as the README's http://<pi>.local:8080).
func localNames() []string {
	names := []string{"localhost"}
	h, err := os.Hostname()
	if err != nil || h == "" {
		return names
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	short, _, _ := strings.Cut(h, ".")
	names = append(names, h, short, short+".local")
	return names
}

// hostAllowed reports whether a request's Host names this gateway: empty
// (HTTP/1.0), an IP literal, one of s.names, or a pattern of
// Config.AllowedHosts. A name outside these is what a DNS rebinding attack
// sends: a page on evil.example whose name is made to resolve to the
// gateway would otherwise read and push as if it were the page itself.
func (s *Server) hostAllowed(hostport string) bool {
	if hostport == "" {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	for _, n := range s.names {
		if host == n {
			return true
		}
	}
	for _, p := range s.cfg.AllowedHosts {
		if ok, _ := path.Match(strings.ToLower(p), host); ok {
			return true
		}
	}
	return false
}

// safeMethod reports whether method only reads (RFC 9110 section 9.2.1).
func safeMethod(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// sameOrigin reports whether a request that changes state comes from the
// page's own origin (or one of Config.AllowedOrigins). The origin is the
// Origin header or, without one, the Referer's; a request with neither is
// not from a browser (curl, a device) and passes, unless its
// Sec-Fetch-Site says a browser sent it from another site. A cross-site
// form posts text/plain or a form encoding with no preflight, so the
// content type proves nothing.
func (s *Server) sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		origin = r.Header.Get("Referer")
	}
	if origin == "" {
		site := r.Header.Get("Sec-Fetch-Site")
		return site != "cross-site" && site != "same-site"
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" { // "null": a sandboxed or file: page
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, p := range s.cfg.AllowedOrigins {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return true
		}
	}
	return false
}

// guard wraps h with the checks every request passes before access
// control: its Host must name this gateway (hostAllowed), and a request
// that changes state must come from the page's own origin (sameOrigin).
// Refusals are 403 with the reason, and counted.
func (s *Server) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r.Host) {
			s.guardStats.host.Add(1)
			s.log.Debug("request for a foreign host refused", "host", r.Host, "remote_addr", r.RemoteAddr)
			http.Error(w, "httpui: host "+r.Host+" is not this gateway: use its IP address, hostname or a name in http.allowed_hosts", http.StatusForbidden)
			return
		}
		if !safeMethod(r.Method) && !s.sameOrigin(r) {
			s.guardStats.crossOrigin.Add(1)
			s.log.Debug("cross-origin request refused", "method", r.Method, "path", r.URL.Path,
				"origin", r.Header.Get("Origin"), "referer", r.Header.Get("Referer"), "remote_addr", r.RemoteAddr)
			msg := "cross-origin " + r.Method + " refused: the request comes from another site's page (add it to http.allowed_origins to allow it)"
			if r.URL.Path == "/api/ingest" {
				s.ingestStats.reject("cross_origin")
				ingestReply(w, http.StatusForbidden, msg)
				return
			}
			http.Error(w, "httpui: "+msg, http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
