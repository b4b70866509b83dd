package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kelvin-gw/kelvin/archive"
	"github.com/kelvin-gw/kelvin/filter"
	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/reading"
)

// logEvery rate-limits the log line about ignored messages.
const logEvery = time.Minute

// Fleet is the receiving side of many gateways: it takes their readings
// from the sources, drops duplicates on (agent, sensor, seq), tracks
// missing seqs, and keeps the state the fleet page, /api/fleet and
// /metrics show. Its methods are safe for concurrent use.
type Fleet struct {
	cfg     Config
	now     func() time.Time
	log     *slog.Logger
	hub     *hub
	archive *archive.Archive // nil: no long history

	saveMu sync.Mutex // one Checkpoint at a time

	mu        sync.Mutex
	version   uint64 // counts changes to the exactly-once state
	saved     uint64 // the version in the state file
	gateways  map[string]*gateway
	ignored   map[string]uint64 // by reason
	refused   map[string]uint64 // "gateway" or "sensor": over max_gateways / max_sensors
	lastLog   time.Time
	suppress  int // ignored messages not logged since lastLog
	sources   []source
	connected map[string]bool   // by source name
	srcErr    map[string]string // the last error of each source not connected

	forward   func([]reading.Reading) // nil: readings are not forwarded
	onState   func(agent, state string)
	onRestart func(agent string, payload []byte)
}

// gateway is one agent seen on the stream.
type gateway struct {
	agent    string
	state    string // "online", "offline", "silent", or "" before any status
	page     string
	lastSeen time.Time // last reading
	changed  time.Time // state last changed
	quiet              // when it is silent
	sensors  map[string]*sensor
	skips    map[string][2]uint64 // last announced per sensor, applied once
}

// sensor is one sensor of a gateway: its seq state and its series.
type sensor struct {
	id     string
	seqs   seqs
	series map[string]*series // by quantity
}

// series is one quantity of a sensor: its last readings for the charts.
type series struct {
	quantity, unit string
	chain          *filter.Chain // nil: no rule matched
	ring           []point       // HistoryPoints at most, oldest first from next
	next           int
	last           reading.Reading
}

// point is one reading of a series as the charts draw it.
type point struct {
	T   int64   // unix milliseconds
	V   float32 // value after the gateway's and the fleet's filters
	Raw float32
}

// source is one place readings come from.
type source interface {
	name() string
	run(ctx context.Context, f *Fleet) error
}

// New returns a fleet configured by cfg (SetDefaults must have run). now
// is the clock (nil: wallclock.Now), log the logger (nil: discard).
func New(cfg Config, now func() time.Time, log *slog.Logger) (*Fleet, error) {
	if now == nil {
		now = wallclock.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, r := range cfg.Rules {
		if _, err := filter.NewChain(r.Specs); err != nil {
			return nil, err
		}
	}
	f := &Fleet{cfg: cfg, now: now, log: log, gateways: map[string]*gateway{},
		ignored: map[string]uint64{}, refused: map[string]uint64{}, connected: map[string]bool{}, srcErr: map[string]string{}}
	f.hub = newHub(log)
	if cfg.StateDir != "" {
		if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
			return nil, fmt.Errorf("fleet: state_dir: %w", err)
		}
		f.load()
	}
	if cfg.MQTT != nil {
		s, err := newMQTTSource(*cfg.MQTT, log.With("source", "mqtt"))
		if err != nil {
			return nil, err
		}
		f.sources = append(f.sources, s)
	}
	if cfg.Kafka != nil {
		s, err := newKafkaSource(*cfg.Kafka, log.With("source", "kafka"))
		if err != nil {
			return nil, err
		}
		f.sources = append(f.sources, s)
	}
	return f, nil
}

