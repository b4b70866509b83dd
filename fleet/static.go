package fleet

import (
	"embed"
	"net/http"
	"strings"

	"github.com/kelvin-gw/kelvin/internal/theme"
)

//go:embed static
var staticFiles embed.FS

// staticHandler serves the page's three files under /fleet/, index.html
// at /fleet and /fleet/, fleet.css after the shared theme.CSS. It is
// deliberately not http.FileServer, which would add its range, MIME and
// directory-listing machinery (about 60 KB) to the binary.
func staticHandler() http.Handler {
	type file struct {
		typ  string
		body []byte
	}
	files := map[string]file{}
	for name, typ := range map[string]string{
		"index.html": "text/html; charset=utf-8",
		"fleet.js":   "text/javascript; charset=utf-8",
		"fleet.css":  "text/css; charset=utf-8",
	} {
		b, err := staticFiles.ReadFile("static/" + name)
		if err != nil {
			panic(err) // embedded: cannot happen in a built binary
		}
		if name == "fleet.css" {
			b = append([]byte(theme.CSS), b...)
		}
		files[name] = file{typ, b}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/fleet"), "/")
		if name == "" {
			name = "index.html"
		}
		f, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.typ)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		w.Write(f.body)
	})
}
