package httpui

import (
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/publish"
	"github.com/kelvin-gw/kelvin/reading"
)

func TestStatusJSON(t *testing.T) {
	c := &clock{t0.Add(90 * time.Second)}
	st := Status{
		Agent: "greenhouse-1", Version: "v1.2.3", Started: t0, ClockSynced: true,
		Sensors: []SensorStatus{
			{ID: "air", Type: "bme280", Quantities: []string{"temperature", "humidity"}, State: "ok",
				IntervalSeconds: 10, LastReading: t0.Add(80 * time.Second), Reads: 9, Errors: 1},
			{ID: "soil", Type: "ds18b20", State: "faulty", Reason: "crc",
				Error: "ds18b20: read 28-0316a2b8ff01: crc mismatch", IntervalSeconds: 2.5, Errors: 7},
		},
		Outputs: []publish.Status{{Name: "mqtt", URL: "tcp://127.0.0.1:1883", State: "connected", Connected: true, Sent: 9, Bytes: 1500}},
		Notices: []string{"bulk conversion unavailable on w1_bus_master1: permission denied; readings take 3 × 750ms; see docs/hardware.md"},
	}
	s := New(Config{}, func() Status { return st }, c.now, nil)
	rec := get(t, s, "/api/status")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/status: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	want := `{"agent":"greenhouse-1","version":"v1.2.3","started":"2026-11-23T07:00:00Z","now":"2026-11-23T07:01:30Z",` +
		`"sensors":[{"id":"air","type":"bme280","quantities":["temperature","humidity"],"state":"ok","interval_seconds":10,"last_reading":"2026-11-23T07:01:20Z","reads":9,"errors":1},` +
		`{"id":"soil","type":"ds18b20","quantities":[],"state":"faulty","reason":"crc","error":"ds18b20: read 28-0316a2b8ff01: crc mismatch","interval_seconds":2.5,"reads":0,"errors":7}],` +
		`"outputs":[{"name":"mqtt","url":"tcp://127.0.0.1:1883","state":"connected","connected":true,"sent":9,"bytes":1500,"dropped":0,"backlog":0}],` +
		`"clock_synced":true,"notices":["bulk conversion unavailable on w1_bus_master1: permission denied; readings take 3 × 750ms; see docs/hardware.md"],"websocket_clients":0}`
	if got := strings.TrimSpace(rec.Body.String()); got != want {
		t.Errorf("GET /api/status =\n%s\nwant\n%s", got, want)
	}
	if st.Sensors[1].Quantities != nil {
		t.Error("serving the status changed the agent's value")
	}
}

func TestStatusEmpty(t *testing.T) {
	s := New(Config{}, nil, (&clock{t0}).now, nil)
	want := `{"agent":"","version":"","started":"0001-01-01T00:00:00Z","now":"2026-11-23T07:00:00Z","sensors":[],"outputs":[],"clock_synced":false,"websocket_clients":0}`
	if got := strings.TrimSpace(get(t, s, "/api/status").Body.String()); got != want {
		t.Errorf("GET /api/status =\n%s\nwant\n%s", got, want)
	}
}

// TestJSONNeverNonFinite: whatever numbers reach the server, every JSON it
// writes is valid: readings with a NaN or infinite value are left off
// /api/readings and the websocket, huge finite ones are kept as numbers,
// and a non-finite number in the status is sent as 0 rather than failing
// the request (issue 15, item 1).
func TestJSONNeverNonFinite(t *testing.T) {
	c := &clock{t0.Add(time.Minute)}
	st := Status{Agent: "gh",
		Sensors: []SensorStatus{{ID: "air", State: "ok", IntervalSeconds: math.NaN()}, {ID: "b", IntervalSeconds: 2}},
		Buffer:  &BufferStatus{FsyncsPerHour: math.Inf(1), BytesWrittenPerHr: math.NaN(), MaxBytes: 10}}
	s := New(Config{}, func() Status { return st }, c.now, nil)
	ws := dial(t, serve(t, s, nil), nil)
	ch := receiver(t, ws)
	huge := rd("air", reading.Temperature, 1, 1.7e308, 0)
	tiny := rd("air", reading.Temperature, 2, -1.7e308, time.Second)
	s.Publish(huge)
	for i, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		s.Publish(rd("air", reading.Temperature, uint64(10+i), v, 2*time.Second))
	}
	s.Publish(tiny)
	expect(t, ch, jsonOf(huge))
	expect(t, ch, jsonOf(tiny))
	wantReadings(t, s, "", huge, tiny)

	rec := get(t, s, "/api/status")
	if rec.Code != http.StatusOK || !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("GET /api/status with non-finite numbers: %d %s", rec.Code, rec.Body)
	}
	if body := rec.Body.String(); !strings.Contains(body, `"interval_seconds":0,`) || !strings.Contains(body, `"fsyncs_per_hour":0,`) {
		t.Errorf("GET /api/status: %s", body)
	}
	if !math.IsNaN(st.Sensors[0].IntervalSeconds) || !math.IsInf(st.Buffer.FsyncsPerHour, 1) {
		t.Error("serving the status changed the agent's value")
	}
	for _, p := range []string{"/api/readings", "/api/readings?sensor=air", "/readyz", "/healthz"} {
		if rec := get(t, s, p); !json.Valid(rec.Body.Bytes()) {
			t.Errorf("GET %s: invalid JSON %s", p, rec.Body)
		}
	}
}
