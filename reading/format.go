package reading

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Format is the payload encoding of an output (the mqtt.format and
// kafka.format settings): one reading per message, without a trailing
// newline. The zero value, and any name ParseFormat rejects, encodes as
// FormatJSON. A Format is a plain string and safe for concurrent use.
type Format string

// The payload formats.
const (
	// FormatJSON is Kelvin's wire format, the JSON object of
	// Reading.AppendJSON. It is the default.
	FormatJSON Format = "json"

	// FormatInflux is one line of the InfluxDB line protocol:
	//
	//	temperature,agent=greenhouse-1,sensor=air,unit=°C value=21.43,raw=21.5,seq=42i 1795417200123000000
	//
	// The measurement is the quantity; the tags are agent, sensor and unit
	// (in that order, which is sorted); the fields are value and raw
	// (floats) and seq (an integer, "i"); the timestamp is in nanoseconds
	// since the epoch, truncated to the millisecond like the JSON form.
	//
	// Escaping follows the line protocol: commas and spaces are escaped with
	// a backslash in the measurement, and commas, spaces and equals signs in
	// tag values. Tab, newline, carriage return and form feed, which the
	// protocol cannot carry, are written as the two characters \t, \n, \r
	// and \f, as Telegraf does. Other backslashes are written as they are,
	// except trailing ones, which the protocol cannot represent (a backslash
	// escapes the delimiter after it) and which are dropped. A tag whose
	// value is empty is left out (the unit tag of a quantity without a
	// unit), and so are the value and raw fields when not finite (the line
	// protocol has no NaN or infinity) and the timestamp when r.Time is the
	// zero time or outside the nanosecond range (1677-09-21 to 2262-04-11), so
	// that the server stamps the point. Quantity must not be empty or start
	// with '#' (the configuration restricts it to [a-z0-9_-]), and Seq
	// must not exceed math.MaxInt64.
	FormatInflux Format = "influx"

	// FormatValue is the bare number of Value, as strconv.FormatFloat(v,
	// 'f', -1, 64) writes it ("21.43"; "NaN", "+Inf" or "-Inf" when not
	// finite), for the simplest consumers: the topic or key says what it is.
	FormatValue Format = "value"

	// FormatSenML is a Sensor Measurement List (RFC 8428) in JSON, a pack of
	// three records, the filtered value, the raw one and the seq:
	//
	//	[{"bn":"kelvin:greenhouse-1:air:","n":"temperature","u":"Cel","v":21.43,"t":1795417200.123},{"n":"raw_temperature","u":"Cel","v":21.5,"t":1795417200.123},{"n":"seq","v":42,"t":1795417200.123}]
	//
	// The base name, on the first record only (a base field applies to the
	// records after it), is "kelvin:AGENT:SENSOR:"; the names are the
	// quantity, "raw_" and the quantity, and "seq", so the resolved names
	// are "kelvin:greenhouse-1:air:temperature",
	// "kelvin:greenhouse-1:air:raw_temperature" and
	// "kelvin:greenhouse-1:air:seq". SenML names may only hold
	// A-Z a-z 0-9 - : . / _ and must start with a letter or digit: the
	// fixed prefix "kelvin:" guarantees the start, and any character of
	// AGENT, SENSOR or the quantity outside A-Z a-z 0-9 - . _ (including
	// ':' and '/', which would change the name's structure) is written as
	// '_'. Every agent and sensor id and quantity kelvin check accepts is
	// made of those characters only, so for Kelvin's own readings the
	// names are exact; a reading relayed from elsewhere (mqtt_in) with
	// other characters arrives under the escaped name, and ParseSenML
	// cannot tell "gw 1" from "gw_1". (A "urn:dev:" base name would need
	// a subtype registered for RFC 9039, which Kelvin does not have.)
	//
	// The seq is a record of its own rather than an extension field: RFC
	// 8428 (4.4, 12.2) allows new labels, but as entries of the IANA SenML
	// Labels registry, which "seq" is not, and a consumer must reject a
	// pack with an unknown label ending in '_'. A record uses only the
	// labels RFC 8428 defines, so every SenML consumer reads the pack as it
	// is: a generic one sees one more measurement per reading,
	// "kelvin:AGENT:SENSOR:seq", a dimensionless counter (no unit) at the
	// reading's time, which it may store or drop like any other, and
	// which tells it too where readings are missing. It is written as an
	// integer, exact up to 10^18 - 1 (18 digits; a JSON parser reading
	// numbers as float64 is exact up to 2^53); from 10^18 up, RFC 8428's
	// 18-character mantissa forces an exponent and the seq is rounded.
	//
	// Units are those of the SenML units registry: °C is "Cel", %RH is
	// "%RH", Pa is "Pa"; any other unit is left out. Values are written like
	// the JSON form's, except that one which would take more than 18
	// characters (beyond ±1e18, or tiny) gets an exponent ("1e+21"): RFC 8428
	// asks for a mantissa shorter than 19 characters. The time "t" is
	// absolute, in seconds since the epoch with millisecond precision; it is
	// left out when r.Time is before 1978-07-04T21:24:16Z (2^28 s, below
	// which SenML times are relative to now), so the zero time reads as
	// "now".
	//
	// A record must hold a value, and a SenML value is a JSON number: a
	// value or raw record whose value is not finite is left out, and the
	// base name moves to the first record that remains; the seq record is
	// always there.
	FormatSenML Format = "senml"
)

// Formats lists the valid format names, the default first. It is a constant
// table: do not modify it.
var Formats = []Format{FormatJSON, FormatInflux, FormatValue, FormatSenML}

// ParseFormat returns the format named s; "" is FormatJSON. Any other name
// is an error that reads well after a config key:
// want json, influx, value or senml, got "xml".
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case "":
		return FormatJSON, nil
	case FormatJSON, FormatInflux, FormatValue, FormatSenML:
		return f, nil
	}
	return "", fmt.Errorf("want json, influx, value or senml, got %q", s)
}

