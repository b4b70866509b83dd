package ingest

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseJSON(t *testing.T) {
	ts := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, in string
		want     []Item
		err      string
	}{
		{"one", `{"sensor":"shed","value":4.5,"ts":"2026-11-26T07:00:00Z","unit":"°C","quantity":"temperature"}`,
			[]Item{{Sensor: "shed", Value: 4.5, Time: ts, Unit: "°C", Quantity: "temperature"}}, ""},
		{"batch, no ts", `[{"sensor":"a","value":1},{"sensor":"b","value":-2e1}]`,
			[]Item{{Sensor: "a", Value: 1}, {Sensor: "b", Value: -20}}, ""},
		{"unix ts", `{"sensor":"a","value":1,"ts":1795417200.5}`,
			[]Item{{Sensor: "a", Value: 1, Time: time.Unix(1795417200, 5e8)}}, ""},
		{"kelvin's own format", `{"agent":"x","sensor":"a","quantity":"temperature","value":21.43,"raw":21.5,"unit":"°C","ts":"2026-11-26T07:00:00Z","seq":42}`,
			[]Item{{Sensor: "a", Quantity: "temperature", Value: 21.43, Unit: "°C", Time: ts}}, ""},
		{"bad JSON", `{"sensor":"a","value":1`, nil, "bad JSON"},
		{"NaN", `{"sensor":"a","value":NaN}`, nil, "bad JSON"},
		{"string value", `{"sensor":"a","value":"4.5"}`, nil, "value: want a number"},
		{"no value", `{"sensor":"a"}`, nil, "value: required"},
		{"null value", `{"sensor":"a","value":null}`, nil, "value: required"},
		{"no sensor", `{"value":1}`, nil, "sensor: required"},
		{"huge", `{"sensor":"a","value":1e999}`, nil, "value: want a number"},
		{"unknown field", `{"sensor":"a","value":1,"temp":3}`, nil, `unknown field "temp"`},
		{"bad ts", `{"sensor":"a","value":1,"ts":"yesterday"}`, nil, "ts: want RFC 3339"},
		{"one bad in a batch", `[{"sensor":"a","value":1},{"sensor":"b","value":true}]`, nil, "reading 1: "},
		{"empty", ``, nil, "empty body"},
		{"empty array", `[]`, nil, "empty array"},
		{"two values", `{"sensor":"a","value":1} {"sensor":"b","value":2}`, nil, "more than one JSON value"},
		// A time that is given must be one: not Go's zero time, nor 1970.
		{"zero time", `{"sensor":"a","value":1,"ts":"0001-01-01T00:00:00Z"}`, nil, "ts 0001-01-01T00:00:00Z is not after 1970"},
		{"zero time as seconds", `{"sensor":"a","value":1,"ts":-62135596800}`, nil, "is not after 1970"},
		{"the epoch", `{"sensor":"a","value":1,"ts":0}`, nil, "ts 1970-01-01T00:00:00Z is not after 1970"},
		{"zero time in a batch", `[{"sensor":"a","value":1},{"sensor":"a","value":1,"ts":"0001-01-01T00:00:00Z"}]`, nil, "reading 1: "},
		// A key twice is refused, not taken last.
		{"value twice", `{"sensor":"a","value":1,"value":1e300}`, nil, `duplicate key "value"`},
		{"sensor twice in a batch", `[{"sensor":"a","value":1},{"sensor":"a","sensor":"b","value":1}]`, nil, `duplicate key "sensor"`},
		{"nested key twice", `{"sensor":"a","value":1,"agent":{"x":1,"x":2}}`, nil, `duplicate key "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseJSON([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want ErrBadInput containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i].Sensor != tc.want[i].Sensor || got[i].Value != tc.want[i].Value || !got[i].Time.Equal(tc.want[i].Time) ||
					got[i].Unit != tc.want[i].Unit || got[i].Quantity != tc.want[i].Quantity {
					t.Errorf("item %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestParseLine(t *testing.T) {
	got, err := ParseLine([]byte("# from a script\ntemperature,sensor=shed,unit=°C,site=x value=4.5,raw=4.6 1795417200000000000\n\nhumidity,sensor=my\\ shed value=55i\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{
		{Sensor: "shed", Quantity: "temperature", Unit: "°C", Value: 4.5, Time: time.Unix(0, 1795417200000000000)},
		{Sensor: "my shed", Quantity: "humidity", Value: 55},
	}
	if len(got) != 2 {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i].Sensor != want[i].Sensor || got[i].Quantity != want[i].Quantity || got[i].Unit != want[i].Unit ||
			got[i].Value != want[i].Value || !got[i].Time.Equal(want[i].Time) {
			t.Errorf("line item %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for in, msg := range map[string]string{
		"temperature value=1":                       "the sensor tag is required",
		"temperature,sensor=a raw=1":                "the value field is required",
		"temperature,sensor=a value=abc":            "want a number",
		"temperature,sensor=a value=NaN":            "want a number",
		"temperature,sensor=a value=1 yesterday":    "timestamp",
		"temperature,sensor=a":                      "want: measurement",
		"":                                          "no readings",
		"temperature,sensor=a value=1\nbroken line": "line 2: ",
		// Decimal floats only, each key once, a time after 1970.
		"temperature,sensor=a value=0x1p4":             "want a number",
		"temperature,sensor=a value=0x10i":             "want an integer",
		"temperature,sensor=a value=1_000":             "want a number",
		"temperature,sensor=a value=Inf":               "want a number",
		"temperature,sensor=a value=1.5i":              "want an integer",
		"temperature,sensor=a value=1,value=1e300":     `field "value" appears twice`,
		"temperature,sensor=a,sensor=b value=1":        `tag "sensor" appears twice`,
		"temperature,sensor=a value=1 0":               "ts 1970-01-01T00:00:00Z is not after 1970",
		"temperature,sensor=a value=1 -62135596800000": "is not after 1970",
	} {
		if _, err := ParseLine([]byte(in)); err == nil || !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseLine(%q) = %v, want an error containing %q", in, err, msg)
		}
	}
}

// FuzzParse: no input makes the parsers panic, and whatever they accept
// has a sensor and a finite value.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"sensor":"shed","value":4.5,"ts":"2026-11-26T07:00:00Z"}`))
	f.Add([]byte(`[{"sensor":"a","value":1},{"sensor":"b","value":2,"ts":1795417200}]`))
	f.Add([]byte("temperature,sensor=shed,unit=°C value=4.5 1795417200000000000\n"))
	f.Add([]byte(`temperature,sensor=a\,b value=1i`))
	// Refused: zero and epoch times, duplicate keys and fields, hex floats.
	f.Add([]byte(`{"sensor":"a","value":1,"ts":"0001-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"sensor":"a","value":1,"value":2}`))
	f.Add([]byte("temperature,sensor=a value=1,value=2 0\n"))
	f.Add([]byte("temperature,sensor=a value=0x1p4\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, parse := range []func([]byte) ([]Item, error){ParseJSON, ParseLine} {
			items, err := parse(b)
			if err != nil {
				if !errors.Is(err, ErrBadInput) {
					t.Fatalf("error %v is not ErrBadInput", err)
				}
				continue
			}
			for _, it := range items {
				if it.Sensor == "" || math.IsNaN(it.Value) || math.IsInf(it.Value, 0) ||
					(!it.Time.IsZero() && !it.Time.After(time.Unix(0, 0))) {
					t.Fatalf("accepted %+v", it)
				}
			}
		}
	})
}

