package fleet

import (
	"net/http"
	"strings"
	"time"

	"github.com/kelvin-gw/kelvin/archive"
	"github.com/kelvin-gw/kelvin/reading"
)

// historyPoints is about how many buckets /api/fleet/history returns per
// series: a chart's width.
const historyPoints = 300

// SetArchive makes a the fleet's long history: every new reading goes into
// it (as series "AGENT~SENSOR", names escaped for file names), and
// /api/fleet/history serves the 24 h and 7 d charts from it. Call it
// before Run, which closes it when it returns; without it
// /api/fleet/history answers 404.
func (f *Fleet) SetArchive(a *archive.Archive) { f.archive = a }

// archiveName is the archive's series name of a fleet sensor:
// "AGENT~SENSOR", each made safe for a file name (fileSafe).
func archiveName(agent, sensor string) string { return fileSafe(agent) + "~" + fileSafe(sensor) }

// fileSafe keeps [A-Za-z0-9_-] and writes every other byte as %XX, so that
// a name from the wire is a safe file name without the archive's '.'
// separator.
func fileSafe(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte("0123456789ABCDEF"[c>>4])
		b.WriteByte("0123456789ABCDEF"[c&15])
	}
	return b.String()
}

// archiveAdd records r (already filtered) in the long history.
func (f *Fleet) archiveAdd(r reading.Reading) {
	if f.archive == nil {
		return
	}
	r.Sensor, r.Quantity = archiveName(r.Agent, r.Sensor), fileSafe(r.Quantity)
	f.archive.Add(r)
}

// serveHistory answers GET /api/fleet/history?agent=&sensor=&window=24h
// (or 7d) with the min, mean and max per step of each of the
// sensor's quantities, about 300 steps over the window:
//
//	{"window_seconds":86400,"step_seconds":300,"series":[{"quantity":"temperature","unit":"°C",
//	  "points":[[unix ms, min, mean, max], …]}]}
func (f *Fleet) serveHistory(w http.ResponseWriter, r *http.Request) {
	if f.archive == nil {
		http.Error(w, "fleet: no history archive (fleet.archive)", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	var window time.Duration
	switch q.Get("window") {
	case "", "24h":
		window = 24 * time.Hour
	case "7d":
		window = 7 * 24 * time.Hour
	default:
		http.Error(w, "fleet: window: want 24h or 7d", http.StatusBadRequest)
		return
	}
	to := f.now()
	step := max(archive.Step, (window / historyPoints).Truncate(archive.Step))
	ss, err := f.archive.Query(archiveName(q.Get("agent"), q.Get("sensor")), to.Add(-window), to, step)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	type series struct {
		Quantity string       `json:"quantity"`
		Unit     string       `json:"unit"`
		Points   [][4]float64 `json:"points"`
	}
	out := struct {
		Window float64  `json:"window_seconds"`
		Step   float64  `json:"step_seconds"`
		Series []series `json:"series"`
	}{window.Seconds(), step.Seconds(), []series{}}
	for _, s := range ss {
		x := series{Quantity: s.Quantity, Unit: s.Unit, Points: make([][4]float64, 0, len(s.Buckets))}
		for _, b := range s.Buckets {
			x.Points = append(x.Points, [4]float64{float64(b.Start.UnixMilli()), b.Min, b.Mean, b.Max})
		}
		out.Series = append(out.Series, x)
	}
	writeJSON(w, out)
}
