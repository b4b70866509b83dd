package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/kelvin-gw/kelvin/filter"
	"github.com/kelvin-gw/kelvin/httpui"
	"github.com/kelvin-gw/kelvin/ingest"
	"github.com/kelvin-gw/kelvin/reading"
	"github.com/kelvin-gw/kelvin/sensors"
)

// Sensor states shown on the page and in the API.
const (
	stateStarting = "starting"
	stateOK       = "ok"
	stateFaulty   = "faulty"
)

// A sensor quantity whose every sample a filter drops (max_rate, outlier)
// for at least heldAfterSamples samples and heldAfterIntervals of its
// intervals is faulty with reason held_back, until a sample passes.
const (
	heldAfterSamples   = 3
	heldAfterIntervals = 3
)

// errHeldBack is the fault of a sensor whose readings are all held back.
var errHeldBack = errors.New("every reading held back by a filter")

// faultReason is sensors.Reason with the agent's own reasons: held_back,
// too_large (an MQTT payload over mqtt_in.max_payload_bytes) and bad_data
// for a pushed payload that could not be read.
func faultReason(err error) string {
	switch {
	case errors.Is(err, errHeldBack):
		return "held_back"
	case errors.Is(err, ingest.ErrTooLarge):
		return "too_large"
	case errors.Is(err, ingest.ErrBadInput):
		return "bad_data"
	}
	return sensors.Reason(err)
}

// Backoff after a failed read: the first retry after minBackoff, doubling up
// to the larger of the sensor's interval and maxBackoff.
const (
	minBackoff = time.Second
	maxBackoff = time.Minute
)

// runner reads one sensor on its own interval, runs every quantity through
// its filter chain and hands the results to emit. A failing sensor retries
// with backoff and shows as faulty; it never disturbs another runner.
type runner struct {
	cfg    *SensorConfig
	open   func() (sensors.Sensor, error)
	emit   func([]reading.Reading)
	now    func() time.Time
	log    *slog.Logger
	qs     []string // cfg.Quantities(), computed once
	chains map[string]*filter.Chain
	stale  map[string]*staleTrack
	held   map[string]*heldTrack

	sensor sensors.Sensor
	out    []reading.Reading // reused between reads
	rctx   *readCtx          // reused between reads

	// followers are the other members of this runner's bus group that
	// share the group's interval (see lead): this runner's loop reads for
	// them, and their own loops do not run (led is set).
	followers []*runner
	led       bool

	mu       sync.Mutex
	st       httpui.SensorStatus
	push     pushState // for a pushed sensor (type http)
	lastLoop time.Time // when the read loop last made progress
}

type staleTrack struct {
	raw   float64
	since time.Time
}

// heldTrack counts a quantity's samples dropped in a row by a filter.
type heldTrack struct {
	n     int
	since time.Time // when the first of them was dropped
	why   error     // the last filter error
}

func newRunner(cfg *SensorConfig, open func() (sensors.Sensor, error), emit func([]reading.Reading), now func() time.Time, log *slog.Logger) (*runner, error) {
	r := &runner{
		cfg: cfg, open: open, emit: emit, now: now,
		log:    log.With("sensor", cfg.ID),
		chains: map[string]*filter.Chain{},
		stale:  map[string]*staleTrack{},
		held:   map[string]*heldTrack{},
	}
	qs := cfg.Quantities()
	r.qs = qs
	for _, q := range qs {
		c, err := filter.NewChain(cfg.Filters.For(q))
		if err != nil {
			return nil, fmt.Errorf("sensor %s: %w", cfg.ID, err)
		}
		r.chains[q] = c
	}
	r.st = httpui.SensorStatus{
		ID: cfg.ID, Type: cfg.Type, Quantities: qs, State: stateStarting,
		IntervalSeconds: cfg.Interval.Seconds(),
	}
	return r, nil
}

// lead makes r read for f, a member of r's bus group with the group's
// interval: the members of a bus that are read together are read by one
// loop, one goroutine and one timer (readOnce), not one each. f's own
// loop must not run.
func (r *runner) lead(f *runner) {
	r.followers = append(r.followers, f)
	f.led = true
}

// alive reports whether the read loop made progress recently: a read that
// hangs past its own timeout means something below us is stuck.
func (r *runner) alive(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	limit := 2*max(r.cfg.Interval, maxBackoff) + r.readTimeout()
	return r.lastLoop.IsZero() || now.Sub(r.lastLoop) < limit
}

// readTimeout bounds one read: one interval, at least 2 s.
func (r *runner) readTimeout() time.Duration { return max(r.cfg.Interval, 2*time.Second) }

