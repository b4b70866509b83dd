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
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kelvin-gw/kelvin/ingest"

	"golang.org/x/sync/errgroup"

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
	Now     func() time.Time // default time.Now
	LogOut  io.Writer        // default os.Stderr
	Log     *slog.Logger     // overrides LogOut and the config's log settings
	OnReady func(*Agent)     // called once everything is started
	Clock   *Clock           // default: SystemClock, or TrustedClock with agent.clock: trust
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
	archive *httpui.Archive // nil without a page
	clock   *Clock
	mqttIn  *ingest.Subscriber // nil without type: mqtt sensors
	buses   *hw.Buses

	reloading atomic.Bool // stopping to restart on a new config (SIGHUP)
}

// outputRunner is implemented by outputs with a connection to keep up.
type outputRunner interface {
	Run(ctx context.Context) error
}

// shutdownDrain bounds how long outputs get to send what is left after the
// sensors stopped.
const shutdownDrain = 2 * time.Second

// Run runs the agent with cfg until ctx is done, then shuts down in order:
// sensors stop, the store syncs, outputs get one bounded last flush and say
// goodbye, the page closes. It returns nil after a clean shutdown and an
// error when something could not start (a port in use, an unwritable data
// directory).
func Run(ctx context.Context, cfg *Config, opts Options) error {
	a, err := New(cfg, opts)
	if err != nil {
		return err
	}
	return a.Run(ctx, opts.OnReady)
}

// New prepares an agent: it creates the data directory, opens the store and
// the outputs (which do not connect yet) and the sensor readers (which do not
// touch hardware yet).
func New(cfg *Config, opts Options) (*Agent, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	log := opts.Log
	if log == nil {
		out := opts.LogOut
		if out == nil {
			out = os.Stderr
		}
		log = newLogger(out, cfg.Log)
	}
	a := &Agent{cfg: cfg, log: log, now: now, started: now(), clock: opts.Clock, byID: map[string]*runner{}}
	if a.clock == nil {
		a.clock = SystemClock()
		if cfg.Agent.Clock == "trust" {
			a.clock = TrustedClock()
		}
	}
	if err := os.MkdirAll(cfg.Agent.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("agent: data_dir: %w", err)
	}
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
		m, err := mqtt.New(mc, cfg.Agent.ID, log.With("output", "mqtt"))
		if err != nil {
			return nil, err
		}
		a.outputs = append(a.outputs, m)
	}
	if cfg.Kafka != nil {
		k, err := kafka.New(*cfg.Kafka, cfg.Agent.ID, log.With("output", "kafka"))
		if err != nil {
			return nil, err
		}
		a.outputs = append(a.outputs, k)
	}
	names := make([]string, len(a.outputs))
	for i, o := range a.outputs {
		names[i] = o.Name()
	}
	st, err := openStore(cfg, names, now, log.With("component", "buffer"))
	if err != nil {
		return nil, err
	}
	a.store = st
	// Say where seqs resume, so a consumer tells a restart's gap from a loss.
	resumed := st.Resumed()
	for _, o := range a.outputs {
		if r, ok := o.(interface {
			AnnounceRestart(time.Time, map[string]uint64)
		}); ok {
			r.AnnounceRestart(a.started, resumed)
		}
	}
	if len(resumed) > 0 {
		log.Info("seqs resume after their reservation: the previous run did not stop cleanly", "sensors", len(resumed))
	}
	if cfg.HTTP.Listen != "" {
		if err := cfg.HTTP.LoadSecrets(); err != nil {
			st.Close()
			return nil, err
		}
		a.ui = httpui.New(cfg.HTTP, a.Status, now, log.With("component", "httpui"))
		arch, err := httpui.OpenArchive(filepath.Join(cfg.Agent.DataDir, "history"), cfg.HTTP.Archive, log.With("component", "history"))
		if err != nil {
			st.Close()
			return nil, err
		}
		a.archive = arch
		a.ui.SetArchive(arch)
		for i := range cfg.Sensors {
			if cfg.Sensors[i].Type == "http" {
				a.ui.SetIngest(a.Ingest)
				break
			}
		}
	}
	a.buses = hw.NewBuses()
	e := &env{cfg: cfg, now: now, buses: a.buses}
	// Sensors on one bus share a bulk read: behind a DS2482, those with one
	// interval; on the kernel's driver, all of them (see groupKey).
	members := map[string][]*SensorConfig{}
	for i := range cfg.Sensors {
		s := &cfg.Sensors[i]
		if t := sensorTypes[s.Type]; t.groupKey != nil {
			if k := t.groupKey(s); k != "" {
				members[k] = append(members[k], s)
			}
		}
	}
	groups := map[string]*group{}
	for k, ms := range members {
		if len(ms) < 2 && ms[0].Bus == "" {
			continue // one kernel 1-Wire device: nothing to share, it reads on its own
		}
		t := sensorTypes[ms[0].Type]
		interval := ms[0].Interval
		for _, m := range ms[1:] {
			interval = min(interval, m.Interval)
		}
		groups[k] = &group{open: func() (sensors.Sensor, error) { return t.openGroup(e, ms) }, interval: interval, now: now}
	}
	for i := range cfg.Sensors {
		s := &cfg.Sensors[i]
		t := sensorTypes[s.Type]
		open := func() (sensors.Sensor, error) { return t.open(e, s) }
		if t.groupKey != nil {
			if g := groups[t.groupKey(s)]; g != nil {
				open = func() (sensors.Sensor, error) { return &member{g: g, device: s.Address}, nil }
			}
		}
		r, err := newRunner(s, open, a.accept, now, log)
		if err != nil {
			a.store.Close()
			if a.archive != nil {
				a.archive.Close()
			}
			return nil, err
		}
		a.runners = append(a.runners, r)
		a.byID[s.ID] = r
	}
	if err := a.newMQTTIn(); err != nil {
		a.store.Close()
		if a.archive != nil {
			a.archive.Close()
		}
		return nil, err
	}
	return a, nil
}

