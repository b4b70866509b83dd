package agent

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/kelvin-gw/kelvin/archive"
	"github.com/kelvin-gw/kelvin/fleet"
	"github.com/kelvin-gw/kelvin/reading"
)

// FleetConfig is the fleet section: the fleet package's config, plus
// filter chains for fleet series by gateway/sensor pattern, decoded like a
// sensor's filters, and whether the fleet's readings are forwarded.
type FleetConfig struct {
	fleet.Config `yaml:",inline"`
	Filters      []FleetFilter `yaml:"filters"`
	// Forward sends every distinct reading the fleet takes (duplicates
	// dropped), as its gateway sent it and with its (agent, sensor, seq),
	// through the durable buffer to this agent's outputs (mqtt, kafka).
	// Default false.
	Forward bool `yaml:"forward"`
}

// FleetFilter is one fleet.filters entry: the chain of the series whose
// AGENT/SENSOR matches Match.
type FleetFilter struct {
	Match   string  `yaml:"match"`
	Filters Filters `yaml:"filters"`
}

// setFleetDefaults fills the fleet section's defaults and its rules.
func (c *Config) setFleetDefaults() {
	f := c.Fleet
	if f == nil {
		return
	}
	f.SetDefaults(c.Agent.ID)
	f.Rules = nil
	for _, r := range f.Filters {
		f.Rules = append(f.Rules, fleet.Rule{Match: r.Match, Specs: r.Filters.All})
	}
}

func (v *validator) validateFleet() {
	f := v.cfg.Fleet
	if f == nil {
		return
	}
	for _, err := range f.Validate() {
		v.prefixed("fleet", err)
	}
	for i, r := range f.Filters {
		if r.Filters.ByQuantity != nil {
			v.errorf(fmt.Sprintf("fleet.filters[%d].filters", i), "want a list of filters: a fleet rule applies to every quantity it matches")
		}
	}
	if m := f.MQTT; m != nil {
		v.checkFile("fleet.mqtt.password_file", m.PasswordFile)
	}
	if v.cfg.HTTP.Listen == "" {
		v.errorf("fleet", "the fleet is shown on the page: set http.listen")
	}
	v.validateForward()
}

// validateForward checks fleet.forward: there are outputs to forward to,
// topics that keep gateways apart, and no output that feeds the fleet's
// own sources (the broker and topics it follows, the Kafka topic it reads).
func (v *validator) validateForward() {
	c, f := v.cfg, v.cfg.Fleet
	if !f.Forward {
		return
	}
	if c.MQTT == nil && c.Kafka == nil {
		v.errorf("fleet.forward", "forwards the fleet's readings to the outputs: configure mqtt: or kafka: (or leave forward out)")
		return
	}
	if m := c.MQTT; m != nil && m.Topic != "" {
		if !strings.Contains(m.Topic, "{agent}") {
			v.errorf("mqtt.topic", "%q must contain {agent} when fleet.forward is on: every gateway's sensors would share topics", m.Topic)
		}
		pattern := m.Topic
		if !strings.Contains(pattern, "{quantity}") {
			pattern += "/{quantity}" // forwarded readings always name it
		}
		if fm := f.MQTT; fm != nil && sameBroker(fm.URL, m.URL) {
			for i, filter := range fm.Topics {
				if topicsOverlap(filter, pattern) {
					v.errorf("fleet.forward", "would feed the fleet its own readings: mqtt.topic %q publishes them on the broker the fleet follows, under fleet.mqtt.topics[%d] %q; "+
						"set mqtt.topic outside it (e.g. fleet/{agent}/{sensor}) or forward to another broker", m.Topic, i, filter)
					break
				}
			}
		}
	}
	if k, fk := c.Kafka, f.Kafka; k != nil && fk != nil && k.Topic != "" && slices.ContainsFunc(k.Brokers, func(b string) bool {
		return slices.ContainsFunc(fk.Brokers, func(fb string) bool { return sameHostPort(b, fb) })
	}) && templateMatches(k.Topic, fk.Topic) {
		v.errorf("fleet.forward", "would feed the fleet its own readings: kafka.topic %q produces them to the topic the fleet reads (fleet.kafka.topic %q) on the same cluster; "+
			"set another kafka.topic (e.g. kelvin.fleet) or forward to another cluster", k.Topic, fk.Topic)
	}
}

// sameBroker reports whether two MQTT broker URLs (already checked) name
// the same host and port; the loopback names count as one host.
func sameBroker(a, b string) bool {
	hp := func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil {
			return raw
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"tcp": "1883", "mqtt": "1883", "ssl": "8883", "tls": "8883", "mqtts": "8883", "ws": "80", "wss": "443"}[u.Scheme]
		}
		return net.JoinHostPort(u.Hostname(), port)
	}
	return sameHostPort(hp(a), hp(b))
}

// sameHostPort compares host:port addresses, the loopback names as one.
func sameHostPort(a, b string) bool {
	norm := func(s string) string {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return strings.ToLower(s)
		}
		host = strings.ToLower(host)
		if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
			host = "localhost"
		}
		return host + ":" + port
	}
	return norm(a) == norm(b)
}

