package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
)

// ignored is why a message was not taken: Reason is a metrics label
// (kelvin_fleet_ignored_total{reason}), the message says it to a person.
type ignored struct {
	Reason string
	msg    string
}

func (e *ignored) Error() string { return "fleet: " + e.msg }

func ignore(reason, format string, args ...any) error {
	return &ignored{Reason: reason, msg: fmt.Sprintf(format, args...)}
}

// Reasons a message is ignored, the label values of
// kelvin_fleet_ignored_total.
const (
	reasonEmpty     = "empty"        // an empty payload (a cleared retained message)
	reasonValue     = "value_format" // a bare number: mqtt.format value carries no agent, sensor or seq
	reasonNoSeq     = "no_seq"       // a JSON object, line or SenML pack without a seq
	reasonMalformed = "malformed"    // not JSON, SenML or line protocol Kelvin writes
	reasonMissing   = "missing"      // agent, sensor or quantity missing
	reasonStatus    = "bad_status"   // a status message that is neither online, offline nor a status object
	reasonCapacity  = "capacity"     // max_gateways or max_sensors reached
)

// parseReadings decodes one message payload in the formats Kelvin
// publishes that carry agent, sensor and seq: json, influx and senml. The
// value format, which carries none of them, is refused with that reason,
// and so is the senml of a Kelvin from before it wrote the seq record.
func parseReadings(payload []byte) ([]reading.Reading, error) {
	p := bytes.TrimSpace(payload)
	switch {
	case len(p) == 0:
		return nil, ignore(reasonEmpty, "empty payload")
	case p[0] == '{':
		r, err := parseJSON(p)
		if err != nil {
			return nil, err
		}
		return []reading.Reading{r}, nil
	case p[0] == '[':
		return parseSenML(p)
	case p[0] == '-' || p[0] == '+' || p[0] == '.' || (p[0] >= '0' && p[0] <= '9') || string(p) == "NaN":
		return nil, ignore(reasonValue, "a bare number (format value) has no agent, sensor or seq: publish json or influx")
	}
	return parseLines(p)
}

// jsonReading is Kelvin's JSON wire format (reading.Reading.AppendJSON).
type jsonReading struct {
	Agent    string   `json:"agent"`
	Sensor   string   `json:"sensor"`
	Quantity string   `json:"quantity"`
	Value    *float64 `json:"value"`
	Raw      *float64 `json:"raw"`
	Unit     string   `json:"unit"`
	TS       string   `json:"ts"`
	Seq      *uint64  `json:"seq"`
	Clock    string   `json:"clock"`
}

func parseJSON(p []byte) (reading.Reading, error) {
	var j jsonReading
	if err := json.Unmarshal(p, &j); err != nil {
		return reading.Reading{}, ignore(reasonMalformed, "not Kelvin's JSON: %v", err)
	}
	if j.Seq == nil {
		return reading.Reading{}, ignore(reasonNoSeq, "JSON without seq: not a Kelvin reading")
	}
	r := reading.Reading{Agent: j.Agent, Sensor: j.Sensor, Quantity: j.Quantity, Unit: j.Unit, Seq: *j.Seq, Clock: j.Clock,
		Value: math.NaN(), Raw: math.NaN()}
	if j.Value != nil {
		r.Value = *j.Value
	}
	if j.Raw != nil {
		r.Raw = *j.Raw
	}
	if j.TS != "" {
		t, err := time.Parse(time.RFC3339Nano, j.TS)
		if err != nil {
			return reading.Reading{}, ignore(reasonMalformed, "ts %q: %v", j.TS, err)
		}
		r.Time = t
	}
	return r, check(&r)
}

