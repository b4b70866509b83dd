package httpui

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kelvin-gw/kelvin/publish"
	"github.com/kelvin-gw/kelvin/reading"
)

// TestMetrics: /metrics parses with Prometheus's own text parser, and has
// every family a dashboard needs with the agent's values.
func TestMetrics(t *testing.T) {
	now := t0.Add(time.Hour)
	st := Status{Agent: "gh", Version: "v1.2.3", Started: t0, Now: now,
		Sensors: []SensorStatus{
			{ID: "air", Type: "bme280", State: "ok", IntervalSeconds: 10, LastReading: now, Reads: 360},
			{ID: "tank", Type: "ds18b20", State: "faulty", Reason: "crc", IntervalSeconds: 5, Reads: 7, Errors: 3,
				ErrorsByReason: map[string]uint64{"crc": 2, "power_on_reset": 1}},
		},
		Outputs: []publish.Status{
			{Name: "mqtt", Connected: true, Sent: 1000, Bytes: 150000},
			{Name: "kafka", Backlog: 42, OldestUnsent: now.Add(-90 * time.Second), Dropped: 5},
		},
		Buffer: &BufferStatus{Bytes: 4096, MaxBytes: 64 << 20, Dropped: 5, Fsyncs: 3600, BytesWritten: 1 << 20, Forwarded: 77},
	}
	s := New(Config{}, func() Status { return st }, func() time.Time { return now }, nil)
	s.Publish(reading.Reading{Sensor: "air", Quantity: reading.Temperature, Unit: "°C", Value: 21.5, Time: now})
	s.Publish(reading.Reading{Sensor: "air", Quantity: reading.Humidity, Unit: "%RH", Value: 40, Time: now})
	resp, err := http.Get("http://" + serve(t, s, nil) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	// The legacy scheme: the names must also suit Prometheus before 3.0.
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("Prometheus cannot parse /metrics: %v\n%s", err, body)
	}
	get := func(name string, labels ...string) (float64, bool) {
		f := fams[name]
		if f == nil {
			return 0, false
		}
	next:
		for _, m := range f.Metric {
			have := map[string]string{}
			for _, l := range m.Label {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			}
		}
		return 0, false
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"kelvin_sensor_value", []string{"sensor", "air", "quantity", "temperature", "unit", "°C"}, 21.5},
		{"kelvin_sensor_value", []string{"sensor", "air", "quantity", "humidity"}, 40},
		{"kelvin_sensor_up", []string{"sensor", "air"}, 1},
		{"kelvin_sensor_up", []string{"sensor", "tank"}, 0},
		{"kelvin_sensor_reads_total", []string{"sensor", "air"}, 360},
		{"kelvin_sensor_errors_total", []string{"sensor", "tank", "reason", "crc"}, 2},
		{"kelvin_sensor_errors_total", []string{"sensor", "tank", "reason", "power_on_reset"}, 1},
		{"kelvin_sensor_last_success_timestamp_seconds", []string{"sensor", "air"}, float64(now.Unix())},
		{"kelvin_output_connected", []string{"output", "mqtt"}, 1},
		{"kelvin_output_connected", []string{"output", "kafka"}, 0},
		{"kelvin_output_sent_total", []string{"output", "mqtt"}, 1000},
		{"kelvin_output_backlog_readings", []string{"output", "kafka"}, 42},
		{"kelvin_output_oldest_unsent_age_seconds", []string{"output", "kafka"}, 90},
		{"kelvin_output_dropped_total", []string{"output", "kafka"}, 5},
		{"kelvin_buffer_bytes", nil, 4096},
		{"kelvin_buffer_max_bytes", nil, 64 << 20},
		{"kelvin_buffer_fsyncs_total", nil, 3600},
		{"kelvin_buffer_forwarded_total", nil, 77},
		{"kelvin_websocket_clients", nil, 0},
		{"kelvin_build_info", []string{"version", "v1.2.3", "agent", "gh"}, 1},
	} {
		got, ok := get(c.name, c.labels...)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// The runtime's and the process's standard series, under the Prometheus
	// Go and process collectors' names, so that Go dashboards work.
	positive := []string{"go_goroutines", "go_threads", "go_sched_gomaxprocs_threads", "process_resident_memory_bytes",
		"process_virtual_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds"}
	for _, g := range goSeries {
		if !slices.Contains([]string{"go_gc_cycles_total", "go_memstats_frees_total", "go_memstats_heap_released_bytes"}, g.name) {
			positive = append(positive, g.name)
		}
	}
	for _, name := range positive {
		if v, ok := get(name); !ok || v <= 0 {
			t.Errorf("%s = %v, %v", name, v, ok)
		}
	}
	if v, ok := get("process_start_time_seconds"); !ok || time.Since(time.Unix(int64(v), 0)).Abs() > 24*time.Hour {
		t.Errorf("process_start_time_seconds = %v: not this process's start", v)
	}
	if _, ok := get("process_cpu_seconds_total"); !ok {
		t.Error("no process_cpu_seconds_total")
	}
	if f := fams["go_gc_duration_seconds"]; f.GetType().String() != "SUMMARY" || len(f.GetMetric()[0].GetSummary().GetQuantile()) != 5 {
		t.Errorf("go_gc_duration_seconds: %v", f)
	}
	if fams["kelvin_sensor_errors_total"].GetType().String() != "COUNTER" {
		t.Errorf("kelvin_sensor_errors_total is a %v", fams["kelvin_sensor_errors_total"].GetType())
	}
}

// TestMetricsValueIsNewestByTime: a back-filled reading (stamped 50 min
// ago, arriving last) does not become the sensor's current value; the
// newest by time stays (issue 15, item 3).
func TestMetricsValueIsNewestByTime(t *testing.T) {
	now := t0.Add(time.Hour)
	s := New(Config{}, nil, func() time.Time { return now }, nil)
	s.Publish(reading.Reading{Sensor: "air", Quantity: reading.Temperature, Unit: "°C", Value: 21.5, Time: now})
	s.Publish(reading.Reading{Sensor: "air", Quantity: reading.Temperature, Unit: "°C", Value: 4.25, Time: now.Add(-50 * time.Minute)})
	body := get(t, s, "/metrics").Body.String()
	if want := `kelvin_sensor_value{sensor="air",quantity="temperature",unit="°C"} 21.5` + "\n"; !strings.Contains(body, want) {
		t.Errorf("/metrics lacks %q:\n%s", want, body)
	}
	// A newer reading takes over.
	s.Publish(reading.Reading{Sensor: "air", Quantity: reading.Temperature, Unit: "°C", Value: 22, Time: now.Add(time.Second)})
	if want := `kelvin_sensor_value{sensor="air",quantity="temperature",unit="°C"} 22` + "\n"; !strings.Contains(get(t, s, "/metrics").Body.String(), want) {
		t.Errorf("/metrics lacks %q", want)
	}
}