// topicsOverlap reports whether some topic published under pattern (a
// topic template whose placeholders fill one level each) can match the
// subscription filter.
func topicsOverlap(filter, pattern string) bool {
	fl, pl := strings.Split(filter, "/"), strings.Split(pattern, "/")
	for i, f := range fl {
		switch {
		case f == "#":
			return true
		case i >= len(pl):
			return false
		case f == "+" || strings.Contains(pl[i], "{"):
		case f != pl[i]:
			return false
		}
	}
	return len(fl) == len(pl)
}

// templateMatches reports whether a Kafka topic template (placeholders
// fill any non-empty text) can name topic.
func templateMatches(tmpl, topic string) bool {
	re := regexp.QuoteMeta(tmpl)
	for _, p := range []string{"{agent}", "{sensor}", "{quantity}"} {
		re = strings.ReplaceAll(re, regexp.QuoteMeta(p), ".+")
	}
	ok, _ := regexp.MatchString("^"+re+"$", topic)
	return ok
}

// newFleet prepares the fleet view and mounts it on the page; it runs in
// Run, which closes its archive.
func (a *Agent) newFleet(undo *closers) error {
	if a.cfg.Fleet == nil || a.ui == nil {
		return nil
	}
	f, err := fleet.New(a.cfg.Fleet.Config, a.now, a.log.With("component", "fleet"))
	if err != nil {
		return err
	}
	if keep := a.cfg.Fleet.Archive; keep > 0 {
		arch, err := archive.Open(filepath.Join(a.cfg.Agent.DataDir, "fleet-history"),
			archive.Options{Keep: keep, FlushEvery: a.cfg.HTTP.ArchiveFlush, Now: a.now, Log: a.log.With("component", "fleet-history")})
		if err != nil {
			return err
		}
		undo.add(func() { arch.Close() })
		f.SetArchive(arch) // closed by the fleet's Run
	}
	if a.cfg.Fleet.Forward {
		f.SetForward(a.forwardFleet)
		// A broker other than the one the fleet follows gets the
		// gateways' status and restart announcements too, for Home
		// Assistant's availability and other fleets.
		// A Kafka output carries the restart announcements on as headers
		// of the readings they concern.
		var restarts []func(agent string, payload []byte)
		for _, o := range a.outputs {
			switch m := o.(type) {
			case gatewayMirror:
				if a.cfg.Fleet.MQTT == nil || !sameBroker(a.cfg.Fleet.MQTT.URL, a.cfg.MQTT.URL) {
					f.SetStateHook(func(agent, state string) { m.MirrorGatewayState(agent, mirroredState(state)) })
					restarts = append(restarts, m.MirrorGatewayRestart)
				}
			case restartMirror:
				restarts = append(restarts, m.MirrorGatewayRestart)
			}
		}
		if len(restarts) > 0 {
			f.SetRestartHook(func(agent string, payload []byte) {
				for _, fn := range restarts {
					fn(agent, payload)
				}
			})
		}
	}
	h := f.Handler()
	for _, p := range fleet.Patterns {
		a.ui.Mount(p, h)
	}
	a.ui.AddMetrics(f.WriteMetrics)
	a.fleet = f
	return nil
}

// gatewayMirror is an output that republishes gateways' retained
// messages (the MQTT output).
type gatewayMirror interface {
	MirrorGatewayState(agent, state string)
	MirrorGatewayRestart(agent string, payload []byte)
}

// restartMirror is an output that carries gateways' restart
// announcements on with their readings (the Kafka output).
type restartMirror interface {
	MirrorGatewayRestart(agent string, payload []byte)
}

// forwardFleet stores the fleet's new readings in the buffer with their
// own (agent, sensor, seq), for the outputs; readings of this agent itself
// (the fleet following the broker this agent publishes to) are stored
// already and left out. A refusal (a full buffer) is counted and logged
// like a sensor's.
func (a *Agent) forwardFleet(rs []reading.Reading) {
	own := a.cfg.Agent.ID
	rs = slices.DeleteFunc(rs, func(r reading.Reading) bool { return r.Agent == own })
	if len(rs) == 0 {
		return
	}
	if err := a.store.AppendForwarded(rs); err != nil {
		a.refusals.refused(len(rs), err)
		return
	}
	a.refusals.stored()
}

// runFleet follows the fleet until ctx is done. A fleet that fails is
// logged and degrades the page; it never stops the agent's own outputs.
func (a *Agent) runFleet(ctx context.Context) {
	if err := a.fleet.Run(ctx); err != nil {
		a.log.Error("fleet stopped", "err", err)
	}
}

// mirroredState is the status a forwarding fleet publishes for a
// gateway's state: a silent one as offline, for Home Assistant's
// availability and other fleets know online and offline only (and a
// fleet downstream hears nothing from it either).
func mirroredState(state string) string {
	if state == "silent" {
		return "offline"
	}
	return state
}
