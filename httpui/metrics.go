package httpui

import (
	"bytes"
	"maps"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kelvin-gw/kelvin/publish"
)

// serveMetrics answers GET /metrics in the Prometheus text exposition
// format (version 0.0.4). It is written by hand: the format is a few lines
// of text, and a client library would cost the binary more than the rest
// of this package (docs/BENCHMARKS.md).
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	st := s.status()
	now := st.Now
	if now.IsZero() {
		now = s.now()
	}
	m := &metricsWriter{}
	m.family("kelvin_build_info", "gauge", "Version of the agent; the value is 1.")
	m.sample("kelvin_build_info", 1, "version", st.Version, "agent", st.Agent, "goversion", runtime.Version())
	if !st.Started.IsZero() {
		m.scalars([]scalar{{"kelvin_start_time_seconds", "gauge", "When the agent started, unix seconds.", unix(st.Started)}})
	}
	s.writeSensorMetrics(m, st.Sensors)
	m.statusFamilies(st.Outputs, "output", outputFamilies(now))
	if len(st.Inputs) > 0 {
		m.statusFamilies(st.Inputs, "input", inputFamilies)
	}
	if b := st.Buffer; b != nil {
		m.scalars(bufferMetrics(b))
	}
	s.writePageMetrics(m, st.ClockSynced)
	writeRuntime(m)
	for _, write := range s.extraMetrics() {
		write(&m.b)
	}

	h := w.Header()
	h.Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.Write(m.b.Bytes())
}

// writeSensorMetrics writes the sensors' families: the newest value of
// each quantity, and each sensor's state and counters.
func (s *Server) writeSensorMetrics(m *metricsWriter, sensors []SensorStatus) {
	latest := s.history.latest()
	m.family("kelvin_sensor_value", "gauge", "The last smoothed value of each sensor quantity, in its unit.")
	for _, k := range sortedKeys(latest) {
		r := latest[k]
		m.sample("kelvin_sensor_value", r.Value, "sensor", k.sensor, "quantity", k.quantity, "unit", r.Unit)
	}
	m.family("kelvin_sensor_up", "gauge", "1 when the sensor's last read succeeded, 0 when it is faulty or has not read yet.")
	for _, x := range sensors {
		m.sample("kelvin_sensor_up", b2f(x.State == "ok"), "sensor", x.ID, "type", x.Type)
	}
	m.family("kelvin_sensor_reads_total", "counter", "Successful reads.")
	for _, x := range sensors {
		m.sample("kelvin_sensor_reads_total", float64(x.Reads), "sensor", x.ID)
	}
	m.family("kelvin_sensor_errors_total", "counter", "Failed reads, by reason (crc, no_device, power_on_reset, ...).")
	for _, x := range sensors {
		for _, reason := range slices.Sorted(maps.Keys(x.ErrorsByReason)) {
			m.sample("kelvin_sensor_errors_total", float64(x.ErrorsByReason[reason]), "sensor", x.ID, "reason", reason)
		}
	}
	m.family("kelvin_sensor_last_success_timestamp_seconds", "gauge", "When the sensor last read successfully, unix seconds.")
	for _, x := range sensors {
		if !x.LastReading.IsZero() {
			m.sample("kelvin_sensor_last_success_timestamp_seconds", unix(x.LastReading), "sensor", x.ID)
		}
	}
	m.family("kelvin_sensor_interval_seconds", "gauge", "The sensor's read interval.")
	for _, x := range sensors {
		m.sample("kelvin_sensor_interval_seconds", x.IntervalSeconds, "sensor", x.ID)
	}
}

