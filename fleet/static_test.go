package fleet

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kelvin-gw/kelvin/internal/theme"
)

// TestStaticFiles: the fleet page's files are served under /fleet/, and
// its stylesheet is the shared theme followed by the fleet's own rules.
func TestStaticFiles(t *testing.T) {
	srv := httptest.NewServer(staticHandler())
	defer srv.Close()
	get := func(path string) (string, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		return resp.Header.Get("Content-Type"), string(b)
	}
	if typ, body := get("/fleet/"); typ != "text/html; charset=utf-8" || !strings.Contains(body, `href="fleet.css"`) {
		t.Errorf("GET /fleet/: %s, want the page linking fleet.css", typ)
	}
	typ, css := get("/fleet/fleet.css")
	if typ != "text/css; charset=utf-8" || !strings.HasPrefix(css, theme.CSS) || !strings.Contains(css, ".gw {") {
		t.Errorf("GET /fleet/fleet.css: %s, want the theme followed by the fleet's rules:\n%s", typ, css)
	}
}
