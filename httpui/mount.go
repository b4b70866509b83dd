package httpui

import (
	"io"
	"net/http"
)

// Mount serves h at pattern (http.ServeMux syntax, e.g. "/fleet/") beside
// the page, behind the page's access control. It is how other parts of the
// agent (the fleet view) add pages and API without this package knowing
// them. Safe to call before or while serving.
func (s *Server) Mount(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// AddMetrics makes GET /metrics also write what write writes: whole
// families in the Prometheus text format, after the agent's own. write is
// called for every scrape and must be safe for concurrent use.
func (s *Server) AddMetrics(write func(w io.Writer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.metricsFrom = append(s.metricsFrom, write)
}

func (s *Server) extraMetrics() []func(io.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.metricsFrom
}