// outputFamilies are the outputs' families; now is the time ages are
// measured at.
func outputFamilies(now time.Time) []statusFamily {
	return []statusFamily{
		{"kelvin_output_connected", "gauge", "1 when the output is connected to its broker or cluster.",
			func(o publish.Status) float64 { return b2f(o.Connected) }},
		{"kelvin_output_sent_total", "counter", "Readings the broker acknowledged.",
			func(o publish.Status) float64 { return float64(o.Sent) }},
		{"kelvin_output_sent_bytes_total", "counter", "Payload bytes the broker acknowledged.",
			func(o publish.Status) float64 { return float64(o.Bytes) }},
		{"kelvin_output_backlog_readings", "gauge", "Readings in the buffer not yet acknowledged by this output.",
			func(o publish.Status) float64 { return float64(o.Backlog) }},
		{"kelvin_output_oldest_unsent_age_seconds", "gauge", "Age of the oldest reading this output has not sent; 0 when none waits.",
			func(o publish.Status) float64 {
				if o.Backlog == 0 || o.OldestUnsent.IsZero() {
					return 0
				}
				return max(0, now.Sub(o.OldestUnsent).Seconds())
			}},
		{"kelvin_output_dropped_total", "counter", "Readings deleted from the buffer before this output sent them (buffer full or too old).",
			func(o publish.Status) float64 { return float64(o.Dropped) }},
		{"kelvin_output_failed", "gauge", "1 while the output is down after a failure, waiting to be restarted.",
			func(o publish.Status) float64 { return b2f(o.State == "failed") }},
		{"kelvin_output_restarts_total", "counter", "Restarts of the output after it failed.",
			func(o publish.Status) float64 { return float64(o.Restarts) }},
	}
}

// inputFamilies are the inputs' families (the MQTT input).
var inputFamilies = []statusFamily{
	{"kelvin_input_connected", "gauge", "1 when the input is connected to its broker.",
		func(o publish.Status) float64 { return b2f(o.Connected) }},
	{"kelvin_input_failed", "gauge", "1 while the input is down after a failure, waiting to be restarted.",
		func(o publish.Status) float64 { return b2f(o.State == "failed") }},
	{"kelvin_input_restarts_total", "counter", "Restarts of the input after it failed.",
		func(o publish.Status) float64 { return float64(o.Restarts) }},
}

// bufferMetrics are the buffer's families.
func bufferMetrics(b *BufferStatus) []scalar {
	return []scalar{
		{"kelvin_buffer_bytes", "gauge", "Bytes the buffer holds against buffer.max_bytes: its segments on disk and in the hot tail (kelvin_buffer_hot_bytes).", float64(b.Bytes)},
		{"kelvin_buffer_max_bytes", "gauge", "The buffer's disk budget (buffer.max_bytes).", float64(b.MaxBytes)},
		{"kelvin_buffer_dropped_total", "counter", "Readings dropped from the buffer: full or older than max_age.", float64(b.Dropped)},
		{"kelvin_buffer_refused_total", "counter", "Readings the buffer refused (full: block_newest, or a write error).", float64(b.Refused)},
		{"kelvin_buffer_corrupt_total", "counter", "Corrupt records skipped and torn tails cut.", float64(b.Corrupt)},
		{"kelvin_buffer_fsyncs_total", "counter", "fsync calls of the buffer.", float64(b.Fsyncs)},
		{"kelvin_buffer_written_bytes_total", "counter", "Bytes written to the buffer's files.", float64(b.BytesWritten)},
		{"kelvin_buffer_forwarded_total", "counter", "Readings of other agents stored to be forwarded (fleet.forward).", float64(b.Forwarded)},
		{"kelvin_buffer_hot_bytes", "gauge", "Bytes the buffer's hot tail holds in its tmpfs (buffer.hot_dir).", float64(b.HotBytes)},
		{"kelvin_buffer_hot_full", "gauge", "1 while the hot tail is at buffer.hot_max_bytes or its tmpfs is full: new readings go to disk.", b2f(b.HotFull)},
	}
}