// newMQTTIn prepares the subscriber of the type: mqtt sensors.
func (a *Agent) newMQTTIn() error {
	cfg := a.cfg
	var subs []ingest.Subscription
	for i := range cfg.Sensors {
		s := &cfg.Sensors[i]
		if s.Type == "mqtt" {
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
	if pwFile != "" {
		b, err := os.ReadFile(pwFile)
		if err != nil {
			return fmt.Errorf("mqtt_in: password_file: %w", err)
		}
		sc.Password = strings.TrimRight(string(b), "\r\n")
	}
	deliver := func(ctx context.Context, items []ingest.Item) error {
		_, err := a.ingest(ctx, items, "mqtt", false)
		return err
	}
	fail := func(sensor string, err error) {
		if r := a.byID[sensor]; r != nil {
			r.fail(err)
		}
	}
	a.mqttIn = ingest.NewSubscriber(sc, subs, deliver, fail, a.log.With("input", "mqtt"))
	return nil
}

// accept takes the filtered readings of one read into the store and onto the
// page. The store assigns seq.
func (a *Agent) accept(rs []reading.Reading) {
	for i := range rs {
		rs[i].Agent = a.cfg.Agent.ID
	}
	a.clock.mark(rs)
	err := a.store.Append(rs)
	a.store.noteAppend(a.log, len(rs), err)
	if err != nil {
		return
	}
	if a.ui != nil {
		for _, r := range rs {
			a.ui.Publish(r)
		}
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
		Fsyncs: bs.Fsyncs, BytesWritten: bs.BytesWritten,
		OnDisk: bs.OnDisk, HotTail: bs.Hot != "", DiskFull: bs.DiskFull,
	}
	for i, o := range a.outputs {
		st.Outputs[i] = o.Status()
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
	return st
}

// Run runs a prepared agent until ctx is done; see the package function Run.
func (a *Agent) Run(ctx context.Context, onReady func(*Agent)) error {
	log := a.log
	log.Info("kelvin starting", "version", Version(), "agent", a.cfg.Agent.ID, "config", a.cfg.File,
		"sensors", len(a.runners), "outputs", len(a.outputs), "http", a.cfg.HTTP.Listen, "data_dir", a.cfg.Agent.DataDir)

	// Outputs and the page live until after the sensors stopped, so that
	// the last readings still get out.
	outCtx, stopOutputs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopOutputs()
	outputs, outCtx := errgroup.WithContext(outCtx)
	for _, o := range a.outputs {
		if r, ok := o.(outputRunner); ok {
			outputs.Go(func() error { return r.Run(outCtx) })
		}
		src, err := a.store.Source(o.Name())
		if err != nil {
			stopOutputs()
			return err
		}
		src = correctingSource{src, a.clock}
		outputs.Go(func() error {
			return publish.Forward(outCtx, src, o, publish.ForwardOptions{}, log.With("output", o.Name()))
		})
	}
	if a.mqttIn != nil {
		outputs.Go(func() error { return a.mqttIn.Run(outCtx) })
	}
	var uiErr chan error // nil (never ready) without a page
	uiCtx, stopUI := context.WithCancel(context.WithoutCancel(ctx))
	defer stopUI()
	if a.ui != nil {
		uiErr = make(chan error, 1)
		go func() { uiErr <- a.ui.Run(uiCtx) }()
	}

	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	var readers sync.WaitGroup
	for _, r := range a.runners {
		if sensorTypes[r.cfg.Type].pushed {
			continue // devices push its readings: POST /api/ingest
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			r.run(readCtx)
		}()
	}
	notify := newNotifier(log)
	notify.send("READY=1")
	go notify.watchdog(readCtx, watchdogInterval(), a.healthy)
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
	if err := a.store.Flush(); err != nil {
		log.Error("store flush failed", "err", err)
	}
	a.drain(shutdownDrain)
	stopOutputs()
	if err := outputs.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("output stopped with an error", "err", err)
	}
	for _, o := range a.outputs {
		if c, ok := o.(interface{ Close() }); ok {
			c.Close()
		}
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
