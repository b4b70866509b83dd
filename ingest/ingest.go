// Package ingest parses readings that other devices push to the gateway
// (POST /api/ingest): JSON, one reading or an array, and InfluxDB line
// protocol. It checks form only — that values are finite decimal numbers,
// names are present, keys and fields appear once, timestamps parse and lie
// after 1970; the agent checks them against the config and each quantity's
// plausible range. A batch is parsed whole or refused whole.
package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Item is one pushed reading. Quantity and Unit are empty when the device
// did not say; Time is zero when it did not say (the gateway's clock then):
// the parsers refuse a time that is given but not after 1970, so a zero
// Time never comes from the input.
type Item struct {
	Sensor   string
	Quantity string
	Unit     string
	Value    float64
	Time     time.Time
}

// ErrBadInput wraps every parse error: the request is malformed (HTTP 400).
var ErrBadInput = errors.New("malformed input")

// MaxItems bounds one batch.
const MaxItems = 10000

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadInput, fmt.Sprintf(format, args...))
}

// jsonItem is the JSON form; agent, raw, seq and clock (Kelvin's own
// reading format) are accepted and ignored.
type jsonItem struct {
	Sensor   *string         `json:"sensor"`
	Value    json.RawMessage `json:"value"`
	TS       json.RawMessage `json:"ts"`
	Unit     string          `json:"unit"`
	Quantity string          `json:"quantity"`
	Agent    any             `json:"agent"`
	Raw      any             `json:"raw"`
	Seq      any             `json:"seq"`
	Clock    any             `json:"clock"`
}

// ParseJSON parses one reading object or an array of them:
//
//	{"sensor":"shed","value":4.5,"ts":"2026-11-26T07:00:00Z","unit":"°C","quantity":"temperature"}
//
// sensor and value are required; ts is RFC 3339 or unix seconds, after
// 1970. Unknown fields are refused (a typo would otherwise go unnoticed),
// and so are duplicate keys (which would otherwise silently take the last).
func ParseJSON(b []byte) ([]Item, error) {
	b = bytes.TrimSpace(b)
	var raw []json.RawMessage
	if err := noDuplicateKeys(b); err != nil {
		return nil, err
	}
	switch {
	case len(b) == 0:
		return nil, bad("empty body")
	case b[0] == '[':
		if err := json.Unmarshal(b, &raw); err != nil {
			return nil, bad("%v", jsonErr(err))
		}
		if len(raw) == 0 {
			return nil, bad("empty array")
		}
	default:
		raw = []json.RawMessage{b}
	}
	if len(raw) > MaxItems {
		return nil, bad("%d readings in one batch, at most %d", len(raw), MaxItems)
	}
	out := make([]Item, 0, len(raw))
	for i, r := range raw {
		it, err := parseJSONItem(r)
		if err != nil {
			if len(raw) > 1 {
				return nil, fmt.Errorf("reading %d: %w", i, err)
			}
			return nil, err
		}
		out = append(out, it)
	}
	return out, nil
}

func parseJSONItem(b []byte) (Item, error) {
	var j jsonItem
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&j); err != nil {
		return Item{}, bad("%v", jsonErr(err))
	}
	if d.More() {
		return Item{}, bad("more than one JSON value")
	}
	if j.Sensor == nil || *j.Sensor == "" {
		return Item{}, bad("sensor: required")
	}
	it := Item{Sensor: *j.Sensor, Unit: j.Unit, Quantity: j.Quantity}
	if len(j.Value) == 0 || string(j.Value) == "null" {
		return Item{}, bad("value: required")
	}
	v, err := strconv.ParseFloat(string(j.Value), 64)
	if err != nil || j.Value[0] == '"' {
		return Item{}, bad("value: want a number, got %s", j.Value)
	}
	it.Value = v
	if len(j.TS) > 0 && string(j.TS) != "null" {
		t, err := parseJSONTime(j.TS)
		if err != nil {
			return Item{}, err
		}
		it.Time = t
	}
	return it, checkItem(it)
}

func parseJSONTime(raw json.RawMessage) (time.Time, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, bad("ts: want RFC 3339 like 2026-11-26T07:00:00Z, got %q", s)
		}
		return t, checkTime(t)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e11 {
		return time.Time{}, bad("ts: want RFC 3339 or unix seconds, got %s", raw)
	}
	sec, frac := math.Modf(f)
	t := time.Unix(int64(sec), int64(frac*1e9))
	return t, checkTime(t)
}

