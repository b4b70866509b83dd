package agent

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/kelvin-gw/kelvin/archive"
	"github.com/kelvin-gw/kelvin/fleet"
)

// FleetConfig is the fleet section: the fleet package's config, plus
// filter chains for fleet series by gateway/sensor pattern, decoded like a
// sensor's filters.
type FleetConfig struct {
	fleet.Config `yaml:",inline"`
	Filters      []FleetFilter `yaml:"filters"`
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
	h := f.Handler()
	for _, p := range fleet.Patterns {
		a.ui.Mount(p, h)
	}
	a.ui.AddMetrics(f.WriteMetrics)
	a.fleet = f
	return nil
}

// runFleet follows the fleet until ctx is done. A fleet that fails is
// logged and degrades the page; it never stops the agent's own outputs.
func (a *Agent) runFleet(ctx context.Context) {
	if err := a.fleet.Run(ctx); err != nil {
		a.log.Error("fleet stopped", "err", err)
	}
}
