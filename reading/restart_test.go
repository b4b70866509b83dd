package reading

import (
	"testing"
	"time"
)

func TestSensorRestart(t *testing.T) {
	r := SensorRestart{Started: time.Unix(1_800_000_000, 0).UTC(), SeqResume: 65537, SkipFrom: 1743}
	b := MarshalSensorRestart(r)
	if want := `{"started":"2027-01-15T08:00:00Z","seq_resume":65537,"skip_from":1743}`; string(b) != want {
		t.Fatalf("header %s, want %s", b, want)
	}
	if got, err := ParseSensorRestart(b); err != nil || got != r {
		t.Fatalf("ParseSensorRestart = %+v, %v; want %+v", got, err, r)
	}
	for _, bad := range []string{``, `{}`, `{"seq_resume":0}`, `{"seq_resume":5,"skip_from":6}`, `[1]`} {
		if _, err := ParseSensorRestart([]byte(bad)); err == nil {
			t.Errorf("ParseSensorRestart(%q) took it", bad)
		}
	}
}

func TestRestartSensor(t *testing.T) {
	a, err := ParseRestart([]byte(`{"started":"2026-12-04T22:00:00Z","seq_resume":{"tank":65537,"air":9},"skip_from":{"tank":1743,"air":10}}`))
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := a.Sensor("tank"); !ok || s.SeqResume != 65537 || s.SkipFrom != 1743 || s.Started.IsZero() {
		t.Errorf("tank: %+v %v", s, ok)
	}
	// A skip_from above seq_resume is not a range: unknown.
	if s, ok := a.Sensor("air"); !ok || s.SeqResume != 9 || s.SkipFrom != 0 {
		t.Errorf("air: %+v %v", s, ok)
	}
	if _, ok := a.Sensor("soil"); ok {
		t.Error("soil did not resume after a gap")
	}
	if _, err := ParseRestart([]byte(`{"started":"2026-12-04T22:00:00Z"}`)); err == nil {
		t.Error("an announcement without seq_resume taken")
	}
}
