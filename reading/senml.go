package reading

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ErrSenMLNoSeq is a SenML pack of Kelvin readings without their seq
// record (a Kelvin from before it wrote one): its readings cannot be
// counted exactly once.
var ErrSenMLNoSeq = errors.New("senml: no seq record")

// senmlMaxVersion is the highest base version (bver) ParseSenML reads:
// RFC 8428's, 10. A pack of a later version must not be used (4.4).
const senmlMaxVersion = 10

// ParseSenML decodes a SenML pack (RFC 8428, JSON) of readings as
// FormatSenML writes them. Each record's name, resolved with the base name
// in force (bn applies to its record and those after it), must be
// kelvin:AGENT:SENSOR:NAME, where NAME is a quantity (the value), "raw_"
// and a quantity (the raw value) or "seq"; the records of one agent,
// sensor and quantity make one Reading, and the seq record of an agent
// and sensor gives the Seq of each of its readings. A pack that holds the
// seq record alone (the value and raw were not finite) gives one Reading
// without a Quantity, whose Value and Raw are NaN: its seq still counts.
//
// Agent and Sensor are the names as written, after FormatSenML's escaping
// (any character outside A-Z a-z 0-9 - . _ written as '_'), which cannot
// be undone: for ids that kelvin check accepts it changes nothing.
//
// Units are mapped back from SenML's (Cel to °C); a record without one
// gets the quantity's fixed unit (UnitOf). Times are bt + t; one that
// SenML reads as relative to now (below 2^28 s), or none, leaves Time zero,
// for the receiver to stamp. The base version must not exceed 10, and an
// unknown label ending in '_' (one RFC 8428 says must be understood) is
// an error; other unknown labels are ignored, as RFC 8428 asks. A pack
// without a seq record is ErrSenMLNoSeq.
func ParseSenML(b []byte) ([]Reading, error) {
	var labels []map[string]json.RawMessage
	if err := json.Unmarshal(b, &labels); err != nil {
		return nil, fmt.Errorf("senml: %w", err)
	}
	for i, m := range labels {
		for k := range m {
			switch k {
			case "bn", "bt", "bu", "bver", "n", "u", "v", "t":
			default:
				if strings.HasSuffix(k, "_") {
					return nil, fmt.Errorf("senml: record %d: label %q must be understood, and is not", i, k)
				}
			}
		}
	}
	var recs []struct {
		BN   *string      `json:"bn"`
		BT   *float64     `json:"bt"`
		BU   *string      `json:"bu"`
		BVer *int         `json:"bver"`
		N    string       `json:"n"`
		U    string       `json:"u"`
		V    *json.Number `json:"v"`
		T    float64      `json:"t"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&recs); err != nil {
		return nil, fmt.Errorf("senml: %w", err)
	}
	type series struct{ agent, sensor, quantity string }
	type sensor struct{ agent, sensor string }
	var (
		out     []Reading
		index   = map[series]int{}
		seqs    = map[sensor]uint64{}
		bn, bu  string
		bt      float64
		lastKey sensor
	)
	for i, rec := range recs {
		if rec.BVer != nil && *rec.BVer > senmlMaxVersion {
			return nil, fmt.Errorf("senml: record %d: version %d, newer than RFC 8428's", i, *rec.BVer)
		}
		if rec.BN != nil {
			bn = *rec.BN
		}
		if rec.BT != nil {
			bt = *rec.BT
		}
		if rec.BU != nil {
			bu = *rec.BU
		}
		name := bn + rec.N
		parts := strings.Split(name, ":")
		if len(parts) != 4 || parts[0] != "kelvin" || parts[1] == "" || parts[2] == "" || parts[3] == "" {
			return nil, fmt.Errorf("senml: record %d: name %q is not kelvin:AGENT:SENSOR:NAME", i, name)
		}
		if rec.V == nil {
			return nil, fmt.Errorf("senml: record %d (%s): no numeric value", i, name)
		}
		key := sensor{parts[1], parts[2]}
		lastKey = key
		if parts[3] == "seq" {
			seq, err := senmlSeq(*rec.V)
			if err != nil {
				return nil, fmt.Errorf("senml: record %d: seq %s: %w", i, *rec.V, err)
			}
			if old, ok := seqs[key]; ok && old != seq {
				return nil, fmt.Errorf("senml: record %d: a second seq for %s:%s", i, key.agent, key.sensor)
			}
			seqs[key] = seq
			continue
		}
		v, err := rec.V.Float64()
		if err != nil {
			return nil, fmt.Errorf("senml: record %d: v %s: %w", i, *rec.V, err)
		}
		q, isRaw := strings.CutPrefix(parts[3], "raw_")
		k := series{key.agent, key.sensor, q}
		j, ok := index[k]
		if !ok {
			j = len(out)
			index[k] = j
			out = append(out, Reading{Agent: k.agent, Sensor: k.sensor, Quantity: q, Value: math.NaN(), Raw: math.NaN(),
				Unit: senmlUnitBack(cmp.Or(rec.U, bu), q)})
		}
		r := &out[j]
		dst := &r.Value
		if isRaw {
			dst = &r.Raw
		}
		if !math.IsNaN(*dst) {
			return nil, fmt.Errorf("senml: record %d: %s twice", i, name)
		}
		*dst = v
		if t := bt + rec.T; t >= 1<<28 && r.Time.IsZero() {
			r.Time = time.UnixMilli(int64(math.Round(t * 1000))).UTC()
		}
	}
	if len(out) == 0 && len(seqs) == 1 {
		// The value and the raw were not finite: the seq alone.
		return []Reading{{Agent: lastKey.agent, Sensor: lastKey.sensor, Value: math.NaN(), Raw: math.NaN(), Seq: seqs[lastKey]}}, nil
	}
	if len(out) == 0 {
		return nil, errors.New("senml: no record")
	}
	for i := range out {
		r := &out[i]
		seq, ok := seqs[sensor{r.Agent, r.Sensor}]
		if !ok {
			return nil, fmt.Errorf("%w for %s:%s", ErrSenMLNoSeq, r.Agent, r.Sensor)
		}
		r.Seq = seq
	}
	return out, nil
}

// senmlSeq reads a seq record's value: an integer, or from 10^18 up the
// rounded float FormatSenML writes.
func senmlSeq(n json.Number) (uint64, error) {
	if seq, err := strconv.ParseUint(n.String(), 10, 64); err == nil {
		return seq, nil
	}
	f, err := n.Float64()
	if err != nil || f < 1e18 || f >= math.MaxUint64 || f != math.Trunc(f) {
		return 0, errors.New("want a whole number from 0 to 2^64-1")
	}
	return uint64(f), nil
}

// senmlUnitBack returns the Kelvin unit of a SenML unit, or the fixed unit
// of quantity when u is empty; a unit Kelvin does not write is kept.
func senmlUnitBack(u, quantity string) string {
	switch u {
	case "":
		return UnitOf(quantity)
	case "Cel":
		return "°C"
	}
	return u
}
