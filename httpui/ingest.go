package httpui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"

	"github.com/kelvin-gw/kelvin/ingest"
)

// DefaultIngestMaxBytes bounds a POST /api/ingest body.
const DefaultIngestMaxBytes = 1 << 20

// IngestFunc stores pushed readings, all or none, and returns how many
// passed their sensors' filters; it returns only once they are durable.
// An error that is an *IngestError carries its HTTP status.
type IngestFunc func(ctx context.Context, items []ingest.Item) (published int, err error)

// IngestError is a refused batch and the HTTP status that says why.
type IngestError struct {
	Status int
	Msg    string
}

func (e *IngestError) Error() string { return e.Msg }

// ingestStats counts pushed readings for /metrics.
type ingestStats struct {
	mu       sync.Mutex
	accepted uint64
	rejected map[string]uint64 // by reason
}

func (st *ingestStats) reject(reason string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.rejected == nil {
		st.rejected = map[string]uint64{}
	}
	st.rejected[reason]++
}

// SetIngest makes f the receiver of POST /api/ingest; without it the
// endpoint answers 404. Call it before serving.
func (s *Server) SetIngest(f IngestFunc) { s.ingest = f }

// serveIngest answers POST /api/ingest: JSON (one reading or an array) or,
// with Content-Type text/plain, InfluxDB line protocol. 202 {"accepted":
// N,"published":M} once the readings are on disk; 400 malformed, 413 too
// big, 415 another content type, 422 refused by the config, 429 over a
// sensor's rate, 503 the buffer could not take them. Every error is
// {"error":"…"} and counted by reason.
func (s *Server) serveIngest(w http.ResponseWriter, r *http.Request) {
	if s.ingest == nil {
		s.ingestStats.reject("disabled")
		ingestReply(w, http.StatusNotFound, "no sensor of type http in this agent's config")
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	parse := ingest.ParseJSON
	switch ct {
	case "", "application/json":
	case "text/plain":
		parse = ingest.ParseLine
	case "application/x-www-form-urlencoded":
		// What curl -d sends without -H: tell the formats apart by the
		// first byte, as nobody posts a form here.
		parse = func(b []byte) ([]ingest.Item, error) {
			if t := bytes.TrimSpace(b); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
				return ingest.ParseJSON(b)
			}
			return ingest.ParseLine(b)
		}
	default:
		s.ingestStats.reject("content_type")
		ingestReply(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: want application/json, or text/plain for InfluxDB line protocol", ct))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.cfg.IngestMaxBytes)))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.ingestStats.reject("too_large")
			ingestReply(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than http.ingest_max_bytes (%d bytes)", tooBig.Limit))
			return
		}
		s.ingestStats.reject("read")
		ingestReply(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	items, err := parse(body)
	if err != nil {
		s.ingestStats.reject("malformed")
		ingestReply(w, http.StatusBadRequest, err.Error())
		return
	}
	published, err := s.ingest(r.Context(), items)
	if err != nil {
		status := http.StatusInternalServerError
		var ie *IngestError
		if errors.As(err, &ie) {
			status = ie.Status
		}
		s.ingestStats.reject(ingestReason(status))
		ingestReply(w, status, err.Error())
		return
	}
	s.ingestStats.mu.Lock()
	s.ingestStats.accepted += uint64(len(items))
	s.ingestStats.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"accepted":%d,"published":%d}`+"\n", len(items), published)
}

func ingestReason(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "malformed"
	case http.StatusUnprocessableEntity:
		return "refused"
	case http.StatusTooManyRequests:
		return "rate_limited"
	case http.StatusServiceUnavailable:
		return "not_stored"
	}
	return "error"
}

func ingestReply(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Write(append(b, '\n'))
}