// TestValueAt reads values out of payloads in the documented shapes of
// Tasmota (tele/<device>/SENSOR), Zigbee2MQTT and ESPHome (bare state).
func TestValueAt(t *testing.T) {
	tasmota := `{"Time":"2026-11-26T08:00:00","AM2301":{"Temperature":21.3,"Humidity":45.2,"DewPoint":8.9},"TempUnit":"C"}`
	z2m := `{"battery":97,"humidity":61.5,"linkquality":120,"temperature":14.2,"voltage":2995}`
	for _, tc := range []struct {
		payload, path string
		want          float64
		err           string
	}{
		{tasmota, "$.AM2301.Temperature", 21.3, ""},
		{tasmota, "$.AM2301.Humidity", 45.2, ""},
		{z2m, "$.temperature", 14.2, ""},
		{"14.26", "", 14.26, ""},
		{" 14.26\n", "", 14.26, ""},
		{`{"t":"21.5"}`, "$.t", 21.5, ""},
		{"21", "$", 21, ""},
		{tasmota, "$.DS18B20.Temperature", 0, `no field "DS18B20"`},
		{tasmota, "$.TempUnit", 0, `want a number, got "C"`},
		{tasmota, "$.AM2301", 0, "want a number"},
		{"nan", "", 0, "is not a number"},
		{"ON", "", 0, "is not a number"},
		{"{", "$.t", 0, "not JSON"},
		{`{"t":[1]}`, "$.t", 0, "want a number"},
		{"0x1p4", "", 0, "is not a number"},
		{"Infinity", "", 0, "is not a number"},
		{`{"t":"0x10"}`, "$.t", 0, "want a number"},
		{`{"t":1,"t":1e300}`, "$.t", 0, `duplicate key "t"`},
	} {
		got, err := ValueAt([]byte(tc.payload), tc.path)
		if tc.err != "" {
			if err == nil || !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ValueAt(%.30q, %q) = %v, %v; want an error with %q", tc.payload, tc.path, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ValueAt(%.30q, %q) = %v, %v; want %v", tc.payload, tc.path, got, err, tc.want)
		}
	}
	for path, ok := range map[string]bool{"": true, "$": true, "$.a": true, "$.a.b": true, "a.b": false, "$.": false, "$.a..b": false} {
		if err := CheckPath(path); (err == nil) != ok {
			t.Errorf("CheckPath(%q) = %v", path, err)
		}
	}
}

// FuzzValueAt: no payload makes it panic; what it returns is finite.
func FuzzValueAt(f *testing.F) {
	f.Add([]byte(`{"AM2301":{"Temperature":21.3}}`), "$.AM2301.Temperature")
	f.Add([]byte("14.26"), "")
	f.Add([]byte("0x1p4"), "")
	f.Add([]byte(`{"t":1,"t":2}`), "$.t")
	f.Fuzz(func(t *testing.T, payload []byte, path string) {
		if CheckPath(path) != nil {
			return
		}
		v, err := ValueAt(payload, path)
		if err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
			t.Fatalf("ValueAt returned %v", v)
		}
		if err != nil && !errors.Is(err, ErrBadInput) {
			t.Fatalf("error %v is not ErrBadInput", err)
		}
	})
}
