// Package agent wires Kelvin together: it loads and checks the config,
// starts one reader per sensor, runs readings through their filter chains
// into the store, forwards them to every output and serves the page, and
// shuts all of it down in order.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kelvin-gw/kelvin/ingest"
	"github.com/kelvin-gw/kelvin/internal/wallclock"

	"github.com/kelvin-gw/kelvin/archive"
	"github.com/kelvin-gw/kelvin/fleet"
	"github.com/kelvin-gw/kelvin/httpui"
	"github.com/kelvin-gw/kelvin/publish"
	"github.com/kelvin-gw/kelvin/publish/kafka"
	"github.com/kelvin-gw/kelvin/publish/mqtt"
	"github.com/kelvin-gw/kelvin/reading"
	"github.com/kelvin-gw/kelvin/sensors"
	"github.com/kelvin-gw/kelvin/sensors/hw"
)

// version is set at build time with -ldflags "-X github.com/kelvin-gw/kelvin/agent.version=v1.2.3".
var version = "dev"

// Version returns the agent's version, with the VCS revision when the
// binary was built from a git checkout.
func Version() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 && v == "dev" {
				v += "+" + s.Value[:12]
			}
		}
	}
	return v
}

// Options are the parts of a run that are not configuration: clock, log
// destination, and (for tests) a ready callback.
type Options struct {
	Now     func() time.Time // default wallclock.Now
	LogOut  io.Writer        // default os.Stderr
	Log     *slog.Logger     // overrides LogOut and the config's log settings
	OnReady func(*Agent)     // called once everything is started
	Clock   *Clock           // default: SystemClock, or TrustedClock with agent.clock: trust
	// SetCPUs applies agent.cpus to the process (kelvin run sets it to
	// runtime.GOMAXPROCS); nil leaves the runtime alone, as tests do.
	SetCPUs func(*Config)
}

// Agent is a running Kelvin.
type Agent struct {
	cfg     *Config
	log     *slog.Logger
	now     func() time.Time
	started time.Time
	runners []*runner
	byID    map[string]*runner
	store   *bufferStore
	outputs []publish.Output
	ui      *httpui.Server
	archive *archive.Archive // nil without a page
	clock   *Clock
	mqttIn  *ingest.Subscriber // nil without type: mqtt sensors
	// outParts[i] supervises outputs[i]; inPart the MQTT input.
	outParts []*part
	inPart   *part
	buses    *hw.Buses
	w1       *w1Buses // what the 1-Wire bulk reader says of each bus
	groups   []*group // shared bulk reads
	refusals *refusals
	fleet    *fleet.Fleet // nil without a fleet section

	reloading atomic.Bool // stopping to restart on a new config (SIGHUP)

	// The outputs' connections and forwarders (connect, Run): they live
	// until after the sensors stopped, so that the last readings still get
	// out. early: connect as soon as the buffer is locked (start).
	early       bool
	outCtx      context.Context
	stopOutputs context.CancelFunc
	outWG       sync.WaitGroup
}

// outputRunner is implemented by outputs with a connection to keep up.
type outputRunner interface {
	Run(ctx context.Context) error
}

// shutdownDrain bounds how long outputs get to send what is left after the
// sensors stopped.
const shutdownDrain = 2 * time.Second

// Run runs the agent with cfg until ctx is done (its outputs connect while
// it opens the buffer: see start), then shuts down in order:
// sensors stop, the store syncs, outputs get one bounded last flush and say
// goodbye, the page closes. It returns nil after a clean shutdown and an
// error when something could not start (a port in use, an unwritable data
// directory).
func Run(ctx context.Context, cfg *Config, opts Options) error {
	a, err := start(cfg, opts)
	if err != nil {
		return err
	}
	return a.Run(ctx, opts.OnReady)
}

// New prepares an agent: it creates the data directory, opens the outputs
// (which do not connect yet), the store, the page and its history archive,
// and the sensor readers (which do not touch hardware yet). Each step
// leaves what it opened to be undone: when a later step fails, New closes
// all of it, newest first, before it returns the error.
func New(cfg *Config, opts Options) (*Agent, error) {
	return build(cfg, opts, false)
}

