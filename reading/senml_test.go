package reading

import (
	"errors"
	"math"
	"testing"
	"time"
)

// TestParseSenMLRoundTrip: every finite reading FormatSenML writes reads
// back whole, but for the escaped names, the unit Kelvin leaves out, the
// time below 2^28 s and the seq rounded from 10^18 up, as documented.
func TestParseSenMLRoundTrip(t *testing.T) {
	for _, r := range roundTripReadings() {
		b := FormatSenML.Append(nil, &r)
		got, err := ParseSenML(b)
		if err != nil || len(got) != 1 {
			t.Errorf("%s: %v, %d readings", b, err, len(got))
			continue
		}
		g := got[0]
		want := r
		want.Agent, want.Sensor, want.Quantity = string(appendSenMLName(nil, r.Agent)), string(appendSenMLName(nil, r.Sensor)), string(appendSenMLName(nil, r.Quantity))
		if senmlUnit(r.Unit) == "" {
			want.Unit = UnitOf(want.Quantity)
		}
		want.Time = r.Time.Truncate(time.Millisecond)
		if r.Time.UnixMilli() < senmlAbsolute {
			want.Time = time.Time{}
		}
		if r.Seq >= 1e18 {
			want.Seq = uint64(float64(r.Seq))
		}
		if !sameReading(g, want) || math.Signbit(g.Value) != math.Signbit(want.Value) || math.Signbit(g.Raw) != math.Signbit(want.Raw) {
			t.Errorf("%s:\n got %+v\nwant %+v", b, g, want)
		}
	}
}

func TestParseSenML(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name, pack string
		want       []Reading
		err        string
	}{
		{"kelvin's", `[{"bn":"kelvin:greenhouse-1:air:","n":"temperature","u":"Cel","v":21.43,"t":1795417200.123},{"n":"raw_temperature","u":"Cel","v":21.5,"t":1795417200.123},{"n":"seq","v":42,"t":1795417200.123}]`,
			[]Reading{{Agent: "greenhouse-1", Sensor: "air", Quantity: Temperature, Value: 21.43, Raw: 21.5, Unit: "°C", Time: time.UnixMilli(1795417200123).UTC(), Seq: 42}}, ""},
		// Base time and unit, the seq first, an unknown label that need
		// not be understood, version 10.
		{"base fields", `[{"bver":10,"bn":"kelvin:gw:bme280:","bt":1795417200,"bu":"Pa","n":"seq","v":7},{"n":"pressure","v":100653.27,"t":0.5,"x":1},{"n":"humidity","u":"%RH","v":55,"t":0.5},{"n":"seq","v":7}]`,
			[]Reading{
				{Agent: "gw", Sensor: "bme280", Quantity: Pressure, Value: 100653.27, Raw: nan, Unit: "Pa", Time: time.UnixMilli(1795417200500).UTC(), Seq: 7},
				{Agent: "gw", Sensor: "bme280", Quantity: Humidity, Value: 55, Raw: nan, Unit: "%RH", Time: time.UnixMilli(1795417200500).UTC(), Seq: 7},
			}, ""},
		{"seq alone", `[{"bn":"kelvin:gh:air:","n":"seq","v":9,"t":1795417200}]`,
			[]Reading{{Agent: "gh", Sensor: "air", Value: nan, Raw: nan, Seq: 9}}, ""},
		{"relative time, large seq", `[{"bn":"kelvin:gh:air:","n":"temperature","v":-0.5,"t":-10},{"n":"seq","v":9.223372036854776e+18}]`,
			[]Reading{{Agent: "gh", Sensor: "air", Quantity: Temperature, Value: -0.5, Raw: nan, Unit: "°C", Seq: 1 << 63}}, ""},
		{"no seq", `[{"bn":"kelvin:gh:air:","n":"temperature","u":"Cel","v":20}]`, nil, "senml: no seq record for gh:air"},
		{"must understand", `[{"bn":"kelvin:gh:air:","n":"seq","v":1,"crit_":true}]`, nil, `senml: record 0: label "crit_" must be understood, and is not`},
		{"newer version", `[{"bver":11,"bn":"kelvin:gh:air:","n":"seq","v":1}]`, nil, "senml: record 0: version 11, newer than RFC 8428's"},
		{"not kelvin's", `[{"bn":"urn:dev:ow:10e2073a01080063:","n":"temp","u":"Cel","v":23.1}]`, nil, `senml: record 0: name "urn:dev:ow:10e2073a01080063:temp" is not kelvin:AGENT:SENSOR:NAME`},
		{"string value", `[{"bn":"kelvin:gh:air:","n":"seq","vs":"1"}]`, nil, "senml: record 0 (kelvin:gh:air:seq): no numeric value"},
		{"two seqs", `[{"bn":"kelvin:gh:air:","n":"seq","v":1},{"n":"seq","v":2}]`, nil, "senml: record 1: a second seq for gh:air"},
		{"fractional seq", `[{"bn":"kelvin:gh:air:","n":"seq","v":1.5}]`, nil, "senml: record 0: seq 1.5: want a whole number from 0 to 2^64-1"},
		{"value twice", `[{"bn":"kelvin:gh:air:","n":"temperature","v":1},{"n":"temperature","v":2},{"n":"seq","v":2}]`, nil, "senml: record 1: kelvin:gh:air:temperature twice"},
		{"not a pack", `{"bn":"kelvin:gh:air:"}`, nil, "senml: json: cannot unmarshal object into Go value of type []map[string]json.RawMessage"},
	} {
		got, err := ParseSenML([]byte(tc.pack))
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s: error %v, want %s", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%s: %+v, %v; want %+v", tc.name, got, err, tc.want)
			continue
		}
		for i := range got {
			if !sameReading(got[i], tc.want[i]) {
				t.Errorf("%s: reading %d:\n got %+v\nwant %+v", tc.name, i, got[i], tc.want[i])
			}
		}
	}
	if _, err := ParseSenML([]byte(`[{"bn":"kelvin:gh:air:","n":"temperature","v":20}]`)); !errors.Is(err, ErrSenMLNoSeq) {
		t.Errorf("no seq: %v, want ErrSenMLNoSeq", err)
	}
}

// sameReading compares readings with NaN equal to NaN.
func sameReading(a, b Reading) bool {
	same := func(x, y float64) bool { return x == y || math.IsNaN(x) && math.IsNaN(y) }
	if !same(a.Value, b.Value) || !same(a.Raw, b.Raw) || !a.Time.Equal(b.Time) {
		return false
	}
	a.Value, a.Raw, a.Time, b.Value, b.Raw, b.Time = 0, 0, time.Time{}, 0, 0, time.Time{}
	return a == b
}
