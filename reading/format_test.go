package reading

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/format/*.golden")

// example is the reading of the doc examples.
var example = Reading{
	Agent: "greenhouse-1", Sensor: "air", Quantity: Temperature,
	Value: 21.43, Raw: 21.5, Unit: "°C",
	Time: time.Date(2026, 11, 23, 7, 0, 0, 123456789, time.UTC), Seq: 42,
}

// goldenReadings are encoded, one line each and in this order, into
// testdata/format/FORMAT.golden.
var goldenReadings = []Reading{
	// 1: the example.
	example,
	// 2: humidity, a whole second, an integral value.
	{Agent: "greenhouse-1", Sensor: "sht4x", Quantity: Humidity, Value: 55, Raw: 54.96, Unit: "%RH",
		Time: time.Date(2026, 11, 23, 7, 0, 1, 0, time.UTC), Seq: 7},
	// 3: pressure, a tenth of a second, in another zone (written as UTC).
	{Agent: "greenhouse-1", Sensor: "bme280", Quantity: Pressure, Value: 100653.27, Raw: 100653.2734375, Unit: "Pa",
		Time: time.Date(2026, 11, 23, 8, 0, 0, 100e6, time.FixedZone("CET", 3600)), Seq: 1},
	// 4: tag escaping; the largest seq the influx integer field holds.
	{Agent: "green house,1", Sensor: "a=b", Quantity: Temperature, Value: -5.0625, Raw: -5.0625, Unit: "°C",
		Time: time.Date(2026, 11, 23, 7, 0, 0, 120e6, time.UTC), Seq: math.MaxInt64},
	// 5: measurement escaping, no unit, non-ASCII agent.
	{Agent: "Gewächshaus", Sensor: "scd41", Quantity: "co2 ppm,x=y", Value: 612, Raw: 611.5,
		Time: time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC), Seq: 3},
	// 6: backslashes (a trailing one cannot be written) and control characters.
	{Agent: `C:\gh\`, Sensor: "line\nbreak\ttab", Quantity: Temperature, Value: 0.1, Raw: 0.125, Unit: "°C",
		Time: time.Date(2026, 11, 23, 7, 0, 0, 5e6, time.UTC), Seq: 5},
	// 7: a value that is not finite.
	{Agent: "gh", Sensor: "air", Quantity: Temperature, Value: math.NaN(), Raw: 21.5, Unit: "°C",
		Time: time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC), Seq: 8},
	// 8: no finite value at all.
	{Agent: "gh", Sensor: "air", Quantity: Temperature, Value: math.Inf(1), Raw: math.NaN(), Unit: "°C",
		Time: time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC), Seq: 9},
	// 9: the zero time.
	{Agent: "gh", Sensor: "air", Quantity: Temperature, Value: 20, Raw: 20, Unit: "°C", Seq: 10},
	// 10: a time SenML would read as relative.
	{Agent: "gh", Sensor: "air", Quantity: Temperature, Value: -0.5, Raw: -0.5, Unit: "°C",
		Time: time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC), Seq: 11},
}

func TestFormatGolden(t *testing.T) {
	for _, f := range Formats {
		t.Run(string(f), func(t *testing.T) {
			var got []byte
			for i := range goldenReadings {
				got = f.Append(got, &goldenReadings[i])
				got = append(got, '\n')
			}
			path := filepath.Join("testdata", "format", string(f)+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			gotLines, wantLines := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
			if len(gotLines) != len(wantLines) {
				t.Fatalf("%d lines, %s has %d", len(gotLines), path, len(wantLines))
			}
			for i := range gotLines {
				if gotLines[i] != wantLines[i] {
					t.Errorf("reading %d:\n got %s\nwant %s", i+1, gotLines[i], wantLines[i])
				}
			}
		})
	}
}

// TestFormatExamples checks the examples of the doc comments byte for byte,
// independently of the golden files.
func TestFormatExamples(t *testing.T) {
	for _, tt := range []struct {
		f    Format
		want string
	}{
		{FormatJSON, `{"agent":"greenhouse-1","sensor":"air","quantity":"temperature","value":21.43,"raw":21.5,"unit":"°C","ts":"2026-11-23T07:00:00.123Z","seq":42}`},
		{FormatInflux, `temperature,agent=greenhouse-1,sensor=air,unit=°C value=21.43,raw=21.5,seq=42i 1795417200123000000`},
		{FormatValue, `21.43`},
		{FormatSenML, `[{"bn":"kelvin:greenhouse-1:air:","n":"temperature","u":"Cel","v":21.43,"t":1795417200.123},{"n":"raw_temperature","u":"Cel","v":21.5,"t":1795417200.123},{"n":"seq","v":42,"t":1795417200.123}]`},
		{"", string(example.AppendJSON(nil))},
		{"xml", string(example.AppendJSON(nil))},
	} {
		if got := string(tt.f.Append(nil, &example)); got != tt.want {
			t.Errorf("%q.Append =\n%s\nwant\n%s", tt.f, got, tt.want)
		}
	}
}

func TestFormatAppendKeepsPrefix(t *testing.T) {
	for _, f := range Formats {
		b := f.Append([]byte("prefix|"), &example)
		if want := "prefix|" + string(f.Append(nil, &example)); string(b) != want {
			t.Errorf("%s: Append to a prefix = %q, want %q", f, b, want)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Format
	}{
		{"", FormatJSON}, {"json", FormatJSON}, {"influx", FormatInflux}, {"value", FormatValue}, {"senml", FormatSenML},
	} {
		got, err := ParseFormat(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, f := range Formats {
		if got, err := ParseFormat(string(f)); err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %q, %v: Formats lists a name ParseFormat rejects", f, got, err)
		}
	}
	if len(Formats) != 4 || Formats[0] != FormatJSON {
		t.Errorf("Formats = %q, want the four formats, json first", Formats)
	}
	for in, want := range map[string]string{
		"xml":      `want json, influx, value or senml, got "xml"`,
		"JSON":     `want json, influx, value or senml, got "JSON"`,
		" json":    `want json, influx, value or senml, got " json"`,
		"influx\n": `want json, influx, value or senml, got "influx\n"`,
	} {
		if _, err := ParseFormat(in); err == nil || err.Error() != want {
			t.Errorf("ParseFormat(%q) error = %v, want %s", in, err, want)
		}
	}
}

func TestContentType(t *testing.T) {
	for f, want := range map[Format]string{
		FormatJSON:   "application/json",
		FormatInflux: "text/plain; charset=utf-8",
		FormatValue:  "text/plain",
		FormatSenML:  "application/senml+json",
		"":           "application/json",
	} {
		if got := f.ContentType(); got != want {
			t.Errorf("%q.ContentType() = %q, want %q", f, got, want)
		}
	}
}

// roundTripReadings are finite readings whose every field each format
// carries exactly (influx and senml: see the doc for what they leave out).
func roundTripReadings() []Reading {
	ts := []time.Time{
		example.Time,
		time.Date(2026, 11, 23, 7, 0, 1, 0, time.UTC),
		time.Date(2026, 11, 23, 7, 0, 1, 100e6, time.UTC),
		time.Date(2026, 11, 23, 7, 0, 1, 10e6, time.UTC),
		time.Date(2026, 11, 23, 7, 0, 1, 1e6, time.UTC),
		time.Date(2026, 11, 23, 7, 0, 1, 999999999, time.FixedZone("", -7*3600)),
		time.Unix(1<<28, 0),                                  // the first absolute SenML time
		time.Unix(1<<28-1, 999e6),                            // the last relative one
		time.Date(1969, 12, 31, 23, 59, 59, 500e6, time.UTC), // before the epoch
		time.Date(2262, 4, 11, 23, 47, 16, 854e6, time.UTC),  // the last nanosecond millisecond
		time.Date(1677, 9, 21, 0, 12, 43, 146e6, time.UTC),   // the first
	}
	values := []float64{0, math.Copysign(0, -1), 21.43, -5.0625, 100653.27, 1e-7, 1e21, -273.15,
		55, 0.1, 1.0 / 3, math.MaxFloat64, math.SmallestNonzeroFloat64, -math.MaxFloat64}
	names := [][3]string{ // agent, sensor, quantity
		{"greenhouse-1", "air", Temperature},
		{"gh.1_B", "28-0316a2b8ff01", Humidity},
		{"green house,1", "a=b", Pressure},
		{"a,b c=d", " , = ", "dew point,x=y"},
		{`mid\dle`, `a\,b`, `q\ r`},
		{`=x`, `,`, `=`},
		{"Gewächshaus", "Küche", "température"},
		{"-lead", "_x", "9"},
		{`"quoted"`, "<&>", "{}"},
	}
	units := []string{"°C", "%RH", "Pa", "", "ppm"}
	var rs []Reading
	for i := range max(len(ts), len(values), len(names)) {
		n := names[i%len(names)]
		rs = append(rs, Reading{
			Agent: n[0], Sensor: n[1], Quantity: n[2],
			Value: values[i%len(values)], Raw: values[(i+3)%len(values)],
			Unit: units[i%len(units)], Time: ts[i%len(ts)], Seq: uint64(i) * 7919,
		})
	}
	rs = append(rs, Reading{Agent: "a", Sensor: "b", Quantity: "c", Value: 1, Raw: 2, Time: example.Time, Seq: math.MaxInt64})
	return rs
}

func TestFormatRoundTrip(t *testing.T) {
	for _, r := range roundTripReadings() {
		for _, f := range Formats {
			b := f.Append(nil, &r)
			if err := parseBack(f, b, &r); err != nil {
				t.Errorf("%s of %+v:\n%s\n%v", f, r, b, err)
			}
		}
	}
}

// parseBack parses b, r encoded in f, and compares it with r.
func parseBack(f Format, b []byte, r *Reading) error {
	switch f {
	case FormatJSON:
		return parseBackJSON(b, r)
	case FormatInflux:
		return parseBackInflux(b, r)
	case FormatValue:
		v, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return err
		}
		if v != r.Value || math.Signbit(v) != math.Signbit(r.Value) {
			return fmt.Errorf("value %v, want %v", v, r.Value)
		}
		return nil
	case FormatSenML:
		return parseBackSenML(b, r)
	}
	return fmt.Errorf("no parser for %q", f)
}

func parseBackJSON(b []byte, r *Reading) error {
	var got Reading
	if err := json.Unmarshal(b, &got); err != nil {
		return err
	}
	want := *r
	want.Time = want.Time.Truncate(time.Millisecond)
	if !got.Time.Equal(want.Time) {
		return fmt.Errorf("time %v, want %v", got.Time, want.Time)
	}
	got.Time, want.Time = time.Time{}, time.Time{}
	if got != want {
		return fmt.Errorf("got %+v, want %+v", got, want)
	}
	return nil
}

func parseBackInflux(b []byte, r *Reading) error {
	if bytes.ContainsAny(b, "\n\r") {
		return errors.New("raw line break in a line")
	}
	p, err := parseInfluxLine(string(b))
	if err != nil {
		return err
	}
	if p.measurement != r.Quantity {
		return fmt.Errorf("measurement %q, want %q", p.measurement, r.Quantity)
	}
	wantTags := []string{"agent", r.Agent, "sensor", r.Sensor}
	if r.Unit != "" {
		wantTags = append(wantTags, "unit", r.Unit)
	}
	if fmt.Sprintf("%q", p.tags) != fmt.Sprintf("%q", wantTags) {
		return fmt.Errorf("tags %q, want %q", p.tags, wantTags)
	}
	if len(p.fields) != 6 || p.fields[0] != "value" || p.fields[2] != "raw" || p.fields[4] != "seq" {
		return fmt.Errorf("fields %q, want value, raw and seq", p.fields)
	}
	for i, want := range []float64{r.Value, r.Raw} {
		// A float field is a number without the "i" or "u" of integers.
		s := p.fields[2*i+1]
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v != want || math.Signbit(v) != math.Signbit(want) {
			return fmt.Errorf("field %s=%s, want %v (%v)", p.fields[2*i], s, want, err)
		}
	}
	seq, ok := strings.CutSuffix(p.fields[5], "i")
	if n, err := strconv.ParseInt(seq, 10, 64); !ok || err != nil || uint64(n) != r.Seq {
		return fmt.Errorf("seq=%s, want %di", p.fields[5], r.Seq)
	}
	ns, err := strconv.ParseInt(p.timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %q: %v", p.timestamp, err)
	}
	if want := r.Time.Truncate(time.Millisecond); !time.Unix(0, ns).Equal(want) {
		return fmt.Errorf("timestamp %s, want %s", time.Unix(0, ns).UTC(), want.UTC())
	}
	return nil
}

// influxLine is a parsed line of the InfluxDB line protocol; tags and fields
// are key, value, key, value..., in order, unescaped; field values are raw.
type influxLine struct {
	measurement string
	tags        []string
	fields      []string
	timestamp   string
}

// parseInfluxLine parses one line of the line protocol, without string
// fields, as InfluxDB's own parser does: a comma, space or equals sign right
// after a backslash is part of the element; an unescaped one is a delimiter.
// The escape sequences are \, and \  in measurements and \, \  and \= in tag
// keys and values; any other backslash is literal. It rejects what InfluxDB
// rejects: a line starting with '#' (a comment), an empty measurement, a tag
// or field without "=" or with an empty key or value, duplicate tag keys, no
// field, and extra elements.
//
// The influx lines of goldenReadings and roundTripReadings were checked once,
// outside this module, against InfluxDB 1.13's models.ParsePointsString and
// github.com/influxdata/line-protocol/v2: both read the same measurement,
// tags, fields and timestamp as this parser.
func parseInfluxLine(line string) (influxLine, error) {
	var p influxLine
	if strings.HasPrefix(line, "#") {
		return p, errors.New("a comment")
	}
	parts := splitUnescaped(line, ' ')
	if len(parts) < 2 || len(parts) > 3 {
		return p, fmt.Errorf("%d space-separated elements, want 2 or 3", len(parts))
	}
	if len(parts) == 3 {
		p.timestamp = parts[2]
	}
	key := splitUnescaped(parts[0], ',')
	p.measurement = unescapeInflux(key[0], ", ")
	if p.measurement == "" {
		return p, errors.New("empty measurement")
	}
	seen := map[string]bool{}
	for _, kv := range key[1:] {
		k, v, err := splitPair(kv)
		if err != nil {
			return p, fmt.Errorf("tag %q: %v", kv, err)
		}
		k, v = unescapeInflux(k, ", ="), unescapeInflux(v, ", =")
		if seen[k] {
			return p, fmt.Errorf("duplicate tag %q", k)
		}
		seen[k] = true
		p.tags = append(p.tags, k, v)
	}
	for _, kv := range splitUnescaped(parts[1], ',') {
		k, v, err := splitPair(kv)
		if err != nil {
			return p, fmt.Errorf("field %q: %v", kv, err)
		}
		p.fields = append(p.fields, unescapeInflux(k, ", ="), v)
	}
	return p, nil
}

// splitUnescaped splits s at every sep not right after a backslash.
func splitUnescaped(s string, sep byte) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == sep && (i == 0 || s[i-1] != '\\') {
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

func splitPair(kv string) (k, v string, err error) {
	parts := splitUnescaped(kv, '=')
	switch {
	case len(parts) != 2:
		return "", "", errors.New(`want one unescaped "="`)
	case parts[0] == "" || parts[1] == "":
		return "", "", errors.New("empty key or value")
	}
	return parts[0], parts[1], nil
}

// unescapeInflux replaces a backslash and any of chars by the char.
func unescapeInflux(s, chars string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(chars, s[i+1]) >= 0 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// senmlName is a valid resolved SenML name (RFC 8428, 4.5.1).
var senmlName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9\-:./_]*$`)

// senmlUnsafe matches what a name component may not hold.
var senmlUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]`)

func parseBackSenML(b []byte, r *Reading) error {
	// Only SenML's labels (RFC 8428, 5), each of its type.
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	for i, rec := range raw {
		for k := range rec {
			switch k {
			case "bn", "n", "u", "v", "t":
			default:
				return fmt.Errorf("record %d: label %q", i, k)
			}
		}
		if _, ok := rec["bn"]; ok != (i == 0) {
			return fmt.Errorf("record %d: bn present %v, want it on the first record only", i, ok)
		}
		// RFC 8428 (5): a lowercase "e", a mantissa under 19 characters
		// (the sign aside: 17 digits may be needed to round-trip).
		for _, k := range []string{"v", "t"} {
			num := strings.TrimPrefix(string(rec[k]), "-")
			if mant, _, _ := strings.Cut(num, "e"); len(mant) > 18 || strings.Contains(num, "E") {
				return fmt.Errorf("record %d: %s %s: want a mantissa under 19 characters and a lowercase e", i, k, rec[k])
			}
		}
	}
	var pack []struct {
		BN *string      `json:"bn"`
		N  string       `json:"n"`
		U  *string      `json:"u"`
		V  *json.Number `json:"v"`
		T  *float64     `json:"t"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&pack); err != nil {
		return err
	}
	if len(pack) != 3 {
		return fmt.Errorf("%d records, want 3", len(pack))
	}
	// The seq record: no unit, the seq as an integer while it fits 18
	// characters, rounded with an exponent from 10^18 up.
	seqRec := pack[2]
	if seqRec.N != "seq" || seqRec.U != nil || seqRec.V == nil {
		return fmt.Errorf("record 2: %+v, want the seq record", seqRec)
	}
	if r.Seq < 1e18 {
		if got := seqRec.V.String(); got != strconv.FormatUint(r.Seq, 10) {
			return fmt.Errorf("record 2: seq %s, want %d", got, r.Seq)
		}
	} else if f, err := seqRec.V.Float64(); err != nil || f != float64(r.Seq) || !strings.Contains(seqRec.V.String(), "e+") {
		return fmt.Errorf("record 2: seq %s, want %d rounded, with an exponent", seqRec.V, r.Seq)
	}
	safe := func(s string) string { return senmlUnsafe.ReplaceAllString(s, "_") }
	base := "kelvin:" + safe(r.Agent) + ":" + safe(r.Sensor) + ":"
	if *pack[0].BN != base {
		return fmt.Errorf("bn %q, want %q", *pack[0].BN, base)
	}
	wantUnit := map[string]string{"°C": "Cel", "%RH": "%RH", "Pa": "Pa"}[r.Unit]
	for i, want := range []struct {
		n string
		v float64
	}{{safe(r.Quantity), r.Value}, {"raw_" + safe(r.Quantity), r.Raw}, {"seq", 0}} {
		rec := pack[i]
		// The base name applies to every record after it.
		if name := base + rec.N; !senmlName.MatchString(name) {
			return fmt.Errorf("record %d: resolved name %q is not a SenML name", i, name)
		}
		if rec.N != want.n {
			return fmt.Errorf("record %d: n %q, want %q", i, rec.N, want.n)
		}
		if i < 2 {
			if rec.V == nil {
				return fmt.Errorf("record %d: no v", i)
			}
			if v, err := rec.V.Float64(); err != nil || v != want.v || math.Signbit(v) != math.Signbit(want.v) {
				return fmt.Errorf("record %d: v %v, want %v", i, rec.V, want.v)
			}
			if (rec.U == nil) != (wantUnit == "") || rec.U != nil && *rec.U != wantUnit {
				return fmt.Errorf("record %d: u %v, want %q", i, rec.U, wantUnit)
			}
		}
		ms := r.Time.UnixMilli()
		if ms < 1<<28*1000 {
			if rec.T != nil {
				return fmt.Errorf("record %d: t %v for %v, a time SenML reads as relative", i, *rec.T, r.Time)
			}
			continue
		}
		if rec.T == nil || math.Round(*rec.T*1000) != float64(ms) {
			return fmt.Errorf("record %d: t %v, want %d ms", i, rec.T, ms)
		}
	}
	return nil
}

func TestFormatNonFinite(t *testing.T) {
	r := example
	r.Value, r.Raw = math.NaN(), math.Inf(-1)
	for f, want := range map[Format]string{
		FormatInflux: `temperature,agent=greenhouse-1,sensor=air,unit=°C seq=42i 1795417200123000000`,
		FormatValue:  `NaN`,
		FormatSenML:  `[{"bn":"kelvin:greenhouse-1:air:","n":"seq","v":42,"t":1795417200.123}]`,
	} {
		if got := string(f.Append(nil, &r)); got != want {
			t.Errorf("%s = %s, want %s", f, got, want)
		}
	}
	r.Value, r.Raw = 21.43, math.NaN()
	if got, want := string(FormatInflux.Append(nil, &r)), `temperature,agent=greenhouse-1,sensor=air,unit=°C value=21.43,seq=42i 1795417200123000000`; got != want {
		t.Errorf("influx = %s, want %s", got, want)
	}
	if got, want := string(FormatSenML.Append(nil, &r)), `[{"bn":"kelvin:greenhouse-1:air:","n":"temperature","u":"Cel","v":21.43,"t":1795417200.123},{"n":"seq","v":42,"t":1795417200.123}]`; got != want {
		t.Errorf("senml = %s, want %s", got, want)
	}
	r.Value, r.Raw = math.Inf(1), 21.5
	b := FormatSenML.Append(nil, &r)
	var pack []map[string]any
	if err := json.Unmarshal(b, &pack); err != nil || len(pack) != 2 || pack[0]["bn"] != "kelvin:greenhouse-1:air:" || pack[0]["n"] != "raw_temperature" {
		t.Errorf("senml = %s (%v), want the raw record, with the base name, and the seq record", b, err)
	}
	// Every format stays parseable.
	for _, f := range Formats {
		b := f.Append(nil, &r)
		switch f {
		case FormatJSON, FormatSenML:
			if !json.Valid(b) {
				t.Errorf("%s: invalid JSON %s", f, b)
			}
		case FormatInflux:
			if _, err := parseInfluxLine(string(b)); err != nil {
				t.Errorf("%s: %s: %v", f, b, err)
			}
		}
	}
}

func TestSenMLNumbers(t *testing.T) {
	for v, want := range map[float64]string{
		21.43:                       "21.43",
		-0.0625:                     "-0.0625",
		123456789012345678:          "123456789012345680", // 18 characters
		-123456789012345678:         "-1.2345678901234568e+17",
		1e18:                        "1e+18",
		1e21:                        "1e+21",
		0.000012345:                 "0.000012345",
		0.0000000000000001:          "0.0000000000000001", // 18 characters
		0.00000000000000001:         "1e-17",
		1.0 / 3:                     "0.3333333333333333",
		math.MaxFloat64:             "1.7976931348623157e+308",
		math.SmallestNonzeroFloat64: "5e-324",
	} {
		if got := string(appendSenMLFloat(nil, v)); got != want {
			t.Errorf("appendSenMLFloat(%v) = %s, want %s", v, got, want)
		}
	}
}

func TestFormatTimeLimits(t *testing.T) {
	for _, tt := range []struct {
		time      time.Time
		influxTS  string // "" for none
		senmlTime string // "" for none
	}{
		{time.Time{}, "", ""},
		{time.Unix(0, 0), "0", ""},
		{time.Unix(1<<28, 0), "268435456000000000", "268435456"},
		{time.Unix(1<<28-1, 999e6), "268435455999000000", ""},
		{time.Unix(1795417200, 1e6), "1795417200001000000", "1795417200.001"},
		{time.Unix(1795417200, 10e6), "1795417200010000000", "1795417200.01"},
		{time.Unix(1795417200, 999999999), "1795417200999000000", "1795417200.999"},
		{time.Date(2262, 4, 11, 23, 47, 16, 854999999, time.UTC), "9223372036854000000", "9223372036.854"},
		{time.Date(2262, 4, 11, 23, 47, 16, 855e6, time.UTC), "", "9223372036.855"},
		{time.Date(1677, 9, 21, 0, 12, 43, 146e6, time.UTC), "-9223372036854000000", ""},
		{time.Date(1677, 9, 21, 0, 12, 43, 145e6, time.UTC), "", ""},
		{time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), "", "253370764800"},
	} {
		r := example
		r.Time = tt.time
		line := string(FormatInflux.Append(nil, &r))
		_, ts, _ := strings.Cut(strings.TrimPrefix(line, "temperature,agent=greenhouse-1,sensor=air,unit=°C value=21.43,raw=21.5,seq=42i"), " ")
		if ts != tt.influxTS {
			t.Errorf("%v: influx %s: timestamp %q, want %q", tt.time, line, ts, tt.influxTS)
		}
		pack := string(FormatSenML.Append(nil, &r))
		want := ""
		if tt.senmlTime != "" {
			want = `,"t":` + tt.senmlTime
		}
		if !strings.Contains(pack, `"v":21.43`+want+`}`) {
			t.Errorf("%v: senml %s, want t %q", tt.time, pack, tt.senmlTime)
		}
	}
}

func TestFormatNoAllocs(t *testing.T) {
	r := example
	r.Agent = "green house,1" // escaped in influx and senml
	r.Time = time.Now()
	buf := make([]byte, 0, 512)
	for _, f := range Formats {
		if n := testing.AllocsPerRun(100, func() { buf = f.Append(buf[:0], &r) }); n != 0 {
			t.Errorf("%s: Append allocates %v times per reading", f, n)
		}
	}
}

func BenchmarkFormat(b *testing.B) {
	r := example
	r.Time = time.Now()
	for _, f := range Formats {
		b.Run(string(f), func(b *testing.B) {
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			for b.Loop() {
				buf = f.Append(buf[:0], &r)
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}