// checkTime refuses a given time that is not after 1970: the zero time of
// a device's clock library (0001-01-01), the Unix epoch of one that never
// synchronised, or earlier. Such a time is not unset; it is wrong.
func checkTime(t time.Time) error {
	if !t.After(time.Unix(0, 0)) {
		return bad("ts %s is not after 1970: not a time a reading was taken (leave ts out to use the gateway's clock)", t.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// noDuplicateKeys returns an ErrBadInput naming the first key that appears
// twice in one object of the JSON text b, at any depth; nil otherwise, and
// for text that is not JSON (the decoder proper reports that).
func noDuplicateKeys(b []byte) error {
	type frame struct {
		keys map[string]bool // nil for an array
		key  bool            // an object expecting a key or its end
	}
	var stack []frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].key = true
		}
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	for {
		tok, err := d.Token()
		if err != nil {
			return nil
		}
		n := len(stack)
		if n > 0 && stack[n-1].key {
			if tok == json.Delim('}') {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			k, _ := tok.(string)
			if stack[n-1].keys[k] {
				return bad("duplicate key %q: each key may appear once", k)
			}
			stack[n-1].keys[k] = true
			stack[n-1].key = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{keys: map[string]bool{}, key: true})
			continue
		case json.Delim('['):
			stack = append(stack, frame{})
			continue
		case json.Delim(']'):
			stack = stack[:n-1]
		}
		valueDone()
	}
}

func jsonErr(err error) string {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("bad JSON at byte %d: %v", se.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "bad JSON: it ends too early"
	}
	return err.Error()
}

func checkItem(it Item) error {
	if math.IsNaN(it.Value) || math.IsInf(it.Value, 0) {
		return bad("value: not a finite number")
	}
	if len(it.Sensor) > 64 {
		return bad("sensor: longer than 64 bytes")
	}
	return nil
}

// ParseLine parses InfluxDB line protocol, one reading per line:
//
//	temperature,sensor=shed,unit=°C value=4.5 1795417200000000000
//
// The measurement is the quantity; the sensor tag is required, a unit tag
// optional, other tags are ignored; the value field is required (a decimal
// float, or an integer with the i suffix), other fields are ignored; the
// timestamp, in nanoseconds after 1970, is optional. A tag or field key
// that appears twice is refused. Blank lines and # comments are skipped.
func ParseLine(b []byte) ([]Item, error) {
	var out []Item
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if len(out) == MaxItems {
			return nil, bad("more than %d readings in one batch", MaxItems)
		}
		it, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		out = append(out, it)
	}
	if len(out) == 0 {
		return nil, bad("no readings")
	}
	return out, nil
}

func parseLine(line string) (Item, error) {
	parts := splitUnescaped(line, ' ')
	if len(parts) < 2 || len(parts) > 3 {
		return Item{}, bad("want: measurement,tags fields [timestamp]")
	}
	head := splitUnescaped(parts[0], ',')
	it := Item{Quantity: unescape(head[0])}
	if it.Quantity == "" {
		return Item{}, bad("empty measurement")
	}
	seen := map[string]bool{}
	for _, tag := range head[1:] {
		k, v, ok := cutUnescaped(tag, '=')
		if !ok {
			return Item{}, bad("tag %q: want key=value", tag)
		}
		if seen[unescape(k)] {
			return Item{}, bad("tag %q appears twice", unescape(k))
		}
		seen[unescape(k)] = true
		switch unescape(k) {
		case "sensor":
			it.Sensor = unescape(v)
		case "unit":
			it.Unit = unescape(v)
		}
	}
	if it.Sensor == "" {
		return Item{}, bad("the sensor tag is required")
	}
	found := false
	clear(seen)
	for _, f := range splitUnescaped(parts[1], ',') {
		k, v, ok := cutUnescaped(f, '=')
		if !ok {
			return Item{}, bad("field %q: want key=value", f)
		}
		if seen[unescape(k)] {
			return Item{}, bad("field %q appears twice", unescape(k))
		}
		seen[unescape(k)] = true
		if unescape(k) != "value" {
			continue
		}
		x, err := parseLineNumber(v)
		if err != nil {
			return Item{}, err
		}
		it.Value, found = x, true
	}
	if !found {
		return Item{}, bad("the value field is required")
	}
	if len(parts) == 3 {
		ns, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil {
			return Item{}, bad("timestamp: want integer nanoseconds, got %q", parts[2])
		}
		it.Time = time.Unix(0, ns)
		if err := checkTime(it.Time); err != nil {
			return Item{}, err
		}
	}
	return it, checkItem(it)
}

// parseLineNumber parses a line protocol field value: a decimal float
// (1, -2.5, 1e3) or an integer with the i suffix (55i).
func parseLineNumber(v string) (float64, error) {
	if i, ok := strings.CutSuffix(v, "i"); ok {
		n, err := strconv.ParseInt(i, 10, 64)
		if err != nil {
			return 0, bad("field value: want an integer before the i suffix, got %q", v)
		}
		return float64(n), nil
	}
	x, err := parseDecimal(v)
	if err != nil {
		return 0, bad("field value: want a number, got %q", v)
	}
	return x, nil
}

// parseDecimal is strconv.ParseFloat restricted to decimal notation:
// [+-]digits[.digits][e[+-]digits]. ParseFloat alone also takes hex floats
// (0x1p4), underscores, "Inf" and "NaN", which no device means as a reading.
func parseDecimal(s string) (float64, error) {
	digits := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits = true
		case c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-':
		default:
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	if !digits {
		return 0, fmt.Errorf("%q is not a decimal number", s)
	}
	return strconv.ParseFloat(s, 64)
}

// splitUnescaped splits s at sep not preceded by a backslash, outside
// double quotes.
func splitUnescaped(s string, sep byte) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func cutUnescaped(s string, sep byte) (string, string, bool) {
	p := splitUnescaped(s, sep)
	if len(p) < 2 {
		return s, "", false
	}
	return p[0], strings.Join(p[1:], string(sep)), true
}

var unescaper = strings.NewReplacer(`\ `, ` `, `\,`, `,`, `\=`, `=`, `\\`, `\`)

func unescape(s string) string { return unescaper.Replace(s) }
