package mqtt

import (
	"encoding/json"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
)

// AnnounceSkipped sets the retained message published on
// kelvin/{agent}/restart at every connection (and at once when the
// connection is already up): when this run started and, after a restart
// that skipped seqs (a crash: seqs are reserved ahead, never reused), the
// ranges skipped: per sensor of skipped, no reading with a seq from first
// to last will be published that was not published before the restart
// (after a crash they were never used; after a power cut, see
// reading.SensorRestart), and the sensor resumed at last+1
// (reading.Restart):
//
//	{"started":"2026-12-04T22:00:00Z","seq_resume":{"tank":65537},"skip_from":{"tank":1743}}
//
// A consumer that reads skip_from counts exactly that range as skipped and
// a gap below it as lost; one that reads only seq_resume skips the gap
// just below it. Safe for concurrent use.
func (c *Client) AnnounceSkipped(started time.Time, skipped map[string][2]uint64) {
	a := reading.Restart{Started: started.UTC(), SeqResume: map[string]uint64{}}
	for s, r := range skipped {
		a.SeqResume[s] = r[1] + 1
		if a.SkipFrom == nil {
			a.SkipFrom = map[string]uint64{}
		}
		a.SkipFrom[s] = r[0]
	}
	b, _ := json.Marshal(a)
	c.setRestart(b)
}