// start is New for an agent that runs at once (Run, Serve): its outputs
// start connecting as soon as the buffer's lock is held, so that the
// broker's handshake overlaps recovering the buffer, writing its seq
// reservation and preparing the page and the sensors, rather than following
// them. Not before the lock: a second agent started by mistake on the same
// data directory must fail there without taking the running agent's
// session over (same client id). When a later step fails, the connections
// are stopped before the outputs are closed.
func start(cfg *Config, opts Options) (*Agent, error) {
	if opts.SetCPUs != nil {
		opts.SetCPUs(cfg)
	}
	return build(cfg, opts, true)
}

func build(cfg *Config, opts Options, early bool) (*Agent, error) {
	a := newAgent(cfg, opts)
	a.early = early
	if err := os.MkdirAll(cfg.Agent.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("agent: data_dir: %w", err)
	}
	var undo closers
	for _, step := range []func(*closers) error{a.newOutputs, a.newStore, a.newPage, a.newSensors, a.newFleet, a.newMQTTIn} {
		if err := step(&undo); err != nil {
			undo.close()
			return nil, err
		}
	}
	return a, nil
}

// closers are what the steps of New opened, to close when a later step
// fails.
type closers []func()

func (c *closers) add(close func()) { *c = append(*c, close) }

// close closes everything added, the last first.
func (c closers) close() {
	for i := len(c) - 1; i >= 0; i-- {
		c[i]()
	}
}

// newAgent is an agent with its clock and logger and nothing opened.
func newAgent(cfg *Config, opts Options) *Agent {
	now := opts.Now
	if now == nil {
		now = wallclock.Now
	}
	log := opts.Log
	if log == nil {
		out := opts.LogOut
		if out == nil {
			out = os.Stderr
		}
		log = newLogger(out, cfg.Log)
	}
	a := &Agent{cfg: cfg, log: log, now: now, started: now(), clock: opts.Clock, byID: map[string]*runner{},
		refusals: newRefusals(log.With("component", "buffer"))}
	if a.clock == nil {
		a.clock = SystemClock()
		if cfg.Agent.Clock == "trust" {
			a.clock = TrustedClock()
		}
	}
	return a
}

// newOutputs prepares the MQTT and Kafka outputs; they connect in Run.
func (a *Agent) newOutputs(undo *closers) error {
	cfg := a.cfg
	if cfg.MQTT != nil {
		multi := map[string]bool{}
		for i := range cfg.Sensors {
			multi[cfg.Sensors[i].ID] = len(cfg.Sensors[i].Quantities()) > 1
		}
		mc := *cfg.MQTT
		mc.MultiQuantity = func(sensor string) bool { return multi[sensor] }
		for i := range cfg.Sensors {
			s := &cfg.Sensors[i]
			for _, q := range s.Quantities() {
				mc.HASensors = append(mc.HASensors, mqtt.HASensor{Sensor: s.ID, Quantity: q, IntervalSeconds: s.Interval.Seconds()})
			}
		}
		mc.HADevice = mqtt.HADevice{Version: Version(), PageURL: pageURL(cfg.HTTP)}
		m, err := mqtt.New(mc, cfg.Agent.ID, a.log.With("output", "mqtt"))
		if err != nil {
			return err
		}
		a.addOutput(m, undo)
	}
	if cfg.Kafka != nil {
		k, err := kafka.New(*cfg.Kafka, cfg.Agent.ID, a.log.With("output", "kafka"))
		if err != nil {
			return err
		}
		a.addOutput(k, undo) // its client is started: it must be closed
	}
	return nil
}

func (a *Agent) addOutput(o publish.Output, undo *closers) {
	a.outputs = append(a.outputs, o)
	a.outParts = append(a.outParts, &part{kind: "output", name: o.Name()})
	undo.add(func() { closeOutput(o) })
}

// closeOutput closes an output that has something to close.
func closeOutput(o publish.Output) {
	if c, ok := o.(interface{ Close() }); ok {
		c.Close()
	}
}

