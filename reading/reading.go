// Package reading defines Reading, the one record that flows through Kelvin:
// from a sensor, through the filter chain and the buffer, to every output and
// to the live page. Its JSON form is Kelvin's public wire format.
package reading

import (
	"math"
	"strconv"
	"time"
)

// Quantities and their fixed units. A driver converts to these units once, at
// the edge; nothing downstream converts again.
const (
	Temperature = "temperature" // °C
	Humidity    = "humidity"    // %RH
	Pressure    = "pressure"    // Pa
)

// UnitOf returns the fixed unit of a quantity, or "" when it has none.
func UnitOf(quantity string) string {
	switch quantity {
	case Temperature:
		return "°C"
	case Humidity:
		return "%RH"
	case Pressure:
		return "Pa"
	}
	return ""
}

// Reading is one value of one quantity of one sensor at one time.
//
// Value is the value after the sensor's filter chain, Raw the value the
// driver returned. Seq counts per sensor (across its quantities) from 1 and never
// repeats; together with Agent and Sensor it identifies a reading, so a
// consumer can drop duplicates of an at-least-once delivery.
type Reading struct {
	Agent    string    `json:"agent"`
	Sensor   string    `json:"sensor"`
	Quantity string    `json:"quantity"`
	Value    float64   `json:"value"`
	Raw      float64   `json:"raw"`
	Unit     string    `json:"unit"`
	Time     time.Time `json:"ts"`
	Seq      uint64    `json:"seq"`
	// Clock is empty when the gateway's clock was synchronised when the
	// reading was taken; ClockUnsynced when it was not (Time may be
	// wrong: a Pi without a real-time clock before NTP), and
	// ClockCorrected when Time was corrected from the monotonic clock
	// after the clock synchronised.
	Clock string `json:"clock,omitempty"`
	// Mono and Boot place an unsynchronised reading on this machine's
	// monotonic clock (CLOCK_BOOTTIME, nanoseconds) and boot (a hash of
	// the kernel's boot id), so that Time can be corrected once the clock
	// is right. They are stored with the reading, never published.
	Mono int64  `json:"-"`
	Boot uint32 `json:"-"`
}

// Values of Reading.Clock.
const (
	ClockUnsynced  = "unsynced"
	ClockCorrected = "corrected"
)

// AppendJSON appends r as the JSON object of Kelvin's wire format to b,
// without allocating beyond b's growth:
//
//	{"agent":"greenhouse-1","sensor":"air","quantity":"temperature","value":21.43,"raw":21.5,"unit":"°C","ts":"2026-11-23T07:00:00.123Z","seq":42}
//
// A reading taken while the clock was not synchronised has
// "clock":"unsynced" (or "corrected") after seq. Timestamps are UTC with
// millisecond precision. Non-finite values (which
// the pipeline never produces) are written as null.
func (r *Reading) AppendJSON(b []byte) []byte {
	b = append(b, `{"agent":`...)
	b = appendString(b, r.Agent)
	b = append(b, `,"sensor":`...)
	b = appendString(b, r.Sensor)
	b = append(b, `,"quantity":`...)
	b = appendString(b, r.Quantity)
	b = append(b, `,"value":`...)
	b = appendFloat(b, r.Value)
	b = append(b, `,"raw":`...)
	b = appendFloat(b, r.Raw)
	b = append(b, `,"unit":`...)
	b = appendString(b, r.Unit)
	b = append(b, `,"ts":"`...)
	b = r.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	if r.Clock != "" {
		b = append(b, `,"clock":`...)
		b = appendString(b, r.Clock)
	}
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler with AppendJSON.
func (r Reading) MarshalJSON() ([]byte, error) {
	return r.AppendJSON(make([]byte, 0, 160)), nil
}

func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string. Sensor ids and quantities are
// restricted to [a-z0-9_-] by the config, but agent ids and units are not.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
