package fleet

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Counts are the exactly-once figures of a sensor or a gateway.
type Counts struct {
	Received   uint64 `json:"received"`   // distinct readings
	Duplicates uint64 `json:"duplicates"` // dropped as seen before
	Pending    uint64 `json:"pending"`    // missing, not yet counted as lost
	Lost       uint64 `json:"lost"`       // missing for longer than loss_after
	Skipped    uint64 `json:"skipped"`    // seqs the gateway announced it never used
	Resets     uint64 `json:"resets"`     // times the seq started over
}

func (c *Counts) add(s *seqs) {
	c.Received += s.received
	c.Duplicates += s.duplicates
	c.Pending += s.pending()
	c.Lost += s.lost
	c.Skipped += s.skipped
	c.Resets += s.resets
}

// GatewayInfo is one gateway as /api/fleet lists it.
type GatewayInfo struct {
	Agent string `json:"agent"`
	// State is online, offline (its status or last will said so),
	// silent (nothing heard for SilentAfter seconds), or unknown before
	// any status or reading.
	State    string    `json:"state"`
	Page     string    `json:"page,omitempty"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	Changed  time.Time `json:"changed,omitzero"`
	// SilentAfter is how long, in seconds, this gateway may go unheard
	// before it is silent: three times its usual interval, within
	// fleet.silent_after (Config.SilentAfter).
	SilentAfter float64 `json:"silent_after_seconds"`
	Sensors     int     `json:"sensors"`
	Counts
}

// SensorInfo is one sensor of a gateway, with its series.
type SensorInfo struct {
	Sensor string       `json:"sensor"`
	High   uint64       `json:"high_seq"`
	Series []SeriesInfo `json:"series"`
	Counts
}

// SeriesInfo is one quantity of a sensor, with its recent points as
// [unix ms, value, raw] triples, oldest first.
type SeriesInfo struct {
	Quantity string       `json:"quantity"`
	Unit     string       `json:"unit"`
	Value    any          `json:"value"`
	Time     time.Time    `json:"ts,omitzero"`
	Seq      uint64       `json:"seq"`
	Points   [][3]float64 `json:"points,omitempty"`
}

// Summary is GET /api/fleet: the gateways matching the query, one page of
// them, and the fleet's totals.
type Summary struct {
	Now      time.Time         `json:"now"`
	Total    int               `json:"total"`    // gateways matching q
	Online   int               `json:"online"`   // of those
	Silent   int               `json:"silent"`   // of those: nothing heard for their silent_after_seconds
	Gateways []GatewayInfo     `json:"gateways"` // offset .. offset+limit
	Totals   Counts            `json:"totals"`   // over every gateway
	Ignored  map[string]uint64 `json:"ignored"`
	Refused  map[string]uint64 `json:"refused"`
	Sources  map[string]bool   `json:"sources"` // connected, by source
	// SourceErrors says, by source, why one is not connected: the last
	// error of its connection to the broker (wrong credentials, a
	// certificate that does not verify, unreachable).
	SourceErrors map[string]string `json:"source_errors,omitempty"`
	LossAfter    float64           `json:"loss_after_seconds"`
	SilentAfter  float64           `json:"silent_after_seconds"` // fleet.silent_after: the most any gateway may go unheard
	Archive      bool              `json:"archive"`              // /api/fleet/history serves 24 h and 7 d
}

func (g *gateway) info(bound time.Duration) GatewayInfo {
	gi := GatewayInfo{Agent: g.agent, State: cmp.Or(g.state, "unknown"), Page: g.page, LastSeen: g.lastSeen, Changed: g.changed,
		SilentAfter: cmp.Or(g.limit, bound).Seconds(), Sensors: len(g.sensors)}
	for _, s := range g.sensors {
		gi.add(&s.seqs)
	}
	return gi
}

// Summary returns the gateways whose name contains q (case-insensitive;
// "state:offline", "state:silent" or "lost" narrow further), sorted by name, offset and
// at most limit of them.
func (f *Fleet) Summary(q string, offset, limit int) Summary {
	f.mu.Lock()
	defer f.mu.Unlock()
	sum := Summary{Now: f.now(), Ignored: maps.Clone(f.ignored), Refused: maps.Clone(f.refused),
		Sources: maps.Clone(f.connected), SourceErrors: maps.Clone(f.srcErr), LossAfter: f.cfg.LossAfter.Seconds(), SilentAfter: f.cfg.SilentAfter.Seconds(), Archive: f.archive != nil}
	var match []GatewayInfo
	for _, g := range f.gateways {
		for _, s := range g.sensors {
			sum.Totals.add(&s.seqs)
		}
		gi := g.info(f.cfg.SilentAfter)
		if matches(gi, q) {
			match = append(match, gi)
		}
	}
	sort.Slice(match, func(i, j int) bool { return match[i].Agent < match[j].Agent })
	sum.Total = len(match)
	for _, gi := range match {
		switch gi.State {
		case "online":
			sum.Online++
		case stateSilent:
			sum.Silent++
		}
	}
	offset = min(max(offset, 0), len(match))
	end := min(offset+max(limit, 0), len(match))
	sum.Gateways = match[offset:end]
	if sum.Gateways == nil {
		sum.Gateways = []GatewayInfo{}
	}
	return sum
}

// matches applies the page's filter words: each must match, as a part of
// the gateway's name, or as state:online / state:offline / state:silent
// / state:unknown, or "lost" /
// "pending" for gateways with losses or open gaps.
func matches(gi GatewayInfo, q string) bool {
	for w := range strings.FieldsSeq(strings.ToLower(q)) {
		switch {
		case strings.HasPrefix(w, "state:"):
			if gi.State != w[len("state:"):] {
				return false
			}
		case w == "lost":
			if gi.Lost == 0 {
				return false
			}
		case w == "pending":
			if gi.Pending == 0 {
				return false
			}
		default:
			if !strings.Contains(strings.ToLower(gi.Agent), w) {
				return false
			}
		}
	}
	return true
}

// Gateway returns one gateway with its sensors and their recent points;
// false when it is not known.
func (f *Fleet) Gateway(agent string, points bool) (GatewayInfo, []SensorInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.gateways[agent]
	if g == nil {
		return GatewayInfo{}, nil, false
	}
	out := make([]SensorInfo, 0, len(g.sensors))
	for _, s := range g.sensors {
		si := SensorInfo{Sensor: s.id, High: s.seqs.high}
		si.add(&s.seqs)
		for _, se := range s.series {
			x := SeriesInfo{Quantity: se.quantity, Unit: se.unit, Value: finite(se.last.Value), Time: se.last.Time, Seq: se.last.Seq}
			if points {
				x.Points = make([][3]float64, 0, len(se.ring))
				for i := range se.ring {
					p := se.ring[(se.next+i)%len(se.ring)]
					x.Points = append(x.Points, [3]float64{float64(p.T), float64(p.V), float64(p.Raw)})
				}
			}
			si.Series = append(si.Series, x)
		}
		sort.Slice(si.Series, func(i, j int) bool { return si.Series[i].Quantity < si.Series[j].Quantity })
		out = append(out, si)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Sensor < out[j].Sensor })
	return g.info(f.cfg.SilentAfter), out, true
}

// Handler serves the fleet page and its API under prefix ("/fleet"):
//
//	GET /fleet/                   the page
//	GET /fleet/ws                 the websocket: readings of the gateways a client subscribed to
//	GET /api/fleet                Summary; ?q=&offset=&limit= (default 50, at most 500)
//	GET /api/fleet/gateway?agent= one gateway, its sensors and their recent points
//	GET /api/fleet/history?agent=&sensor=&window=24h  min/mean/max from the archive (SetArchive)
func (f *Fleet) Handler() http.Handler {
	mux := http.NewServeMux()
	page := staticHandler()
	mux.Handle("GET /fleet/", page)
	mux.Handle("GET /fleet", page)
	mux.HandleFunc("GET /fleet/ws", f.hub.serveWS)
	mux.HandleFunc("GET /api/fleet", f.serveSummary)
	mux.HandleFunc("GET /api/fleet/gateway", f.serveGateway)
	mux.HandleFunc("GET /api/fleet/history", f.serveHistory)
	return mux
}

// Patterns are the paths Handler serves, for mounting it on a mux.
var Patterns = []string{"/fleet", "/fleet/", "/api/fleet", "/api/fleet/"}

func (f *Fleet) serveSummary(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	offset, _ := strconv.Atoi(q.Get("offset"))
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 {
		limit = 50
	}
	writeJSON(w, f.Summary(q.Get("q"), offset, min(limit, 500)))
}

func (f *Fleet) serveGateway(w http.ResponseWriter, r *http.Request) {
	gi, sensors, ok := f.Gateway(r.URL.Query().Get("agent"), r.URL.Query().Get("points") != "0")
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":"no such gateway"}`)
		return
	}
	writeJSON(w, struct {
		GatewayInfo
		SensorList []SensorInfo `json:"sensor_list"`
	}{gi, sensors})
}