// Run follows the sources until ctx is done, and counts the gaps older
// than LossAfter as lost once a second. It returns nil on cancellation.
func (f *Fleet) Run(ctx context.Context) error {
	if len(f.sources) == 0 {
		return ErrNoSource
	}
	g, ctx := errgroup.WithContext(ctx)
	for _, s := range f.sources {
		g.Go(func() error { return s.run(ctx, f) })
	}
	g.Go(func() error {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		save := time.NewTicker(saveEvery)
		defer save.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				f.Expire()
			case <-save.C:
				f.checkpointOrWarn(ctx)
			}
		}
	})
	err := g.Wait()
	// The sources are stopped (a Kafka source checkpointed as it stopped):
	// save what they handed over last.
	if serr := f.save(); serr != nil {
		f.log.Warn("fleet state not saved at stop", "dir", f.cfg.StateDir, "err", serr)
	}
	f.hub.close()
	if f.archive != nil {
		if cerr := f.archive.Close(); cerr != nil {
			f.log.Warn("closing the fleet's history archive", "err", cerr)
		}
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// SetForward makes Handle pass every reading it takes for the first time
// (duplicates on (agent, sensor, seq) dropped) to fn, as the gateway sent
// it (the fleet's filters shape only what the fleet shows), a message's
// readings in one call, before Handle returns: a source acknowledges a
// message only after that. Call it before Run.
func (f *Fleet) SetForward(fn func([]reading.Reading)) { f.forward = fn }

// SetStateHook makes the fleet call fn when a gateway's state changes to
// "online", "offline" or "silent" (nothing heard from it for its silence
// limit, see Config.SilentAfter). fn is called with the fleet's lock held: it must
// not block nor call the fleet. Call it before Run.
func (f *Fleet) SetStateHook(fn func(agent, state string)) { f.onState = fn }

// SetRestartHook makes the fleet call fn with each gateway's restart
// announcement, once the fleet applied it: kelvin/AGENT/restart as it
// came, and in the same shape (reading.Restart, with skip_from) a Kafka
// record's restart header or a status's new skip ranges. fn must not block
// nor keep payload. Call it before Run.
func (f *Fleet) SetRestartHook(fn func(agent string, payload []byte)) { f.onRestart = fn }

// setStateLocked records a change of the gateway's state; f.mu is held.
func (f *Fleet) setStateLocked(g *gateway, state string, now time.Time) {
	g.state, g.changed = state, now
	if f.onState != nil {
		f.onState(g.agent, state)
	}
}

// Expire counts the gaps open for LossAfter or longer as lost, and marks
// the gateways not heard from for their silence limit as silent (see
// quiet). Run calls it once a second.
func (f *Fleet) Expire() {
	now := f.now()
	deadline := now.Add(-f.cfg.LossAfter)
	f.mu.Lock()
	defer f.mu.Unlock()
	mqttUp := f.connected[mqttSourceName]
	for _, g := range f.gateways {
		if g.isSilent(now, f.cfg.SilentAfter, mqttUp) {
			f.setStateLocked(g, stateSilent, now)
		}
		for _, s := range g.sensors {
			if len(s.seqs.gaps) > 0 {
				lost := s.seqs.lost
				s.seqs.expire(deadline)
				if s.seqs.lost != lost {
					f.version++
				}
			}
		}
	}
}

// setConnected records whether a source is connected, for the page; a
// connected source has no error.
func (f *Fleet) setConnected(name string, up bool) {
	f.mu.Lock()
	f.connected[name] = up
	if up {
		delete(f.srcErr, name)
	}
	f.mu.Unlock()
}

func (f *Fleet) isConnected(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connected[name]
}

// setSourceError records why a source is not connected, for the page.
func (f *Fleet) setSourceError(name string, err error) {
	f.mu.Lock()
	f.connected[name] = false
	f.srcErr[name] = err.Error()
	f.mu.Unlock()
}

// Handle takes one message from a source: a reading (or a batch of them)
// or, on a topic ending in /status, a gateway's status. It returns the
// reason a message was ignored, which is also counted and logged at most
// once a minute; nil when it was taken (duplicates included).
func (f *Fleet) Handle(topic string, payload []byte) error {
	now := f.now()
	if strings.HasSuffix(topic, "/config") {
		if agent, page, ok := parseDiscovery(payload); ok {
			f.status(agent, Status{Page: page}, now)
			return nil
		}
		if !bytes.Contains(payload, []byte(`"seq"`)) {
			return nil // another device's discovery: none of the fleet's business
		}
	}
	if agent, ok := topicAgent(topic, "/restart"); ok {
		if a, err := parseRestart(payload); err == nil {
			f.restart(agent, a)
			if f.onRestart != nil {
				f.onRestart(agent, payload)
			}
			return nil
		}
		// A sensor called "restart": read on.
	}
	if agent, ok := topicAgent(topic, "/status"); ok {
		st, err := parseStatus(payload)
		if err == nil {
			f.status(agent, st, now)
			return nil
		}
		if len(payload) == 0 || payload[0] != '{' {
			return f.ignore(topic, err)
		}
		// A sensor called "status": read on.
	}
	rs, err := parseReadings(payload)
	if err != nil {
		return f.ignore(topic, err)
	}
	var fresh []reading.Reading // to forward
	defer func() {
		if len(fresh) > 0 {
			f.forward(fresh)
		}
	}()
	for _, r := range rs {
		isNew, err := f.take(r, now)
		if isNew && f.forward != nil {
			fresh = append(fresh, r)
		}
		if err != nil {
			return f.ignore(topic, err)
		}
	}
	return nil
}

// topicAgent returns AGENT for a topic PREFIX/AGENT/suffix ("/status").
func topicAgent(topic, suffix string) (string, bool) {
	rest, ok := strings.CutSuffix(topic, suffix)
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 || strings.Contains(rest[:i], "/") {
		return "", false
	}
	return rest[i+1:], rest[i+1:] != ""
}

func (f *Fleet) ignore(topic string, err error) error {
	reason := reasonMalformed
	var ig *ignored
	if errors.As(err, &ig) {
		reason = ig.Reason
	}
	now := f.now()
	f.mu.Lock()
	f.ignored[reason]++
	logIt := now.Sub(f.lastLog) >= logEvery
	suppressed := f.suppress
	if logIt {
		f.lastLog, f.suppress = now, 0
	} else {
		f.suppress++
	}
	f.mu.Unlock()
	if logIt {
		f.log.Warn("fleet message ignored", "topic", topic, "reason", reason, "err", err, "suppressed_since_last", suppressed)
	}
	return err
}

// gatewayLocked returns the agent's gateway, creating it when there is
// room; nil when max_gateways is reached.
func (f *Fleet) gatewayLocked(agent string, now time.Time) *gateway {
	g := f.gateways[agent]
	if g == nil {
		if len(f.gateways) >= f.cfg.MaxGateways {
			f.refused["gateway"]++
			return nil
		}
		g = &gateway{agent: agent, sensors: map[string]*sensor{}, changed: now}
		f.gateways[agent] = g
	}
	return g
}

func (f *Fleet) status(agent string, st Status, now time.Time) {
	if a := f.statusLocked(agent, st, now); a != nil && f.onRestart != nil {
		// A skip is a restart announcement too: hand it on, with the
		// exact range, as kelvin/AGENT/restart would carry it.
		b, _ := json.Marshal(a)
		f.onRestart(agent, b)
	}
}

// statusLocked applies a gateway's status, taking f.mu, and returns its
// new skips as a restart announcement (nil: none).
func (f *Fleet) statusLocked(agent string, st Status, now time.Time) *reading.Restart {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.gatewayLocked(agent, now)
	if g == nil {
		f.ignored[reasonCapacity]++
		return nil
	}
	f.version++
	if st.State != "" {
		// The gateway's own word, or its broker's (the last will).
		g.heard(now, f.cfg.SilentAfter)
		g.vouched = st.State == "online"
		if g.state != st.State {
			f.setStateLocked(g, st.State, now)
		}
	}
	if st.Page != "" {
		g.page = st.Page
	}
	var a *reading.Restart
	for id, r := range st.Skip {
		if g.skips[id] == r {
			continue // the same retained announcement again
		}
		if g.skips == nil {
			g.skips = map[string][2]uint64{}
		}
		g.skips[id] = r
		if s := f.sensorLocked(g, id); s != nil {
			s.seqs.skip(r[0], r[1], now)
		}
		if r[0] > 0 && r[1] >= r[0] {
			if a == nil {
				a = &reading.Restart{SeqResume: map[string]uint64{}, SkipFrom: map[string]uint64{}}
			}
			a.SeqResume[id], a.SkipFrom[id] = r[1]+1, r[0]
		}
	}
	return a
}

// restart applies a gateway's restart announcement: per sensor, the seq
// its readings resumed at after the restart.
func (f *Fleet) restart(agent string, a reading.Restart) {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.gateways[agent]
	if g == nil {
		return // nothing seen of it yet: counting starts at its first reading
	}
	for id := range a.SeqResume {
		if r, ok := a.Sensor(id); ok {
			f.restartSensorLocked(g, id, r, now)
		}
	}
}

// restartSensorLocked applies one sensor's part of a restart announcement;
// f.mu is held. With the first seq skipped known, exactly the range
// [SkipFrom, SeqResume-1] is skipped and a gap below it stays a gap;
// otherwise the gap just below SeqResume is.
func (f *Fleet) restartSensorLocked(g *gateway, id string, r reading.SensorRestart, now time.Time) {
	s := g.sensors[id]
	if s == nil {
		return // counting starts at its first reading
	}
	if r.SkipFrom > 0 {
		s.seqs.skip(r.SkipFrom, r.SeqResume-1, now)
	} else {
		s.seqs.resume(r.SeqResume)
	}
	f.version++
}

// handleRestartHeader applies a sensor's restart announcement that came
// as the "restart" header of a Kafka record (reading.SensorRestart), before
// the record itself is handled: agent and sensor are the record's
// headers. It then hands the announcement on to the restart hook (in the
// shape of kelvin/AGENT/restart, with this one sensor), so that a
// forwarding fleet carries it on. A header that does not parse is ignored
// and counted; the record is still handled.
func (f *Fleet) handleRestartHeader(agent, sensor string, value []byte) error {
	r, err := reading.ParseSensorRestart(value)
	if err != nil || agent == "" || sensor == "" {
		return f.ignore(agent+"/"+sensor, ignore(reasonStatus, "restart header %.60q of %s/%s: want {\"seq_resume\":N,...} with agent and sensor headers", value, agent, sensor))
	}
	f.mu.Lock()
	if g := f.gateways[agent]; g != nil {
		f.restartSensorLocked(g, sensor, r, f.now())
	}
	f.mu.Unlock()
	if f.onRestart != nil {
		a := reading.Restart{Started: r.Started, SeqResume: map[string]uint64{sensor: r.SeqResume}}
		if r.SkipFrom > 0 {
			a.SkipFrom = map[string]uint64{sensor: r.SkipFrom}
		}
		b, _ := json.Marshal(a)
		f.onRestart(agent, b)
	}
	return nil
}

func (f *Fleet) sensorLocked(g *gateway, id string) *sensor {
	s := g.sensors[id]
	if s == nil {
		if len(g.sensors) >= f.cfg.MaxSensors {
			f.refused["sensor"]++
			return nil
		}
		s = &sensor{id: id, series: map[string]*series{}}
		g.sensors[id] = s
	}
	return s
}

// take records one reading; a duplicate is counted and dropped. It
// reports whether the reading was new: not a duplicate, and tracked.
func (f *Fleet) take(r reading.Reading, now time.Time) (bool, error) {
	f.mu.Lock()
	g := f.gatewayLocked(r.Agent, now)
	if g == nil {
		f.mu.Unlock()
		return false, ignore(reasonCapacity, "max_gateways (%d) reached: %s not tracked", f.cfg.MaxGateways, r.Agent)
	}
	s := f.sensorLocked(g, r.Sensor)
	if s == nil {
		f.mu.Unlock()
		return false, ignore(reasonCapacity, "max_sensors (%d) reached on %s: %s not tracked", f.cfg.MaxSensors, r.Agent, r.Sensor)
	}
	g.lastSeen = now
	g.heard(now, f.cfg.SilentAfter)
	f.version++
	if g.state != "online" {
		// Readings flow: it is up, whatever the last status said (a
		// lost retained message, or one that came late) and however
		// long it was silent.
		g.vouched = false
		f.setStateLocked(g, "online", now)
	}
	if s.seqs.accept(r.Seq, now) == duplicate || r.Quantity == "" {
		// A duplicate, or a reading without a value (a SenML pack of the
		// seq alone): counted, nothing to show.
		f.mu.Unlock()
		return false, nil
	}
	se := s.series[r.Quantity]
	if se == nil {
		if len(s.series) >= 8 {
			f.refused["sensor"]++
			f.mu.Unlock()
			return true, ignore(reasonCapacity, "more than 8 quantities on %s/%s", r.Agent, r.Sensor)
		}
		se = &series{quantity: r.Quantity, chain: f.chainFor(r.Agent, r.Sensor)}
		s.series[r.Quantity] = se
	}
	se.unit = r.Unit
	if se.chain != nil {
		out, err := se.chain.Apply(filter.Sample{Time: r.Time, Value: r.Value})
		if err != nil {
			// Held back or dropped by the fleet's filters: received, not
			// shown.
			f.mu.Unlock()
			return true, nil
		}
		r.Value = out.Value
	}
	if !r.Time.Before(se.last.Time) {
		se.last = r // the newest by time is the current value, as on the page
	}
	p := point{T: r.Time.UnixMilli(), V: float32(r.Value), Raw: float32(r.Raw)}
	if len(se.ring) < f.cfg.HistoryPoints {
		se.ring = append(se.ring, p)
	} else {
		se.ring[se.next] = p
		se.next = (se.next + 1) % len(se.ring)
	}
	f.mu.Unlock()
	f.hub.publish(&r)
	f.archiveAdd(r)
	return true, nil
}

// chainFor builds the chain of the first rule matching agent/sensor.
func (f *Fleet) chainFor(agent, sensor string) *filter.Chain {
	name := agent + "/" + sensor
	for _, r := range f.cfg.Rules {
		if ok, _ := path.Match(r.Match, name); ok {
			c, _ := filter.NewChain(r.Specs) // checked by New
			return c
		}
	}
	return nil
}

// finite32 returns v, or NaN for the JSON encoder to write as null.
func finite(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}