// parseSenML decodes Kelvin's SenML (reading.FormatSenML). Agent and
// sensor come from the base name kelvin:AGENT:SENSOR:, as escaped by the
// gateway: that is the identity for every id kelvin check accepts, and a
// relayed name with other characters is tracked under its escaped form
// ("gw 1" as "gw_1"; the fleet does not guess the original), so such a
// gateway publishing both senml and json would show twice. A pack whose
// values were not finite carries the seq alone: it counts, with no
// quantity to show.
func parseSenML(p []byte) ([]reading.Reading, error) {
	rs, err := reading.ParseSenML(p)
	switch {
	case errors.Is(err, reading.ErrSenMLNoSeq):
		return nil, ignore(reasonNoSeq, "SenML without a seq record (a Kelvin before it wrote one): publish json or influx, or update the gateway")
	case err != nil:
		return nil, ignore(reasonMalformed, "not Kelvin's SenML: %v", err)
	}
	for _, r := range rs {
		if r.Quantity == "" {
			r.Quantity = "seq" // the seq alone: the rest is checked
		}
		if err := check(&r); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

func check(r *reading.Reading) error {
	switch {
	case r.Agent == "" || r.Sensor == "" || r.Quantity == "":
		return ignore(reasonMissing, "reading without agent, sensor or quantity")
	case r.Seq == 0:
		return ignore(reasonNoSeq, "reading %s/%s without seq (seq counts from 1)", r.Agent, r.Sensor)
	case len(r.Agent) > 128 || len(r.Sensor) > 128 || len(r.Quantity) > 64:
		return ignore(reasonMalformed, "agent, sensor or quantity name too long")
	}
	return nil
}

// parseLines decodes InfluxDB line protocol as Kelvin writes it
// (reading.FormatInflux), one reading per line.
func parseLines(p []byte) ([]reading.Reading, error) {
	var out []reading.Reading
	for line := range strings.SplitSeq(string(p), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		r, err := parseLine(line)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, ignore(reasonEmpty, "no lines")
	}
	return out, nil
}

func parseLine(line string) (reading.Reading, error) {
	parts := split(line, ' ')
	if len(parts) < 2 || len(parts) > 3 {
		return reading.Reading{}, ignore(reasonMalformed, "not line protocol: want measurement,tags fields [timestamp]")
	}
	head := split(parts[0], ',')
	r := reading.Reading{Quantity: unescape(head[0]), Value: math.NaN(), Raw: math.NaN()}
	for _, tag := range head[1:] {
		k, v, ok := strings.Cut(tag, "=")
		if !ok {
			return reading.Reading{}, ignore(reasonMalformed, "tag %q: want key=value", tag)
		}
		switch k {
		case "agent":
			r.Agent = unescape(v)
		case "sensor":
			r.Sensor = unescape(v)
		case "unit":
			r.Unit = unescape(v)
		case "clock":
			r.Clock = unescape(v)
		}
	}
	hasSeq := false
	for _, f := range split(parts[1], ',') {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return reading.Reading{}, ignore(reasonMalformed, "field %q: want key=value", f)
		}
		var err error
		switch k {
		case "value":
			r.Value, err = strconv.ParseFloat(v, 64)
		case "raw":
			r.Raw, err = strconv.ParseFloat(v, 64)
		case "seq":
			r.Seq, err = strconv.ParseUint(strings.TrimSuffix(v, "i"), 10, 64)
			hasSeq = true
		}
		if err != nil {
			return reading.Reading{}, ignore(reasonMalformed, "field %s: %q is not a number", k, v)
		}
	}
	if !hasSeq {
		return reading.Reading{}, ignore(reasonNoSeq, "line without a seq field: not a Kelvin reading")
	}
	if len(parts) == 3 {
		ns, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil {
			return reading.Reading{}, ignore(reasonMalformed, "timestamp %q: want nanoseconds", parts[2])
		}
		r.Time = time.Unix(0, ns)
	}
	return r, check(&r)
}

// split splits s at sep where it is not escaped with a backslash.
func split(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

var unescaper = strings.NewReplacer(`\ `, ` `, `\,`, `,`, `\=`, `=`, `\t`, "\t", `\n`, "\n", `\r`, "\r", `\f`, "\f")

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	return unescaper.Replace(s)
}

// Status is what a gateway says about itself on kelvin/AGENT/status: the
// plain retained "online" / "offline" (its last will) that every Kelvin
// publishes, or a JSON object (docs/design.md, "The fleet view"):
//
//	{"state":"online","page":"http://pi:8080/","skip":{"tank":[1743,2000]}}
//
// Skip lists, per sensor, a range of seqs [first, last] the gateway
// reserved before a restart and will never publish, so the fleet does not
// count them as lost.
type Status struct {
	State string               `json:"state"`
	Page  string               `json:"page,omitempty"`
	Skip  map[string][2]uint64 `json:"skip,omitempty"`
}

func parseStatus(p []byte) (Status, error) {
	p = bytes.TrimSpace(p)
	switch s := string(p); s {
	case "online", "offline":
		return Status{State: s}, nil
	case "":
		return Status{}, ignore(reasonEmpty, "empty status (a cleared retained message)")
	}
	var st Status
	if p[0] != '{' || json.Unmarshal(p, &st) != nil || (st.State != "online" && st.State != "offline") {
		return Status{}, ignore(reasonStatus, "status %.40q: want online, offline or {\"state\":\"online\",...}", p)
	}
	return st, nil
}

// parseRestart decodes a gateway's retained restart announcement on
// kelvin/AGENT/restart (reading.Restart), per sensor the seq its readings
// resumed at after seqs it had reserved went unused, and, when the gateway
// says so, the first of those:
//
//	{"started":"2026-12-04T22:00:00Z","seq_resume":{"tank":65537},"skip_from":{"tank":1743}}
func parseRestart(p []byte) (reading.Restart, error) {
	a, err := reading.ParseRestart(p)
	if err != nil {
		return reading.Restart{}, ignore(reasonStatus, "restart announcement %.40q: want {\"seq_resume\":{...}}", p)
	}
	return a, nil
}

// parseDiscovery reads a Kelvin gateway's Home Assistant discovery config
// (homeassistant/sensor/kelvin_AGENT/.../config, retained): its agent,
// from the availability topic kelvin/AGENT/status, and the address of its
// page, configuration_url. ok is false for anything else, such as other
// devices' discovery.
func parseDiscovery(p []byte) (agent, page string, ok bool) {
	var d struct {
		AvailabilityTopic string `json:"availability_topic"`
		Device            struct {
			ConfigurationURL string `json:"configuration_url"`
		} `json:"device"`
	}
	if json.Unmarshal(p, &d) != nil || !strings.HasPrefix(d.AvailabilityTopic, "kelvin/") {
		return "", "", false
	}
	agent, ok = topicAgent(d.AvailabilityTopic, "/status")
	return agent, d.Device.ConfigurationURL, ok
}