// newStore opens the durable buffer, with a cursor for every output.
func (a *Agent) newStore(undo *closers) error {
	names := make([]string, len(a.outputs))
	for i, o := range a.outputs {
		names[i] = o.Name()
	}
	var locked func()
	if a.early {
		locked = a.connect
	}
	st, err := openStore(a.cfg, names, locked, a.now, a.log.With("component", "buffer"))
	if a.outCtx != nil {
		undo.add(a.stopConnections)
	}
	if err != nil {
		return err
	}
	a.store = st
	undo.add(func() { st.Close() })
	// Say where seqs resume, so a consumer tells a restart's gap from a loss.
	// With the exact range skipped per sensor: MQTT retains an
	// announcement of the whole restart; Kafka carries each sensor's part
	// as a header of its first reading after the restart.
	resumed, skipped := st.Resumed(), st.Skipped()
	for _, o := range a.outputs {
		if r, ok := o.(interface {
			AnnounceSkipped(time.Time, map[string][2]uint64)
		}); ok {
			r.AnnounceSkipped(a.started, skipped)
		}
	}
	if len(resumed) > 0 {
		a.log.Info("seqs resume after their reservation: the previous run did not stop cleanly", "sensors", len(resumed))
	}
	return nil
}

// newPage prepares the page and opens its history archive, when there is
// a page.
func (a *Agent) newPage(undo *closers) error {
	cfg, now, log := a.cfg, a.now, a.log
	if cfg.HTTP.Listen == "" {
		return nil
	}
	if err := cfg.HTTP.LoadSecrets(); err != nil {
		return err
	}
	a.ui = httpui.New(cfg.HTTP, a.Status, now, log.With("component", "httpui"))
	arch, err := archive.Open(filepath.Join(cfg.Agent.DataDir, "history"), archive.Options{
		Keep: cfg.HTTP.Archive, FlushEvery: cfg.HTTP.ArchiveFlush,
		Now: now, // the clock that stamps the readings
		Log: log.With("component", "history"),
	})
	if err != nil {
		return err
	}
	a.archive = arch
	undo.add(func() { arch.Close() })
	a.ui.SetArchive(arch)
	for i := range cfg.Sensors {
		if sensorTypes[cfg.Sensors[i].Type].pushed == viaPage {
			a.ui.SetIngest(a.Ingest)
			break
		}
	}
	return nil
}

// newSensors prepares a runner per sensor, and the bulk reads that
// sensors sharing a bus conversion take part in. Nothing touches the
// hardware yet.
func (a *Agent) newSensors(undo *closers) error {
	cfg, now := a.cfg, a.now
	a.buses = hw.NewBuses()
	undo.add(func() { a.buses.Close() })
	a.w1 = newW1Buses(a.log.With("component", "onewire"))
	e := &env{cfg: cfg, now: now, buses: a.buses, w1Bus: a.w1.report}
	// Sensors on one bus share a bulk read, as their type's groupKey says.
	members := map[string][]*SensorConfig{}
	for i := range cfg.Sensors {
		s := &cfg.Sensors[i]
		if t := sensorTypes[s.Type]; t.groupKey != nil {
			k := t.groupKey(s)
			members[k] = append(members[k], s)
		}
	}
	groups := map[string]*group{}
	for k, ms := range members {
		t := sensorTypes[ms[0].Type]
		interval := ms[0].Interval
		for _, m := range ms[1:] {
			interval = min(interval, m.Interval)
		}
		groups[k] = &group{open: func() (sensors.Sensor, error) { return t.openGroup(e, ms) }, interval: interval, now: now}
		a.groups = append(a.groups, groups[k])
	}
	leaders := map[*group]*runner{} // see runner.lead
	for i := range cfg.Sensors {
		s := &cfg.Sensors[i]
		t := sensorTypes[s.Type]
		open := func() (sensors.Sensor, error) { return t.open(e, s) }
		var g *group
		if t.groupKey != nil {
			g = groups[t.groupKey(s)]
			open = func() (sensors.Sensor, error) { return &member{g: g, device: s.Address}, nil }
		}
		r, err := newRunner(s, open, a.accept, now, a.log)
		if err != nil {
			return err
		}
		if g != nil && s.Interval == g.interval {
			if l := leaders[g]; l != nil {
				l.lead(r)
			} else {
				leaders[g] = r
			}
		}
		a.runners = append(a.runners, r)
		a.byID[s.ID] = r
	}
	return nil
}

