package httpui

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/kelvin-gw/kelvin/archive"
)

// Limits of /api/history.
const (
	historyDefaultSpan = 24 * time.Hour
	historyMaxPoints   = 20000 // per series
	historyAutoPoints  = 1000  // the default step aims at about this many
)

// History is the long history /api/history answers from: the agent's
// *archive.Archive. The server only reads it; the agent feeds it.
type History interface {
	// Query returns the buckets of [from, to) merged into steps of step,
	// for sensor's series or every series when sensor is empty; see
	// archive.Archive.Query. Safe for concurrent use.
	Query(sensor string, from, to time.Time, step time.Duration) ([]archive.Series, error)
}

// SetArchive makes h the source of /api/history. Call it before serving;
// without it /api/history answers 404.
func (s *Server) SetArchive(h History) { s.archive = h }

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
	step := (to.Sub(from) / historyAutoPoints).Truncate(archive.Step)
	if v := q.Get("step"); v != "" {
		if step, err = parseStep(v); err != nil {
			http.Error(w, "step: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	step = max(archive.Step, step.Truncate(archive.Step))
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
		col := func(name string, f func(archive.Bucket) []byte) {
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
		num := func(v float64) []byte { scratch = appendNumber(scratch[:0], v); return scratch }
		col("t", func(bk archive.Bucket) []byte {
			scratch = strconv.AppendInt(scratch[:0], bk.Start.Unix(), 10)
			return scratch
		})
		col("min", func(bk archive.Bucket) []byte { return num(bk.Min) })
		col("mean", func(bk archive.Bucket) []byte { return num(roundMean(bk.Mean)) })
		col("max", func(bk archive.Bucket) []byte { return num(bk.Max) })
		col("n", func(bk archive.Bucket) []byte {
			scratch = strconv.AppendUint(scratch[:0], uint64(bk.N), 10)
			return scratch
		})
		b = append(b, '}')
	}
	b = append(b, "]}\n"...)
	writeJSON(w, r, b)
}

// appendNumber appends v as a JSON number: plain digits, or with an
// exponent from 1e21 on, as JavaScript writes numbers (1e308 is not 309
// digits).
func appendNumber(b []byte, v float64) []byte {
	if math.Abs(v) >= 1e21 {
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

// roundMean keeps a mean to 4 decimals: more is noise, and bytes.
func roundMean(v float64) float64 {
	if math.Abs(v) >= 1e15 {
		return v // no decimals to drop
	}
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
