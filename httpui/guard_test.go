package httpui

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/kelvin-gw/kelvin/ingest"
	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// recordIngest makes s store pushed readings in a list it returns.
func recordIngest(s *Server) func() []ingest.Item {
	var mu sync.Mutex
	var got []ingest.Item
	s.SetIngest(func(ctx context.Context, items []ingest.Item) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, items...)
		return len(items), nil
	})
	return func() []ingest.Item {
		mu.Lock()
		defer mu.Unlock()
		return append([]ingest.Item(nil), got...)
	}
}

// TestGuardHost: a request is served only when its Host names this
// gateway: an IP literal, localhost, the hostname (also under .local) or
// a name of http.allowed_hosts. Any other name, as a DNS rebinding attack
// sends, gets 403 (issue 15, item 9).
func TestGuardHost(t *testing.T) {
	s := New(Config{AllowedHosts: []string{"kelvin.example.com", "*.lan"}}, nil, nil, nil)
	s.names = []string{"localhost", "greenhouse-pi", "greenhouse-pi.local"}
	for _, tc := range []struct {
		host string
		want int
	}{
		{"127.0.0.1:8080", 200},
		{"192.168.1.20", 200},
		{"[::1]:8080", 200},
		{"[fe80::1%25eth0]:8080", 200},
		{"localhost:8080", 200},
		{"LOCALHOST.", 200},
		{"greenhouse-pi:8080", 200},
		{"greenhouse-pi.local:8080", 200},
		{"kelvin.example.com", 200},
		{"gw.lan:8080", 200},
		{"evil.example.net:8080", 403},
		{"greenhouse-pi.evil.example.net", 403},
		{"localhost.evil.example.net", 403},
		{"127.0.0.1.nip.io", 403},
	} {
		for _, p := range []string{"/api/status", "/", "/ws", "/metrics"} {
			req := httptest.NewRequest(http.MethodGet, p, nil)
			req.Host = tc.host
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			got := rec.Code
			if p == "/ws" && got == http.StatusBadRequest || got == http.StatusUpgradeRequired {
				got = 200 // reached the websocket handshake
			}
			if got != tc.want {
				t.Errorf("GET %s Host %q: %d, want %d", p, tc.host, rec.Code, tc.want)
			}
		}
	}
	if body := get(t, s, "/metrics").Body.String(); !strings.Contains(body, `kelvin_http_refused_total{reason="host"} 16`) {
		t.Errorf("/metrics does not count the refusals:\n%s", body)
	}
	bad := Config{AllowedHosts: []string{"", "http://x", "x:80", "[a"}}
	bad.SetDefaults()
	err := errors.Join(bad.Validate()...)
	for i := range 4 {
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("allowed_hosts[%d]", i)) {
			t.Errorf("Validate: %v, want allowed_hosts[%d] refused", err, i)
		}
	}
}

// TestGuardCrossOrigin: a request that changes state is refused when its
// Origin, or without one its Referer, is another site's, whatever its
// content type; the page's own origin, http.allowed_origins and clients
// that send neither (curl, devices: the README's examples) pass (issue
// 15, item 9).
func TestGuardCrossOrigin(t *testing.T) {
	s := New(Config{AllowedOrigins: []string{"dash.example.com"}}, nil, nil, nil)
	stored := recordIngest(s)
	addr := serve(t, s, nil)
	n := 0
	for _, tc := range []struct {
		origin, referer, site, ctype string
		want                         int
	}{
		{ctype: "application/json", want: 202}, // curl -H 'Content-Type: application/json'
		{ctype: "text/plain", want: 202},
		{ctype: "application/x-www-form-urlencoded", want: 202}, // curl -d
		{origin: "http://" + addr, ctype: "application/json", want: 202},
		{referer: "http://" + addr + "/", ctype: "text/plain", want: 202},
		{origin: "http://dash.example.com", ctype: "text/plain", want: 202},
		{site: "same-origin", ctype: "text/plain", want: 202},
		{origin: "http://evil.example.net", ctype: "text/plain", want: 403},
		{origin: "http://evil.example.net", ctype: "application/json", want: 403},
		{origin: "http://evil.example.net", ctype: "application/x-www-form-urlencoded", want: 403},
		{origin: "http://evil.example.net", ctype: "multipart/form-data; boundary=x", want: 403},
		{origin: "http://127.0.0.1:1", ctype: "text/plain", want: 403},
		{origin: "null", ctype: "text/plain", want: 403},
		{referer: "http://evil.example.net/page.html", ctype: "text/plain", want: 403},
		{site: "cross-site", ctype: "text/plain", want: 403},
	} {
		body := "temperature,sensor=shed value=4.5"
		if strings.HasSuffix(tc.ctype, "json") {
			body = `{"sensor":"shed","value":4.5}`
		}
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/ingest", strings.NewReader(body))
		req.Header.Set("Content-Type", tc.ctype)
		for k, v := range map[string]string{"Origin": tc.origin, "Referer": tc.referer, "Sec-Fetch-Site": tc.site} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("POST %+v: %d, want %d", tc, resp.StatusCode, tc.want)
		}
		if tc.want == 202 {
			n++
		}
	}
	if got := len(stored()); got != n {
		t.Errorf("%d readings stored, want %d", got, n)
	}
	// Reading is not changing state: a GET from anywhere is served.
	req := httptest.NewRequest(http.MethodGet, "/api/status", nil)
	req.Host = "localhost"
	req.Header.Set("Origin", "http://evil.example.net")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("cross-origin GET: %d, want 200", rec.Code)
	}
}

// TestCSRFFormInChromium: a page on another origin (a second loopback
// server) auto-submits a text/plain form to POST /api/ingest, as a hostile
// web page would; Chromium sends it, and nothing is stored (issue 15,
// item 9).
func TestCSRFFormInChromium(t *testing.T) {
	b := startBrowser(t)
	s := New(Config{}, nil, nil, nil)
	stored := recordIngest(s)
	addr := serve(t, s, nil)

	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// text/plain encodes the one field as "name=value": a line of line
		// protocol.
		fmt.Fprintf(w, `<!doctype html><form method=POST enctype="text/plain" action="http://%s/api/ingest">`+
			`<input type=hidden name="temperature,sensor=shed value" value="4.5"></form>`+
			`<script>document.forms[0].submit()</script>`, addr)
	}))
	defer evil.Close()
	if _, port, _ := net.SplitHostPort(evil.Listener.Addr().String()); strings.HasSuffix(addr, ":"+port) {
		t.Fatal("both servers on one port")
	}
	b.call("Page.navigate", map[string]any{"url": evil.URL + "/"})
	testenv.WaitFor(t, "the form's POST to reach the gateway", func() bool {
		return s.guardStats.crossOrigin.Load() > 0 || len(stored()) > 0
	})
	if got := stored(); len(got) > 0 {
		t.Fatalf("a cross-origin form stored %d readings: %+v", len(got), got)
	}
}