// Append appends r encoded in f to b and returns the extended buffer. It
// allocates nothing beyond b's growth, so a caller that reuses b encodes
// without garbage.
func (f Format) Append(b []byte, r *Reading) []byte {
	switch f {
	case FormatInflux:
		return appendInflux(b, r)
	case FormatValue:
		return strconv.AppendFloat(b, r.Value, 'f', -1, 64)
	case FormatSenML:
		return appendSenML(b, r)
	}
	return r.AppendJSON(b)
}

// ContentType returns the media type of f's payloads, for an MQTT 5
// content-type property or a Kafka header: "application/json",
// "text/plain; charset=utf-8" (influx), "text/plain" (value) or
// "application/senml+json" (RFC 8428).
func (f Format) ContentType() string {
	switch f {
	case FormatInflux:
		return "text/plain; charset=utf-8"
	case FormatValue:
		return "text/plain"
	case FormatSenML:
		return "application/senml+json"
	}
	return "application/json"
}

// The range of milliseconds whose nanoseconds fit an int64.
const (
	minInfluxMilli = math.MinInt64 / int64(time.Millisecond)
	maxInfluxMilli = math.MaxInt64 / int64(time.Millisecond)
)

func appendInflux(b []byte, r *Reading) []byte {
	b = appendInfluxName(b, r.Quantity, false)
	b = appendInfluxTag(b, ",agent=", r.Agent)
	b = appendInfluxTag(b, ",sensor=", r.Sensor)
	b = appendInfluxTag(b, ",unit=", r.Unit)
	if r.Clock != "" {
		b = appendInfluxTag(b, ",clock=", r.Clock)
	}
	sep := byte(' ')
	if finite(r.Value) {
		b = append(b, sep)
		b = append(b, "value="...)
		b = strconv.AppendFloat(b, r.Value, 'f', -1, 64)
		sep = ','
	}
	if finite(r.Raw) {
		b = append(b, sep)
		b = append(b, "raw="...)
		b = strconv.AppendFloat(b, r.Raw, 'f', -1, 64)
		sep = ','
	}
	b = append(b, sep)
	b = append(b, "seq="...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, 'i')
	if ms := r.Time.UnixMilli(); !r.Time.IsZero() && ms >= minInfluxMilli && ms <= maxInfluxMilli {
		b = append(b, ' ')
		b = strconv.AppendInt(b, ms*int64(time.Millisecond), 10)
	}
	return b
}

// appendInfluxTag appends key (",agent=") and the escaped value, or nothing
// when the value is empty once escaped.
func appendInfluxTag(b []byte, key, value string) []byte {
	if trimBackslashes(value) == "" {
		return b
	}
	b = append(b, key...)
	return appendInfluxName(b, value, true)
}