// newMQTTIn prepares the subscriber of the sensors pushed over MQTT; it
// connects in Run.
func (a *Agent) newMQTTIn(*closers) error {
	cfg := a.cfg
	var subs []ingest.Subscription
	for i := range cfg.Sensors {
		s := &cfg.Sensors[i]
		if sensorTypes[s.Type].pushed == viaMQTT {
			subs = append(subs, ingest.Subscription{Sensor: s.ID, Topic: s.Topic, ValuePath: s.ValuePath})
		}
	}
	if len(subs) == 0 {
		return nil
	}
	sc := ingest.SubscriberConfig{ClientID: "kelvin-" + cfg.Agent.ID + "-in"}
	var pwFile string
	if in := cfg.MQTTIn; in != nil && in.URL != "" {
		sc.URL, sc.Username, pwFile = in.URL, in.Username, in.PasswordFile
	} else {
		sc.URL, sc.Username, pwFile = cfg.MQTT.URL, cfg.MQTT.Username, cfg.MQTT.PasswordFile
	}
	if in := cfg.MQTTIn; in != nil && in.ClientID != "" {
		sc.ClientID = strings.ReplaceAll(in.ClientID, "{agent}", cfg.Agent.ID)
	}
	if in := cfg.MQTTIn; in != nil {
		sc.MaxPayload = int(in.MaxPayloadBytes)
	}
	if pwFile != "" {
		b, err := os.ReadFile(pwFile)
		if err != nil {
			return fmt.Errorf("mqtt_in: password_file: %w", err)
		}
		sc.Password = strings.TrimRight(string(b), "\r\n")
	}
	fail := func(sensor string, err error) {
		if r := a.byID[sensor]; r != nil {
			r.fail(err)
		}
	}
	deliver := func(ctx context.Context, items []ingest.Item) error {
		_, err := a.ingest(ctx, items, viaMQTT)
		if errors.As(err, new(refusedError)) {
			return nil // logged once as the buffer's state, not per message
		}
		// A reading refused for what it is (implausible, too old or
		// too new) is the sensor's bad data; others (the buffer) are
		// the input's to log.
		var ie *httpui.IngestError
		if errors.As(err, &ie) && (ie.Status == http.StatusBadRequest || ie.Status == http.StatusUnprocessableEntity) {
			fail(items[0].Sensor, fmt.Errorf("%s: %w", ie.Msg, sensors.ErrBadData))
			return nil
		}
		return err
	}
	a.mqttIn = ingest.NewSubscriber(sc, subs, deliver, fail, a.log.With("input", "mqtt"))
	a.inPart = &part{kind: "input", name: "mqtt"}
	return nil
}

// accept takes the filtered readings of one read into the store and onto the
// page. The store assigns seq.
func (a *Agent) accept(rs []reading.Reading) {
	for i := range rs {
		rs[i].Agent = a.cfg.Agent.ID
	}
	a.clock.mark(rs)
	if err := a.store.Append(rs); err != nil {
		a.refusals.refused(len(rs), err)
		return
	}
	a.refusals.stored()
	a.show(rs)
}

// show puts stored readings on the page and into its long history; neither
// blocks.
func (a *Agent) show(rs []reading.Reading) {
	if a.ui == nil {
		return
	}
	for _, r := range rs {
		a.ui.Publish(r)
		a.archive.Add(r)
	}
}

