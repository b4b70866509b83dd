package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/kelvin-gw/kelvin/buffer"
	"github.com/kelvin-gw/kelvin/httpui"
	"github.com/kelvin-gw/kelvin/ingest"
	"github.com/kelvin-gw/kelvin/reading"
)

// Limits of pushed readings.
const (
	ingestMaxFuture  = 5 * time.Minute  // a timestamp further ahead is refused
	ingestCommitWait = 30 * time.Second // longest wait for the commit of a batch whose client went away
	ingestRate       = 10               // readings per second per sensor, on average
	ingestBurst      = 200              // readings per sensor at once (a device's backlog)
)

// unitAliases are the units a device may write for each quantity.
var unitAliases = map[string][]string{
	reading.Temperature: {"°C", "C", "degC", "celsius", "Celsius"},
	reading.Humidity:    {"%RH", "%", "percent"},
	reading.Pressure:    {"Pa", "pascal"},
}

// pushState is a pushed sensor's rate limit and the lock of its filters.
type pushState struct {
	mu     sync.Mutex // held while its readings go through the filters
	tokens float64
	at     time.Time
}

// available is what the sensor's bucket holds at now: ingestBurst when
// never used, refilled at ingestRate since the last spend; mu is held.
func (p *pushState) available(now time.Time) float64 {
	if p.at.IsZero() {
		return ingestBurst
	}
	return min(ingestBurst, p.tokens+now.Sub(p.at).Seconds()*ingestRate)
}

// spend takes n tokens, which available said are there; mu is held.
func (p *pushState) spend(n int, now time.Time) {
	p.tokens, p.at = p.available(now)-float64(n), now
}

// refusedError is an ingest error because the buffer refused the readings:
// a state the agent logs and shows by itself (see refusals), not news for
// every message.
type refusedError struct{ error }

func (e refusedError) Unwrap() error { return e.error }