// writePageMetrics writes the clock's state and the page's own families:
// ingest, refused requests, websocket clients and connections.
func (s *Server) writePageMetrics(m *metricsWriter, clockSynced bool) {
	s.ingestStats.mu.Lock()
	accepted, rejected := s.ingestStats.accepted, maps.Clone(s.ingestStats.rejected)
	s.ingestStats.mu.Unlock()
	m.scalars([]scalar{
		{"kelvin_clock_synced", "gauge", "1 when the wall clock is synchronised; readings taken while it is 0 are marked clock=unsynced.", b2f(clockSynced)},
		{"kelvin_ingest_accepted_total", "counter", "Readings pushed to POST /api/ingest and stored.", float64(accepted)},
	})
	m.family("kelvin_ingest_rejected_total", "counter", "Requests to POST /api/ingest refused, by reason.")
	for _, reason := range slices.Sorted(maps.Keys(rejected)) {
		m.sample("kelvin_ingest_rejected_total", float64(rejected[reason]), "reason", reason)
	}
	m.family("kelvin_http_refused_total", "counter", "Requests refused before access control: a foreign Host (DNS rebinding) or a cross-origin request that changes state (CSRF).")
	m.sample("kelvin_http_refused_total", float64(s.guardStats.host.Load()), "reason", "host")
	m.sample("kelvin_http_refused_total", float64(s.guardStats.crossOrigin.Load()), "reason", "cross_origin")
	m.scalars([]scalar{
		{"kelvin_websocket_clients", "gauge", "Live page connections.", float64(s.Clients())},
		{"kelvin_websocket_ping_timeouts_total", "counter", "Live page clients dropped for not answering a ping in time.", float64(s.wsPingDrops.Load())},
	})
	if ll := s.listener.Load(); ll != nil {
		m.scalars([]scalar{
			{"kelvin_http_connections", "gauge", "TCP connections open to the page and its API.", float64(ll.open())},
			{"kelvin_http_connections_refused_total", "counter", "Connections closed at once for being over http.max_connections or http.max_connections_per_address.", float64(ll.refused.Load())},
		})
	}
	m.scalars([]scalar{{"kelvin_websocket_skipped_total", "counter", "Readings live page clients skipped, having fallen too far behind (the page then reloads them).", float64(s.wsSkipped.Load())}})
}

// scalar is a metric family of one sample without labels.
type scalar struct {
	name, typ, help string
	v               float64
}

// scalars writes each family with its one sample.
func (m *metricsWriter) scalars(fams []scalar) {
	for _, f := range fams {
		m.family(f.name, f.typ, f.help)
		m.sample(f.name, f.v)
	}
}

// statusFamily is one metric family of the outputs' or inputs' status:
// its value for one of them.
type statusFamily struct {
	name, typ, help string
	v               func(publish.Status) float64
}

// statusFamilies writes each family with a sample per output or input,
// labelled label="<name>".
func (m *metricsWriter) statusFamilies(parts []publish.Status, label string, fams []statusFamily) {
	for _, f := range fams {
		m.family(f.name, f.typ, f.help)
		for _, p := range parts {
			m.sample(f.name, f.v(p), label, p.Name)
		}
	}
}

// metricsWriter appends families and samples in the text format.
type metricsWriter struct{ b bytes.Buffer }

func (m *metricsWriter) family(name, typ, help string) {
	m.b.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + typ + "\n")
}

// sample writes one sample; labels are name, value pairs.
func (m *metricsWriter) sample(name string, v float64, labels ...string) {
	m.b.WriteString(name)
	if len(labels) > 0 {
		m.b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				m.b.WriteByte(',')
			}
			m.b.WriteString(labels[i] + `="` + labelEscaper.Replace(labels[i+1]) + `"`)
		}
		m.b.WriteByte('}')
	}
	m.b.WriteByte(' ')
	switch {
	case math.IsNaN(v):
		m.b.WriteString("NaN")
	case math.IsInf(v, 1):
		m.b.WriteString("+Inf")
	case math.IsInf(v, -1):
		m.b.WriteString("-Inf")
	default:
		m.b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	}
	m.b.WriteByte('\n')
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