func writeJSON(w http.ResponseWriter, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

// WriteMetrics writes the fleet's families in the Prometheus text format:
// per gateway whether it is up, per gateway and sensor what was received,
// dropped as duplicate, is pending and was lost, what was ignored or
// refused and why, and per source whether it is connected.
func (f *Fleet) WriteMetrics(w io.Writer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	agents := slices.Sorted(maps.Keys(f.gateways))
	fmt.Fprint(w, "# HELP kelvin_fleet_gateway_up 1 when the gateway is online, 0 when offline, silent (nothing heard for its silent_after) or unknown.\n# TYPE kelvin_fleet_gateway_up gauge\n")
	for _, a := range agents {
		up := 0
		if f.gateways[a].state == "online" {
			up = 1
		}
		fmt.Fprintf(w, "kelvin_fleet_gateway_up{agent=\"%s\"} %d\n", label(a), up)
	}
	fmt.Fprint(w, "# HELP kelvin_fleet_gateway_last_seen_timestamp_seconds When the gateway last published, unix seconds.\n# TYPE kelvin_fleet_gateway_last_seen_timestamp_seconds gauge\n")
	for _, a := range agents {
		if t := f.gateways[a].lastSeen; !t.IsZero() {
			fmt.Fprintf(w, "kelvin_fleet_gateway_last_seen_timestamp_seconds{agent=\"%s\"} %.3f\n", label(a), float64(t.UnixMilli())/1e3)
		}
	}
	fmt.Fprint(w, "# HELP kelvin_fleet_sensor_value The last value of each fleet sensor quantity, in its unit.\n# TYPE kelvin_fleet_sensor_value gauge\n")
	for _, a := range agents {
		g := f.gateways[a]
		for _, id := range slices.Sorted(maps.Keys(g.sensors)) {
			s := g.sensors[id]
			for _, q := range slices.Sorted(maps.Keys(s.series)) {
				r := &s.series[q].last
				if v := finite(r.Value); v != nil {
					fmt.Fprintf(w, "kelvin_fleet_sensor_value{agent=\"%s\",sensor=\"%s\",quantity=\"%s\",unit=\"%s\"} %s\n",
						label(a), label(id), label(q), label(r.Unit), strconv.FormatFloat(r.Value, 'g', -1, 64))
				}
			}
		}
	}
	for _, m := range []struct {
		name, typ, help string
		v               func(*seqs) uint64
	}{
		{"kelvin_fleet_received_total", "counter", "Distinct readings received.", func(s *seqs) uint64 { return s.received }},
		{"kelvin_fleet_duplicates_total", "counter", "Readings dropped as duplicates.", func(s *seqs) uint64 { return s.duplicates }},
		{"kelvin_fleet_pending_readings", "gauge", "Missing seqs not yet counted as lost.", (*seqs).pending},
		{"kelvin_fleet_lost_total", "counter", "Missing seqs counted as lost after fleet.loss_after.", func(s *seqs) uint64 { return s.lost }},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.typ)
		for _, a := range agents {
			g := f.gateways[a]
			for _, id := range slices.Sorted(maps.Keys(g.sensors)) {
				fmt.Fprintf(w, "%s{agent=\"%s\",sensor=\"%s\"} %d\n", m.name, label(a), label(id), m.v(&g.sensors[id].seqs))
			}
		}
	}
	fmt.Fprint(w, "# HELP kelvin_fleet_ignored_total Messages ignored, by reason.\n# TYPE kelvin_fleet_ignored_total counter\n")
	for _, k := range slices.Sorted(maps.Keys(f.ignored)) {
		fmt.Fprintf(w, "kelvin_fleet_ignored_total{reason=\"%s\"} %d\n", k, f.ignored[k])
	}
	fmt.Fprint(w, "# HELP kelvin_fleet_refused_total Gateways or sensors not tracked (max_gateways, max_sensors).\n# TYPE kelvin_fleet_refused_total counter\n")
	for _, k := range slices.Sorted(maps.Keys(f.refused)) {
		fmt.Fprintf(w, "kelvin_fleet_refused_total{what=\"%s\"} %d\n", k, f.refused[k])
	}
	fmt.Fprint(w, "# HELP kelvin_fleet_source_up 1 when the source (mqtt, kafka) is connected; /api/fleet says why not.\n# TYPE kelvin_fleet_source_up gauge\n")
	for _, src := range slices.Sorted(maps.Keys(f.connected)) {
		up := 0
		if f.connected[src] {
			up = 1
		}
		fmt.Fprintf(w, "kelvin_fleet_source_up{source=\"%s\"} %d\n", src, up)
	}
	fmt.Fprint(w, "# HELP kelvin_fleet_websocket_clients Fleet page connections.\n# TYPE kelvin_fleet_websocket_clients gauge\n")
	fmt.Fprintf(w, "kelvin_fleet_websocket_clients %d\n", f.hub.clients())
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// label escapes a Prometheus label value.
func label(s string) string { return labelEscaper.Replace(s) }