func ingestErr(status int, format string, args ...any) error {
	return &httpui.IngestError{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// Ingest takes readings pushed by devices to the page (POST /api/ingest)
// for the sensors whose type says they come in there (viaPage: type http):
// the whole batch or none of it. It checks each against the config (the
// sensor is declared with such a type, quantity and unit match, the value is
// plausible for the quantity (reading.CheckPlausible), the time is neither
// in the future nor older than buffer.max_age, the sensor's rate limit),
// runs the readings through their sensors' filters, and returns once what
// passed them is durable in the buffer. Errors are *httpui.IngestError.
func (a *Agent) Ingest(ctx context.Context, items []ingest.Item) (int, error) {
	return a.ingest(ctx, items, viaPage)
}

// ingest is Ingest for the readings that came in through in (viaPage:
// POST /api/ingest; viaMQTT: the MQTT input); only sensors whose type the
// registry says are pushed there take them. It returns once the readings
// are durable when in.durable() (a 202 promises that), else once they are
// in the buffer, like a wired sensor's.
func (a *Agent) ingest(ctx context.Context, items []ingest.Item, in input) (int, error) {
	durable := in.durable()
	now := a.now()
	type job struct {
		r  *runner
		rs []reading.Reading
	}
	jobs := map[string]*job{}
	var order []string
	for i, it := range items {
		where := ""
		if len(items) > 1 {
			where = fmt.Sprintf("reading %d: ", i)
		}
		r := a.byID[it.Sensor]
		switch {
		case r == nil:
			return 0, ingestErr(http.StatusUnprocessableEntity, "%ssensor %q is not in the config (declare it with type: %s)", where, it.Sensor, in.typeName())
		case sensorTypes[r.cfg.Type].pushed != in:
			return 0, ingestErr(http.StatusUnprocessableEntity, "%ssensor %q is of type %s, not %s: only type %s sensors take these readings", where, it.Sensor, r.cfg.Type, in.typeName(), in.typeName())
		}
		q := r.cfg.Quantities()[0]
		if it.Quantity != "" && it.Quantity != q {
			return 0, ingestErr(http.StatusUnprocessableEntity, "%ssensor %q measures %s, not %s", where, it.Sensor, q, it.Quantity)
		}
		if it.Unit != "" && !contains(unitAliases[q], it.Unit) {
			return 0, ingestErr(http.StatusBadRequest, "%sunit %q: sensor %q measures %s in %s", where, it.Unit, it.Sensor, q, reading.UnitOf(q))
		}
		if err := reading.CheckPlausible(q, it.Value); err != nil {
			return 0, ingestErr(http.StatusUnprocessableEntity, "%ssensor %q: %v", where, it.Sensor, err)
		}
		t := it.Time
		switch {
		case t.IsZero(): // not given: the parsers refuse a given zero time
			t = now
		case t.After(now.Add(ingestMaxFuture)):
			return 0, ingestErr(http.StatusUnprocessableEntity, "%sts %s is %s in the future", where, t.UTC().Format(time.RFC3339), ahead(t, now))
		case t.Before(now.Add(-time.Duration(a.cfg.Buffer.MaxAge))):
			return 0, ingestErr(http.StatusUnprocessableEntity, "%sts %s is older than buffer.max_age (%v)", where, t.UTC().Format(time.RFC3339), a.cfg.Buffer.MaxAge)
		}
		j := jobs[it.Sensor]
		if j == nil {
			j = &job{r: r}
			jobs[it.Sensor] = j
			order = append(order, it.Sensor)
		}
		j.rs = append(j.rs, reading.Reading{Quantity: q, Raw: it.Value, Unit: reading.UnitOf(q), Time: t.UTC()})
	}
	// Rate limits, all or nothing, then the filters and the append, with
	// the sensors locked in one order (sorted: no two batches deadlock) so
	// that each sensor's readings enter the buffer in the order they went
	// through its filters. The wait for the disk comes after the unlock.
	slices.Sort(order)
	for _, id := range order {
		jobs[id].r.push.mu.Lock()
	}
	locked := true
	unlock := func() {
		if locked {
			for _, id := range order {
				jobs[id].r.push.mu.Unlock()
			}
			locked = false
		}
	}
	defer unlock()
	for _, id := range order {
		j := jobs[id]
		if j.r.push.available(now) < float64(len(j.rs)) {
			return 0, ingestErr(http.StatusTooManyRequests, "sensor %q: more than %d readings per second (bursts of %d)", id, ingestRate, ingestBurst)
		}
	}
	var out []reading.Reading
	for _, id := range order {
		j := jobs[id]
		j.r.push.spend(len(j.rs), now)
		o, fault := j.r.process(j.rs, nil)
		out = append(out, o...)
		if fault != nil {
			j.r.fail(fault)
		} else {
			j.r.ok(len(j.rs))
		}
	}
	if err := a.acceptPushed(out); err != nil {
		if errors.Is(err, buffer.ErrFull) {
			return 0, refusedError{ingestErr(http.StatusServiceUnavailable, "the buffer is full: %v", err)}
		}
		return 0, refusedError{ingestErr(http.StatusServiceUnavailable, "not stored: %v", err)}
	}
	unlock()
	if durable {
		// The readings are in the buffer and on the page now, whether or
		// not the client waits for the answer: wait for their commit
		// (bounded) even when it gives up, so that the outcome counted is
		// what happened to them.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ingestCommitWait)
		defer cancel()
		if err := a.store.log.WaitDurable(wctx); err != nil {
			return 0, ingestErr(http.StatusServiceUnavailable, "not yet on disk: %v", err)
		}
	}
	return len(out), nil
}

// acceptPushed is accept for pushed readings: it returns the error that
// kept them out of the buffer.
func (a *Agent) acceptPushed(rs []reading.Reading) error {
	if len(rs) == 0 {
		return nil
	}
	for i := range rs {
		rs[i].Agent = a.cfg.Agent.ID
	}
	a.clock.mark(rs)
	if err := a.store.Append(rs); err != nil {
		a.refusals.refused(len(rs), err) // the client is told too
		return err
	}
	a.refusals.stored()
	a.show(rs)
	return nil
}

// ahead says how far t is after now: a gap of more than a century (which
// a time.Duration cannot even hold beyond 292 years) in years, not as a
// saturated "2562047h47m16s".
func ahead(t, now time.Time) string {
	if y := t.Year() - now.Year(); y > 100 {
		return fmt.Sprintf("about %d years", y)
	}
	return t.Sub(now).Round(time.Second).String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
