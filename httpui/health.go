package httpui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// readyGrace is how long a sensor that has not read yet counts as starting
// rather than failing, on top of its three intervals.
const readyGrace = 10 * time.Second

// ready checks st as GET /readyz does and returns what is wrong; none
// means ready. A sensor is a problem when it is faulty or has not read
// successfully for three of its intervals (after a grace at start); an
// output when it failed (the agent is restarting it) or is disconnected
// while the buffer is more than half full (below that, the backlog is
// within its budget: nothing will be dropped soon); an input when it failed;
// the buffer when it refuses new readings.
func ready(st Status, now time.Time) []string {
	var problems []string
	for _, s := range st.Sensors {
		iv := time.Duration(s.IntervalSeconds * float64(time.Second))
		last := s.LastReading
		switch {
		case s.State == "faulty":
			problems = append(problems, fmt.Sprintf("sensor %s: faulty: %s", s.ID, s.Error))
		case last.IsZero() && now.Sub(st.Started) > 3*iv+readyGrace:
			problems = append(problems, fmt.Sprintf("sensor %s: no reading since the start %v ago", s.ID, now.Sub(st.Started).Round(time.Second)))
		case !last.IsZero() && now.Sub(last) > 3*iv+readyGrace:
			problems = append(problems, fmt.Sprintf("sensor %s: no reading for %v (interval %v)", s.ID, now.Sub(last).Round(time.Second), iv))
		}
	}
	if st.Buffer != nil && st.Buffer.Refusing != "" {
		problems = append(problems, "buffer: refusing new readings: "+st.Buffer.Refusing)
	}
	half := st.Buffer != nil && st.Buffer.MaxBytes > 0 && st.Buffer.Bytes*2 > st.Buffer.MaxBytes
	for _, o := range st.Outputs {
		if o.State == "failed" {
			problems = append(problems, fmt.Sprintf("output %s: failed, restarting: %s", o.Name, o.LastError))
			continue
		}
		if !o.Connected && half {
			msg := fmt.Sprintf("output %s: %s with %d readings waiting and the buffer more than half full", o.Name, o.State, o.Backlog)
			if o.LastError != "" {
				msg += ": " + o.LastError
			}
			problems = append(problems, msg)
		}
	}
	for _, in := range st.Inputs {
		if in.State == "failed" {
			problems = append(problems, fmt.Sprintf("input %s: failed, restarting: %s", in.Name, in.LastError))
		}
	}
	return problems
}

// serveHealthz answers GET /healthz: the process is alive and serving.
func (s *Server) serveHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, []byte(`{"status":"ok"}`+"\n"))
}

// serveReadyz answers GET /readyz: 200 {"status":"ready"} or 503
// {"status":"not ready","problems":[…]} (see ready).
func (s *Server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	st := s.status()
	now := st.Now
	if now.IsZero() {
		now = s.now()
	}
	problems := ready(st, now)
	body := struct {
		Status   string   `json:"status"`
		Problems []string `json:"problems,omitempty"`
	}{"ready", problems}
	if len(problems) > 0 {
		body.Status = "not ready"
	}
	b, _ := json.Marshal(body)
	if len(problems) > 0 {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write(append(b, '\n'))
		return
	}
	writeJSON(w, r, append(b, '\n'))
}