// appendInfluxName appends s escaped as a measurement (eq false) or a tag
// key or value (eq true).
func appendInfluxName(b []byte, s string, eq bool) []byte {
	s = trimBackslashes(s)
	start := 0
	for i := 0; i < len(s); i++ {
		var esc byte
		switch c := s[i]; c {
		case ',', ' ':
			esc = c
		case '=':
			if !eq {
				continue
			}
			esc = c
		case '\t':
			esc = 't'
		case '\n':
			esc = 'n'
		case '\r':
			esc = 'r'
		case '\f':
			esc = 'f'
		default:
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, '\\', esc)
		start = i + 1
	}
	return append(b, s[start:]...)
}

func trimBackslashes(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\\' {
		s = s[:len(s)-1]
	}
	return s
}

// senmlAbsolute is the first time SenML reads as absolute (RFC 8428, 4.5.3),
// in milliseconds since the epoch.
const senmlAbsolute = 1 << 28 * 1000

func appendSenML(b []byte, r *Reading) []byte {
	b = append(b, '[')
	first := true
	b = appendSenMLRecord(b, r, &first, "", r.Value, 0)
	b = appendSenMLRecord(b, r, &first, "raw_", r.Raw, 0)
	b = appendSenMLRecord(b, r, &first, "seq", 0, r.Seq)
	return append(b, ']')
}

// appendSenMLRecord appends the record of v named prefix+quantity, or with
// prefix "seq" the record of seq named "seq", with the base name when
// *first, and clears *first. It appends nothing when v is not finite.
func appendSenMLRecord(b []byte, r *Reading, first *bool, prefix string, v float64, seq uint64) []byte {
	isSeq := prefix == "seq"
	if !isSeq && !finite(v) {
		return b
	}
	if *first {
		b = append(b, `{"bn":"kelvin:`...)
		b = appendSenMLName(b, r.Agent)
		b = append(b, ':')
		b = appendSenMLName(b, r.Sensor)
		b = append(b, `:","n":"`...)
		*first = false
	} else {
		b = append(b, `,{"n":"`...)
	}
	b = append(b, prefix...)
	if isSeq {
		b = append(b, `","v":`...)
		if seq < 1e18 {
			b = strconv.AppendUint(b, seq, 10)
		} else {
			b = appendSenMLFloat(b, float64(seq))
		}
	} else {
		b = appendSenMLName(b, r.Quantity)
		b = append(b, '"')
		if u := senmlUnit(r.Unit); u != "" {
			b = append(b, `,"u":"`...)
			b = append(b, u...)
			b = append(b, '"')
		}
		b = append(b, `,"v":`...)
		b = appendSenMLFloat(b, v)
	}
	if ms := r.Time.UnixMilli(); ms >= senmlAbsolute {
		b = append(b, `,"t":`...)
		b = strconv.AppendInt(b, ms/1000, 10)
		if frac := ms % 1000; frac != 0 {
			b = append(b, '.', byte('0'+frac/100))
			if frac%100 != 0 {
				b = append(b, byte('0'+frac/10%10))
				if frac%10 != 0 {
					b = append(b, byte('0'+frac%10))
				}
			}
		}
	}
	return append(b, '}')
}

// appendSenMLFloat appends v as a JSON number, without an exponent when that
// takes at most 18 characters, and otherwise in the shortest form with one:
// RFC 8428 (5) asks for a mantissa of less than 19 characters and a
// lowercase "e".
func appendSenMLFloat(b []byte, v float64) []byte {
	n := len(b)
	if b = strconv.AppendFloat(b, v, 'f', -1, 64); len(b)-n <= 18 {
		return b
	}
	return strconv.AppendFloat(b[:n], v, 'e', -1, 64)
}

// appendSenMLName appends s with every character outside A-Z a-z 0-9 - . _
// replaced by '_'. The result needs no JSON escaping.
func appendSenMLName(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_':
			b = append(b, c)
			i++
		default:
			b = append(b, '_')
			_, n := utf8.DecodeRuneInString(s[i:])
			i += n
		}
	}
	return b
}

// senmlUnit returns the SenML unit (RFC 8428, 12.1) of a Kelvin unit, or ""
// when it has none.
func senmlUnit(unit string) string {
	switch unit {
	case "°C":
		return "Cel"
	case "%RH":
		return "%RH"
	case "Pa":
		return "Pa"
	}
	return ""
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
