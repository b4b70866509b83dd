package fleet

import (
	"slices"
	"testing"

	"github.com/kelvin-gw/kelvin/filter"
	"github.com/kelvin-gw/kelvin/reading"
)

// TestForward: the fleet forwards every distinct reading once, as the
// gateway sent it (its filters shape only what the fleet shows), a
// message's readings in one call; duplicates and readings over its bounds
// are not forwarded. Gateways' state changes and restart announcements
// (a status's skip among them) reach their hooks.
func TestForward(t *testing.T) {
	f, c := newTestFleet(t, func(c *Config) {
		c.MaxGateways = 2
		c.Rules = []Rule{{Match: "*/*", Specs: []filter.Spec{{Kind: "offset", Offset: 10}}}}
	})
	var calls [][]reading.Reading
	f.SetForward(func(rs []reading.Reading) { calls = append(calls, slices.Clone(rs)) })
	var states, restarts []string
	f.SetStateHook(func(agent, state string) { states = append(states, agent+" "+state) })
	f.SetRestartHook(func(agent string, p []byte) { restarts = append(restarts, agent+" "+string(p)) })

	ts := c.now()
	f.Handle("kelvin/gw-1/status", []byte("online"))
	for _, seq := range []uint64{1, 2, 2, 4, 1, 3} { // duplicates, and 3 filling a gap late
		f.Handle("kelvin/gw-1/air", payload(reading.FormatJSON, "gw-1", "air", seq, float64(seq), ts))
	}
	// One message with two readings, one of them a duplicate.
	batch := append(payload(reading.FormatInflux, "gw-1", "air", 5, 5, ts), '\n')
	batch = append(batch, payload(reading.FormatInflux, "gw-1", "air", 4, 4, ts)...)
	if err := f.Handle("kelvin/gw-1/air", batch); err != nil {
		t.Fatal(err)
	}
	f.Handle("kelvin/gw-2/tank", payload(reading.FormatJSON, "gw-2", "tank", 9, 9, ts))
	f.Handle("kelvin/gw-3/tank", payload(reading.FormatJSON, "gw-3", "tank", 1, 1, ts)) // over max_gateways
	f.Handle("kelvin/gw-1/status", []byte("offline"))
	f.Handle("kelvin/gw-2/restart", []byte(`{"started":"2026-12-04T22:00:00Z","seq_resume":{"tank":65537}}`))
	// A status's skip is handed on as a restart announcement with its range,
	// once.
	f.Handle("kelvin/gw-2/status", []byte(`{"state":"online","skip":{"tank":[10,99]}}`))
	f.Handle("kelvin/gw-2/status", []byte(`{"state":"online","skip":{"tank":[10,99]}}`))

	var seqs []uint64
	for _, rs := range calls {
		for _, r := range rs {
			if r.Value != float64(r.Seq) || r.Raw != float64(r.Seq) {
				t.Errorf("%s/%s seq %d forwarded with value %v raw %v, want the gateway's %d", r.Agent, r.Sensor, r.Seq, r.Value, r.Raw, r.Seq)
			}
			if r.Agent == "gw-1" {
				seqs = append(seqs, r.Seq)
			}
		}
	}
	if !slices.Equal(seqs, []uint64{1, 2, 4, 3, 5}) {
		t.Errorf("gw-1 forwarded %v, want 1 2 4 3 5 (each once, as they came)", seqs)
	}
	if len(calls) != 6 || len(calls[4]) != 1 || calls[5][0].Agent != "gw-2" {
		t.Errorf("forward calls %v, want one per message with a new reading", calls)
	}
	if want := []string{"gw-1 online", "gw-2 online", "gw-1 offline"}; !slices.Equal(states, want) {
		t.Errorf("states %q, want %q", states, want)
	}
	if want := []string{`gw-2 {"started":"2026-12-04T22:00:00Z","seq_resume":{"tank":65537}}`,
		`gw-2 {"seq_resume":{"tank":100},"skip_from":{"tank":10}}`}; !slices.Equal(restarts, want) {
		t.Errorf("restarts %q, want %q", restarts, want)
	}
	// The page shows the fleet's filtered values.
	if _, ss, _ := f.Gateway("gw-1", true); ss[0].Series[0].Points[0][1] != 11 {
		t.Errorf("shown %v, want the fleet's filter applied", ss[0].Series[0].Points[0])
	}
}
