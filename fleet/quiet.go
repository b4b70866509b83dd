package fleet

import (
	"slices"
	"time"
)

// stateSilent is the state of a gateway not heard from for its silence
// limit. It is not "offline", which the gateway (or its broker, by its
// last will) said: silence is only what the fleet infers, and has more
// causes (the gateway, its network, the path to the fleet), so the page
// tells the two apart.
const stateSilent = "silent"

// mqttSourceName names the MQTT source in Summary.Sources and /metrics.
const mqttSourceName = "mqtt"

// quietSamples is how many of a gateway's intervals its silence limit
// follows.
const quietSamples = 8

// quiet is what a gateway's silence is judged by: when it was last heard
// (a reading, or a status with a state) and its usual interval between
// messages. An interval is the time from one message to the first at
// least a second after it, so the readings of one poll of its sensors,
// however spread over that second, and a backlog drain count as one.
// Nothing here needs a timer: Expire compares once a second.
type quiet struct {
	heardAt time.Time
	mark    time.Time                   // start of the current interval
	gaps    [quietSamples]time.Duration // the last intervals, a ring
	ngaps   int                         // intervals seen, the ring's next slot mod quietSamples
	limit   time.Duration               // silent when unheard for this long; 0: the configured bound
	// vouched is set while the gateway's last word was an MQTT status
	// "online": its broker publishes its last will when it goes, so
	// silence alone does not make it silent while the MQTT source is
	// connected (its sensors show their own staleness).
	vouched bool
}

// heard records a message from the gateway at now and, once an interval
// is complete, its new silence limit: three times the median of its last
// intervals (the upper one of an even count), at least a minute (or
// bound, when shorter) and at most bound.
func (q *quiet) heard(now time.Time, bound time.Duration) {
	q.heardAt = now
	d := now.Sub(q.mark)
	if q.mark.IsZero() || d < 0 {
		q.mark = now
		return
	}
	if d < time.Second {
		return
	}
	q.mark = now
	q.gaps[q.ngaps%quietSamples] = d
	q.ngaps++
	all := q.gaps // a copy, on the stack
	sorted := all[:min(q.ngaps, quietSamples)]
	slices.Sort(sorted)
	q.limit = min(max(3*sorted[len(sorted)/2], min(time.Minute, bound)), bound)
}

// isSilent reports whether the gateway has gone silent: online or not yet
// known, and unheard for its silence limit (bound before one is known). A
// gateway loaded from the saved state counts from the fleet's start; one
// known only by its page never goes silent.
// mqttUp says whether the MQTT source is connected, so that a status
// "online" it carried still vouches for the gateway.
func (g *gateway) isSilent(now time.Time, bound time.Duration, mqttUp bool) bool {
	if g.state != "online" && g.state != "" || g.vouched && mqttUp {
		return false
	}
	limit := g.limit
	if limit == 0 {
		limit = bound
	}
	since := g.heardAt
	if since.IsZero() {
		if g.lastSeen.IsZero() {
			return false // known only by its page: never heard, "unknown"
		}
		since = g.changed // from the saved state: heard before the fleet started
	}
	return now.Sub(since) >= limit
}