// Status reports every stage's state, for the page and the API.
func (a *Agent) Status() httpui.Status {
	st := httpui.Status{
		Agent:   a.cfg.Agent.ID,
		Version: Version(),
		Started: a.started,
		Now:     a.now(),
		Sensors: make([]httpui.SensorStatus, len(a.runners)),
		Outputs: make([]publish.Status, len(a.outputs)),

		ClockSynced: a.clock.Synced(),
		Notices:     a.w1.notices(),
	}
	for i, r := range a.runners {
		st.Sensors[i] = r.status()
	}
	bs := a.store.Stats()
	hours := max(st.Now.Sub(a.started).Hours(), 1.0/60) // at least a minute, so the first figures are not wild
	st.Buffer = &httpui.BufferStatus{
		Bytes: bs.Bytes, MaxBytes: int64(a.cfg.Buffer.MaxBytes),
		Dropped: bs.DroppedFull + bs.DroppedAge, Refused: bs.Refused, Corrupt: bs.CorruptSkipped + bs.TornTruncated,
		FsyncsPerHour: float64(bs.Fsyncs) / hours, BytesWrittenPerHr: float64(bs.BytesWritten) / hours,
		Fsyncs: bs.Fsyncs, BytesWritten: bs.BytesWritten, Forwarded: bs.Forwarded,
		FsyncsLastDay: bs.LastDay.Fsyncs, BytesWrittenLastDay: bs.LastDay.BytesWritten,
		Refusing: a.refusals.state(),
		OnDisk:   bs.OnDisk, HotTail: bs.Hot != "", DiskFull: bs.DiskFull,
		HotBytes: bs.HotBytes, HotFull: bs.HotFull,
	}
	for i, o := range a.outputs {
		st.Outputs[i] = o.Status()
		a.outParts[i].overlay(&st.Outputs[i])
		for _, c := range bs.Cursors {
			if c.Name == o.Name() {
				st.Outputs[i].Backlog = int(c.Backlog)
				st.Outputs[i].Dropped = c.Dropped
				if c.Backlog > 0 {
					st.Outputs[i].OldestUnsent = c.OldestUnsent
				}
			}
		}
	}
	if a.mqttIn != nil {
		in := publish.Status{Name: "mqtt", URL: a.mqttIn.URL(), State: "disconnected"}
		if a.mqttIn.Connected() {
			in.State, in.Connected = "connected", true
		}
		a.inPart.overlay(&in)
		st.Inputs = []publish.Status{in}
	}
	return st
}