// status returns a snapshot for the page.
func (r *runner) status() httpui.SensorStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	st.ErrorsByReason = maps.Clone(r.st.ErrorsByReason)
	return st
}

// run reads until ctx is done. Reads are scheduled on a fixed grid of the
// interval that starts at start; a read that overruns skips the ticks it
// missed rather than bunching reads together. The agent gives every runner
// the same start, so that sensors with the same interval wake at the same
// instants: the process wakes once per tick for all of them rather than
// once per sensor (and a bus group member with a loop of its own finds the
// round's bulk read done or in flight).
func (r *runner) run(ctx context.Context, start time.Time) {
	interval := r.cfg.Interval
	failures := 0
	next := start
	t := time.NewTimer(time.Hour) // reused for every wait
	t.Stop()
	defer t.Stop()
	for {
		if wait := next.Sub(r.now()); wait > 0 {
			t.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		start := r.now()
		r.mu.Lock()
		r.lastLoop = start
		r.mu.Unlock()
		err := r.readOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			next = start.Add(min(minBackoff<<min(failures-1, 16), max(interval, maxBackoff)))
			continue
		}
		failures = 0
		next = next.Add(interval)
		if now := r.now(); next.Before(now) {
			// Overran: skip missed ticks, stay on the grid.
			missed := now.Sub(next)/interval + 1
			next = next.Add(missed * interval)
		}
	}
}

// readOnce performs one read with a timeout of one interval (at least 2 s),
// records the outcome and emits what passed. A member of a bus group has
// the group's read's timeout, the same. A runner that leads followers
// (lead) reads the round for all of them, in this goroutine, and emits the
// readings of all of them in one call: one wake-up, one store write and one
// hand-over to the outputs per round, not one per sensor; the bus is read
// once (the first member asks the group, the others find the round's
// result). It returns an error, which makes run back off, only when every
// read failed: a follower failing alone is read again at the next round. A
// fault found in the readings (stale, out of range, held back) is recorded
// but keeps the regular schedule.
func (r *runner) readOnce(ctx context.Context) error {
	batch := r.out[:0]
	var firstErr error
	failed := 0
	for i := -1; i < len(r.followers); i++ {
		m := r
		if i >= 0 {
			m = r.followers[i]
			m.mu.Lock()
			m.lastLoop = r.lastLoopAt()
			m.mu.Unlock()
		}
		rs, err := m.read(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if batch, err = m.record(rs, err, batch); err != nil {
			failed++
			firstErr = cmp.Or(firstErr, err)
		}
	}
	r.out = batch
	if len(batch) > 0 {
		r.emit(batch)
	}
	if failed == len(r.followers)+1 {
		return firstErr
	}
	return nil
}

// lastLoopAt returns when r's loop last made progress.
func (r *runner) lastLoopAt() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastLoop
}

// read opens the sensor when it is not open yet and reads it once.
func (r *runner) read(ctx context.Context) ([]reading.Reading, error) {
	if r.sensor == nil {
		s, err := r.open()
		if err != nil {
			return nil, err
		}
		r.sensor = s
	}
	if m, ok := r.sensor.(*member); ok {
		// The group's read has this very timeout (one interval, at
		// least 2 s) and every member waits for it: no timer of its own
		// per member and read.
		return m.Read(ctx)
	}
	r.rctx = armReadCtx(r.rctx, ctx, r.readTimeout())
	rs, err := r.sensor.Read(r.rctx)
	r.rctx.disarm()
	return rs, err
}

// record records the outcome of one read and appends the readings that
// passed to out: a read error (returned), or the readings' fault, or ok.
func (r *runner) record(rs []reading.Reading, err error, out []reading.Reading) ([]reading.Reading, error) {
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("read timed out after %v: %w", r.readTimeout(), err)
		}
		r.fail(err)
		return out, err
	}
	out, fault := r.process(rs, out)
	if fault != nil {
		r.fail(fault)
		return out, nil // the read itself worked; keep the regular schedule
	}
	r.ok(len(rs))
	return out, nil
}

