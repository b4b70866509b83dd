package reading

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestAppendJSONWireFormat(t *testing.T) {
	r := Reading{
		Agent: "greenhouse-1", Sensor: "air", Quantity: Temperature,
		Value: 21.43, Raw: 21.5, Unit: "°C",
		Time: time.Date(2026, 11, 23, 7, 0, 0, 123456789, time.UTC), Seq: 42,
	}
	// The example of the wire format, byte for byte.
	want := `{"agent":"greenhouse-1","sensor":"air","quantity":"temperature","value":21.43,"raw":21.5,"unit":"°C","ts":"2026-11-23T07:00:00.123Z","seq":42}`
	if got := string(r.AppendJSON(nil)); got != want {
		t.Errorf("AppendJSON =\n%s\nwant\n%s", got, want)
	}
	// A non-UTC time is written in UTC.
	r.Time = r.Time.In(time.FixedZone("CET", 3600))
	if got := string(r.AppendJSON(nil)); got != want {
		t.Errorf("AppendJSON with a zoned time =\n%s\nwant\n%s", got, want)
	}
}

func TestAppendJSONRoundTrip(t *testing.T) {
	for _, r := range []Reading{
		{Agent: `odd "agent"\` + "\n\t<&>\x01", Sensor: "s", Quantity: Humidity, Value: -0.0625, Raw: 1e-7, Unit: "%RH", Time: time.Unix(0, 0).UTC(), Seq: 1},
		{Agent: "a", Sensor: "b", Quantity: Pressure, Value: 100653.27, Raw: 1e21, Unit: "Pa", Time: time.Date(2030, 1, 2, 3, 4, 5, 6e6, time.UTC), Seq: math.MaxUint64},
	} {
		b := r.AppendJSON(nil)
		var got Reading
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got != r {
			t.Errorf("round trip of %s = %+v, want %+v", b, got, r)
		}
	}
}

func TestAppendJSONNonFinite(t *testing.T) {
	r := Reading{Value: math.NaN(), Raw: math.Inf(1)}
	var m map[string]any
	if err := json.Unmarshal(r.AppendJSON(nil), &m); err != nil {
		t.Fatal(err)
	}
	if m["value"] != nil || m["raw"] != nil {
		t.Errorf("non-finite values = %v, %v; want null", m["value"], m["raw"])
	}
}

func TestAppendJSONNoAllocs(t *testing.T) {
	r := Reading{Agent: "gh1", Sensor: "air", Quantity: Temperature, Value: 21.43, Raw: 21.5, Unit: "°C", Time: time.Now(), Seq: 42}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = r.AppendJSON(buf[:0]) }); n != 0 {
		t.Errorf("AppendJSON allocates %v times per reading", n)
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	r := Reading{Agent: "greenhouse-1", Sensor: "air", Quantity: Temperature, Value: 21.43, Raw: 21.5, Unit: "°C", Time: time.Now(), Seq: 42}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendJSON(buf[:0])
	}
}

// TestClockField: a reading taken on an unsynchronised clock says so in
// JSON and line protocol; Mono and Boot are never published.
func TestClockField(t *testing.T) {
	r := Reading{Agent: "gh", Sensor: "air", Quantity: Temperature, Value: 21.43, Raw: 21.5, Unit: "°C",
		Time: time.Date(2026, 11, 23, 7, 0, 0, 123e6, time.UTC), Seq: 42, Clock: ClockUnsynced, Mono: 123456789, Boot: 7}
	if got, want := string(r.AppendJSON(nil)), `{"agent":"gh","sensor":"air","quantity":"temperature","value":21.43,"raw":21.5,"unit":"°C","ts":"2026-11-23T07:00:00.123Z","seq":42,"clock":"unsynced"}`; got != want {
		t.Errorf("JSON\n got %s\nwant %s", got, want)
	}
	if got, want := string(FormatInflux.Append(nil, &r)), `temperature,agent=gh,sensor=air,unit=°C,clock=unsynced value=21.43,raw=21.5,seq=42i 1795417200123000000`; got != want {
		t.Errorf("influx\n got %s\nwant %s", got, want)
	}
}

// TestCheckPlausible: values no sensor can measure are refused with a
// reason; the ends of each range are accepted.
func TestCheckPlausible(t *testing.T) {
	for _, tc := range []struct {
		q   string
		v   float64
		msg string // "" for plausible
	}{
		{Temperature, 21.5, ""},
		{Temperature, -273.15, ""},
		{Temperature, 5000, ""},
		{Temperature, -273.16, "outside the plausible -273.15..5000 °C"},
		{Temperature, 1e308, "temperature 1e+308 °C is outside"},
		{Temperature, -1.7e308, "outside"},
		{Temperature, math.NaN(), "not a finite number"},
		{Temperature, math.Inf(1), "not a finite number"},
		{Humidity, 100, ""},
		{Humidity, 1e300, "outside the plausible -10..110 %RH"},
		{Pressure, 101325, ""},
		{Pressure, -1, "outside the plausible 0..1e+07 Pa"},
		{"co2", 1e300, ""},
		{"co2", math.Inf(-1), "not a finite number"},
	} {
		err := CheckPlausible(tc.q, tc.v)
		switch {
		case tc.msg == "" && err != nil:
			t.Errorf("CheckPlausible(%s, %g) = %v, want nil", tc.q, tc.v, err)
		case tc.msg != "" && (err == nil || !errors.Is(err, ErrImplausible) || !strings.Contains(err.Error(), tc.msg)):
			t.Errorf("CheckPlausible(%s, %g) = %v, want ErrImplausible with %q", tc.q, tc.v, err, tc.msg)
		}
	}
}
