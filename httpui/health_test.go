package httpui

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/publish"
)

func TestReady(t *testing.T) {
	now := t0.Add(time.Hour)
	ok := SensorStatus{ID: "air", State: "ok", IntervalSeconds: 5, LastReading: now.Add(-10 * time.Second)}
	for _, tc := range []struct {
		name string
		st   Status
		want []string
	}{
		{"all well", Status{Started: t0, Sensors: []SensorStatus{ok}, Outputs: []publish.Status{{Name: "mqtt", Connected: true}}}, nil},
		{"faulty", Status{Started: t0, Sensors: []SensorStatus{ok, {ID: "tank", State: "faulty", Error: "w1: 28-0316a2b8ff01: crc mismatch", IntervalSeconds: 5}}},
			[]string{"sensor tank: faulty: w1: 28-0316a2b8ff01: crc mismatch"}},
		{"silent", Status{Started: t0, Sensors: []SensorStatus{{ID: "air", State: "ok", IntervalSeconds: 5, LastReading: now.Add(-26 * time.Second)}}},
			[]string{"sensor air: no reading for 26s (interval 5s)"}},
		{"just in time", Status{Started: t0, Sensors: []SensorStatus{{ID: "air", State: "ok", IntervalSeconds: 5, LastReading: now.Add(-25 * time.Second)}}}, nil},
		{"starting", Status{Started: now.Add(-20 * time.Second), Sensors: []SensorStatus{{ID: "air", State: "starting", IntervalSeconds: 5}}}, nil},
		{"never read", Status{Started: now.Add(-30 * time.Second), Sensors: []SensorStatus{{ID: "air", State: "starting", IntervalSeconds: 5}}},
			[]string{"sensor air: no reading since the start 30s ago"}},
		{"output down, buffer has room", Status{Started: t0, Sensors: []SensorStatus{ok},
			Outputs: []publish.Status{{Name: "mqtt", State: "disconnected", Backlog: 100}}, Buffer: &BufferStatus{Bytes: 10, MaxBytes: 100}}, nil},
		{"output down, buffer half full", Status{Started: t0, Sensors: []SensorStatus{ok},
			Outputs: []publish.Status{{Name: "mqtt", State: "disconnected", Backlog: 500000, LastError: "connection refused"}}, Buffer: &BufferStatus{Bytes: 51, MaxBytes: 100}},
			[]string{"output mqtt: disconnected with 500000 readings waiting and the buffer more than half full: connection refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ready(tc.st, now)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("ready = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestHealthEndpoints: /readyz flips to 503 with the reasons when a sensor
// fails; /healthz answers without credentials even when the page asks for
// them.
func TestHealthEndpoints(t *testing.T) {
	now := t0
	st := Status{Started: now.Add(-time.Hour), Now: now,
		Sensors: []SensorStatus{{ID: "air", State: "ok", IntervalSeconds: 1, LastReading: now}}}
	cfg := Config{TokenFile: writeSecret(t, "token", "tok")}
	cfg.SetDefaults()
	if err := cfg.LoadSecrets(); err != nil {
		t.Fatal(err)
	}
	s := New(cfg, func() Status { return st }, func() time.Time { return now }, nil)
	base := "http://" + serve(t, s, nil)
	fetch := func(path string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if path != "/healthz" {
			req.Header.Set("Authorization", "Bearer tok")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := fetch("/healthz"); code != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, body := fetch("/readyz"); code != 200 || strings.TrimSpace(body) != `{"status":"ready"}` {
		t.Errorf("/readyz: %d %s", code, body)
	}
	st.Sensors[0].State, st.Sensors[0].Error = "faulty", "i2c: NACK"
	code, body := fetch("/readyz")
	var r struct {
		Status   string
		Problems []string
	}
	json.Unmarshal([]byte(body), &r)
	if code != 503 || r.Status != "not ready" || len(r.Problems) != 1 || r.Problems[0] != "sensor air: faulty: i2c: NACK" {
		t.Errorf("/readyz with a faulty sensor: %d %s", code, body)
	}
	req, _ := http.NewRequest("GET", base+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("/readyz without the token: %d, want 401", resp.StatusCode)
	}
}