// process checks raw readings, runs them through the quantity's filter
// chain and appends what is to be published to out. fault is the last
// problem found (an implausible or stuck value, one out of the clamp range,
// a filter result that overflowed or is implausible), or else, when a quantity's samples have
// all been dropped by a filter for a while, errHeldBack.
// Not safe for concurrent use: the read loop calls it, or (for pushed
// readings) ingest under pushMu.
func (r *runner) process(rs, out []reading.Reading) ([]reading.Reading, error) {
	var fault error
	for _, rd := range rs {
		if err := reading.CheckPlausible(rd.Quantity, rd.Raw); err != nil {
			fault = fmt.Errorf("%w: %w", err, sensors.ErrBadData)
			continue
		}
		if err := r.checkStale(rd); err != nil {
			fault = err
			continue
		}
		chain := r.chains[rd.Quantity]
		if chain == nil {
			r.log.Debug("reading of an unexpected quantity dropped", "quantity", rd.Quantity)
			continue
		}
		s, err := chain.Apply(filter.Sample{Time: rd.Time, Value: rd.Raw})
		switch {
		case err == nil:
		case errors.Is(err, filter.ErrNotFinite):
			fault = fmt.Errorf("%s %g: %w: %w", rd.Quantity, rd.Raw, err, sensors.ErrOutOfRange)
			continue
		case errors.Is(err, filter.ErrOutOfRange):
			fault = fmt.Errorf("%s %g outside the clamp range: %w", rd.Quantity, rd.Raw, sensors.ErrOutOfRange)
			continue
		case errors.Is(err, filter.ErrDropped):
			r.hold(rd.Quantity, err)
			r.log.Debug("sample held back by a filter", "quantity", rd.Quantity, "raw", rd.Raw, "why", err)
			continue
		default: // unchanged: not a fault, just not published
			delete(r.held, rd.Quantity)
			r.log.Debug("sample held back by a filter", "quantity", rd.Quantity, "raw", rd.Raw, "why", err)
			continue
		}
		delete(r.held, rd.Quantity)
		if err := reading.CheckPlausible(rd.Quantity, s.Value); err != nil {
			fault = fmt.Errorf("raw %g after the filters: %w: %w", rd.Raw, err, sensors.ErrOutOfRange)
			continue
		}
		rd.Sensor = r.cfg.ID
		rd.Value = s.Value
		if rd.Unit == "" {
			rd.Unit = reading.UnitOf(rd.Quantity)
		}
		out = append(out, rd)
	}
	if fault == nil {
		fault = r.heldFault()
	}
	return out, fault
}

// hold counts a sample of quantity q that a filter dropped.
func (r *runner) hold(q string, why error) {
	h := r.held[q]
	if h == nil {
		h = &heldTrack{since: r.now()}
		r.held[q] = h
	}
	h.n++
	h.why = why
}

// heldFault returns errHeldBack, wrapped with what and how long, when a
// quantity's samples have all been dropped for heldAfterSamples samples and
// heldAfterIntervals intervals.
func (r *runner) heldFault() error {
	for _, q := range r.qs {
		h := r.held[q]
		if h == nil || h.n < heldAfterSamples {
			continue
		}
		if d := r.now().Sub(h.since); d >= heldAfterIntervals*r.cfg.Interval {
			return fmt.Errorf("%s: %d readings in a row for %v, the last by %v: %w", q, h.n, d.Round(time.Second), h.why, errHeldBack)
		}
	}
	return nil
}

// checkStale reports a fault when a quantity's raw value has not changed for
// stale_after (some kernels silently return the previous sample).
func (r *runner) checkStale(rd reading.Reading) error {
	if r.cfg.StaleAfter <= 0 {
		return nil
	}
	t := r.stale[rd.Quantity]
	if t == nil || t.raw != rd.Raw {
		r.stale[rd.Quantity] = &staleTrack{raw: rd.Raw, since: rd.Time}
		return nil
	}
	if d := rd.Time.Sub(t.since); d >= r.cfg.StaleAfter {
		return fmt.Errorf("%s stuck at %g for %v: %w", rd.Quantity, rd.Raw, d.Round(time.Second), sensors.ErrStale)
	}
	return nil
}

func (r *runner) ok(n int) {
	r.mu.Lock()
	was := r.st.State
	r.st.State = stateOK
	r.st.Reason, r.st.Error = "", ""
	r.st.Reads++
	r.st.LastReading = r.now()
	r.mu.Unlock()
	if was == stateFaulty {
		r.log.Info("sensor recovered")
	}
}

func (r *runner) fail(err error) {
	reason := faultReason(err)
	r.mu.Lock()
	was, wasReason := r.st.State, r.st.Reason
	r.st.State = stateFaulty
	r.st.Reason = reason
	r.st.Error = err.Error()
	r.st.Errors++
	if r.st.ErrorsByReason == nil {
		r.st.ErrorsByReason = map[string]uint64{}
	}
	r.st.ErrorsByReason[reason]++ // bounded: the reasons are a fixed set
	r.mu.Unlock()
	if was != stateFaulty || wasReason != reason {
		r.log.Warn("sensor faulty", "reason", reason, "err", err)
	} else {
		r.log.Debug("sensor still faulty", "reason", reason, "err", err)
	}
}
