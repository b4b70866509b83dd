package httpui

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Limits of /api/history.
const (
	historyDefaultSpan = 24 * time.Hour
	historyMaxPoints   = 20000 // per series
	historyAutoPoints  = 1000  // the default step aims at about this many
)

// SetArchive makes a the source of /api/history and the sink of every
// published reading. Call it before serving; a nil a leaves /api/history
// answering 404.
func (s *Server) SetArchive(a *Archive) { s.archive = a }

// serveHistory answers GET /api/history?sensor=&from=&to=&step= with the
// archive's min/mean/max per step, as columns:
//
//	{"from":…,"to":…,"step_seconds":60,"series":[{"sensor":"air","quantity":"temperature","unit":"°C",
//	  "t":[unix seconds…],"min":[…],"mean":[…],"max":[…],"n":[…]}]}
//
// from and to are RFC 3339 times or unix seconds (default: the last 24 h);
// step is a duration ("5m") or seconds, rounded down to whole minutes, at
// least 1m (default: about 1000 points over the span).
func (s *Server) serveHistory(w http.ResponseWriter, r *http.Request) {
	if s.archive == nil {
		http.Error(w, "no history archive on this agent", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	now := s.now()
	to, err := parseTimeParam(q.Get("to"), now)
	if err != nil {
		http.Error(w, "to: "+err.Error(), http.StatusBadRequest)
		return
	}
	from, err := parseTimeParam(q.Get("from"), to.Add(-historyDefaultSpan))
	if err != nil {
		http.Error(w, "from: "+err.Error(), http.StatusBadRequest)
		return
	}
	if !from.Before(to) {
		http.Error(w, "from must be before to", http.StatusBadRequest)
		return
	}
	step := (to.Sub(from) / historyAutoPoints).Truncate(ArchiveStep)
	if v := q.Get("step"); v != "" {
		if step, err = parseStep(v); err != nil {
			http.Error(w, "step: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	step = max(ArchiveStep, step.Truncate(ArchiveStep))
	if n := to.Sub(from) / step; n > historyMaxPoints {
		http.Error(w, fmt.Sprintf("step: %v over %v gives %d points, more than %d; use a larger step", step, to.Sub(from), n, historyMaxPoints), http.StatusBadRequest)
		return
	}
	series, err := s.archive.Query(q.Get("sensor"), from, to, step)
	if err != nil {
		s.log.Warn("history query failed", "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	b := make([]byte, 0, 256)
	b = fmt.Appendf(b, `{"from":%d,"to":%d,"step_seconds":%d,"series":[`, from.Unix(), to.Unix(), int64(step/time.Second))
	for i, se := range series {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"sensor":`...)
		b = strconv.AppendQuote(b, se.Sensor)
		b = append(b, `,"quantity":`...)
		b = strconv.AppendQuote(b, se.Quantity)
		b = append(b, `,"unit":`...)
		b = strconv.AppendQuote(b, se.Unit)
		col := func(name string, f func(Bucket) []byte) {
			b = append(b, `,"`...)
			b = append(b, name...)
			b = append(b, `":[`...)
			for j, bk := range se.Buckets {
				if j > 0 {
					b = append(b, ',')
				}
				b = append(b, f(bk)...)
			}
			b = append(b, ']')
		}
		var scratch []byte
		num := func(v float64) []byte { scratch = strconv.AppendFloat(scratch[:0], v, 'f', -1, 64); return scratch }
		col("t", func(bk Bucket) []byte { scratch = strconv.AppendInt(scratch[:0], bk.Start.Unix(), 10); return scratch })
		col("min", func(bk Bucket) []byte { return num(bk.Min) })
		col("mean", func(bk Bucket) []byte { return num(roundMean(bk.Mean)) })
		col("max", func(bk Bucket) []byte { return num(bk.Max) })
		col("n", func(bk Bucket) []byte { scratch = strconv.AppendUint(scratch[:0], uint64(bk.N), 10); return scratch })
		b = append(b, '}')
	}
	b = append(b, "]}\n"...)
	writeJSON(w, r, b)
}

// roundMean keeps a mean to 4 decimals: more is noise, and bytes.
func roundMean(v float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 4, 64), 64)
	return r
}

func parseTimeParam(v string, def time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("want RFC 3339 or unix seconds, got %q", v)
	}
	return t, nil
}

func parseStep(v string) (time.Duration, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a positive duration like 5m or seconds, got %q", v)
	}
	return d, nil
}