// Run runs a prepared agent until ctx is done; see the package function Run.
func (a *Agent) Run(ctx context.Context, onReady func(*Agent)) error {
	log := a.log
	log.Info("kelvin starting", "version", Version(), "agent", a.cfg.Agent.ID, "config", a.cfg.File,
		"sensors", len(a.runners), "outputs", len(a.outputs), "http", a.cfg.HTTP.Listen, "data_dir", a.cfg.Agent.DataDir, "cpus", runtime.GOMAXPROCS(0))

	// Outputs and the page live until after the sensors stopped, so that
	// the last readings still get out. Each output and the input run and
	// fail alone: a failure is logged at once, shown, and restarted.
	a.connect() // unless start did
	defer a.stopOutputs()
	srcs := make([]publish.Source, len(a.outputs))
	for i, o := range a.outputs {
		src, err := a.store.Source(o.Name())
		if err != nil {
			a.stopConnections()
			return err
		}
		srcs[i] = correctingSource{src, a.clock}
	}

	// The sensors first: on a single core the goroutines started here run
	// in this order, and the first reading is what a start waits for.
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	for _, g := range a.groups {
		g.start(readCtx)
	}
	var readers sync.WaitGroup
	start := a.now() // one grid for all: see runner.run
	for _, r := range a.runners {
		if sensorTypes[r.cfg.Type].pushed != notPushed {
			continue // devices push its readings: POST /api/ingest
		}
		if r.led {
			continue // its group's leader reads for it
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			r.run(readCtx, start)
		}()
	}

	for i, o := range a.outputs {
		olog := log.With("output", o.Name())
		a.goPart(a.outParts[i], func(ctx context.Context) error {
			return publish.Forward(ctx, srcs[i], o, publish.ForwardOptions{}, olog)
		}, olog)
	}
	if a.mqttIn != nil {
		a.goPart(a.inPart, a.mqttIn.Run, log.With("input", "mqtt"))
	}
	// A fleet that forwards is a source of readings: it stops with the
	// sensors, before the buffer syncs. One that does not lives as long
	// as the outputs.
	fleetCtx, stopFleet := a.outCtx, func() {}
	var fleetDone sync.WaitGroup
	if a.fleet != nil {
		if a.cfg.Fleet.Forward {
			fleetCtx, stopFleet = context.WithCancel(a.outCtx)
			defer stopFleet()
		}
		fleetDone.Go(func() { a.runFleet(fleetCtx) })
	}
	var uiErr chan error // nil (never ready) without a page
	uiCtx, stopUI := context.WithCancel(context.WithoutCancel(ctx))
	defer stopUI()
	if a.ui != nil {
		uiErr = make(chan error, 1)
		go func() { uiErr <- a.ui.Run(uiCtx) }()
	}
	notify := newNotifier(log)
	notify.send("READY=1")
	go notify.watchdog(readCtx, start, a.now, watchdogInterval(), a.healthy)
	if onReady != nil {
		onReady(a)
	}

	// Wait for the end: a signal, or the page failing to start.
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-uiErr:
		runErr = err
		uiErr <- nil
	}
	log.Info("kelvin stopping")
	if a.reloading.Load() {
		notify.send("RELOADING=1") // the next agent's READY=1 ends it
	} else {
		notify.send("STOPPING=1")
	}
	stopReading()
	readers.Wait()
	for _, g := range a.groups {
		g.wait() // a bulk read ends before its bus is closed
		g.close()
	}
	stopFleet()
	if a.cfg.Fleet != nil && a.cfg.Fleet.Forward {
		fleetDone.Wait()
	}
	if err := a.store.Flush(); err != nil {
		log.Error("store flush failed", "err", err)
	}
	a.drain(shutdownDrain)
	a.stopConnections()
	fleetDone.Wait()
	for _, o := range a.outputs {
		closeOutput(o)
	}
	if err := a.buses.Close(); err != nil {
		log.Warn("closing I²C buses", "err", err)
	}
	if err := a.store.Close(); err != nil {
		log.Error("store close failed", "err", err)
	}
	if a.archive != nil {
		if err := a.archive.Close(); err != nil {
			log.Warn("closing the history archive", "err", err)
		}
	}
	stopUI()
	if uiErr != nil {
		if err := <-uiErr; err != nil && runErr == nil {
			runErr = err
		}
	}
	log.Info("kelvin stopped")
	return runErr
}

// connect starts, once, the connection of every output that keeps one
// (outputRunner), each supervised: a failure is logged at once, shown, and
// restarted. Run calls it; start calls it earlier, once the buffer is
// locked.
func (a *Agent) connect() {
	if a.outCtx != nil {
		return
	}
	a.outCtx, a.stopOutputs = context.WithCancel(context.Background())
	for i, o := range a.outputs {
		if r, ok := o.(outputRunner); ok {
			a.goPart(a.outParts[i], r.Run, a.log.With("output", o.Name()))
		}
	}
}

// goPart runs fn supervised as part p until the outputs stop.
func (a *Agent) goPart(p *part, fn func(context.Context) error, log *slog.Logger) {
	a.outWG.Go(func() { supervise(a.outCtx, p, fn, log) })
}

// stopConnections stops the outputs' connections and forwarders and waits
// for them (an MQTT output says "offline" and disconnects).
func (a *Agent) stopConnections() {
	a.stopOutputs()
	a.outWG.Wait()
}

// healthy reports whether every sensor's read loop is making progress.
func (a *Agent) healthy() bool {
	now := a.now()
	for _, r := range a.runners {
		if !r.alive(now) {
			return false
		}
	}
	return true
}

// drain waits up to d for the outputs to send their backlog.
func (a *Agent) drain(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		pending := 0
		for _, o := range a.outputs {
			if o.Status().Connected {
				pending += a.store.Backlog(o.Name())
			}
		}
		if pending == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pageURL is the address of the page for other devices on the LAN, as
// Home Assistant links to it: the listen host when it names one, else this
// machine's name; empty without a page.
func pageURL(h httpui.Config) string {
	if h.Listen == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(h.Listen)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		name, err := os.Hostname()
		if err != nil {
			return ""
		}
		host = name
	}
	scheme := "http"
	if h.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
}
