package reading

import (
	"encoding/json"
	"errors"
	"time"
)

// RestartHeader is the key of the Kafka record header that announces a
// gateway's restart on the sensor's first reading after it (see
// SensorRestart).
const RestartHeader = "restart"

// SensorRestart is one sensor's part of a gateway's restart announcement:
// its seqs resumed at SeqResume after the restart, and no reading with a
// seq from SkipFrom to SeqResume-1 will come that has not come already
// (SkipFrom is the seq after the sensor's last reading the gateway's
// buffer kept). After a crash or kill -9 that range was reserved by the
// previous run and never used. After a power cut it may also hold readings
// that were delivered before the cut (acknowledged in time, they were on
// no disk) and those of the last buffer.sync the cut took. A consumer
// counts the seqs of that range it has not seen as skipped, not lost; seqs
// below SkipFrom that it has not seen stay missing. SkipFrom 0 means unknown (an announcement relayed from
// MQTT's kelvin/AGENT/restart, which names only seq_resume): then every
// seq missing just below SeqResume, back to the highest seen before it,
// is skipped.
//
// On Kafka it is the JSON value of the record header "restart" of the
// sensor's first reading after the restart (the one at SeqResume, or, when
// that one never came, the first after it):
//
//	{"started":"2026-12-04T22:00:00Z","seq_resume":65537,"skip_from":1743}
type SensorRestart struct {
	Started   time.Time `json:"started,omitzero"`
	SeqResume uint64    `json:"seq_resume"`
	SkipFrom  uint64    `json:"skip_from,omitempty"`
}

// errRestart is a restart header that is not one.
var errRestart = errors.New(`restart header: want {"seq_resume":N,...} with N > 0 and skip_from at most N`)

// MarshalSensorRestart returns r as the header's JSON value.
func MarshalSensorRestart(r SensorRestart) []byte {
	b, _ := json.Marshal(r) // a struct of a time and numbers: never fails
	return b
}

// ParseSensorRestart decodes a restart header's value.
func ParseSensorRestart(b []byte) (SensorRestart, error) {
	var r SensorRestart
	if err := json.Unmarshal(b, &r); err != nil || r.SeqResume == 0 || r.SkipFrom > r.SeqResume {
		return SensorRestart{}, errRestart
	}
	return r, nil
}

// Restart is a gateway's whole restart announcement as MQTT carries it,
// retained on kelvin/AGENT/restart: per sensor, where its seqs resumed and,
// when known, the first seq skipped (see SensorRestart).
//
//	{"started":"2026-12-04T22:00:00Z","seq_resume":{"tank":65537},"skip_from":{"tank":1743}}
type Restart struct {
	Started   time.Time         `json:"started,omitzero"`
	SeqResume map[string]uint64 `json:"seq_resume"`
	SkipFrom  map[string]uint64 `json:"skip_from,omitempty"`
}

// Sensor returns sensor's part of the announcement; ok is false when the
// sensor did not resume after a gap.
func (r Restart) Sensor(sensor string) (s SensorRestart, ok bool) {
	v, ok := r.SeqResume[sensor]
	if !ok || v == 0 {
		return SensorRestart{}, false
	}
	from := r.SkipFrom[sensor]
	if from > v {
		from = 0
	}
	return SensorRestart{Started: r.Started, SeqResume: v, SkipFrom: from}, true
}

// ParseRestart decodes a restart announcement as MQTT carries it.
func ParseRestart(b []byte) (Restart, error) {
	var r Restart
	if err := json.Unmarshal(b, &r); err != nil || r.SeqResume == nil {
		return Restart{}, errors.New(`restart announcement: want {"seq_resume":{...}}`)
	}
	return r, nil
}
