package fleet

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
)

// stateLog records what the state hook was told, in order.
type stateLog struct {
	mu  sync.Mutex
	got []string
}

func (l *stateLog) hook(agent, state string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, agent+"="+state)
}

func (l *stateLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.got, " ")
}

// every sends n readings of agent's sensor, one each interval, the clock
// moving on between them; the last one is sent at the clock's time.
func every(t *testing.T, f *Fleet, c *clock, agent string, seq *uint64, n int, interval time.Duration) {
	t.Helper()
	for i := range n {
		if i > 0 {
			c.advance(interval)
		}
		*seq++
		if err := f.Handle("kelvin/"+agent+"/air", payload(reading.FormatJSON, agent, "air", *seq, 20, c.now())); err != nil {
			t.Fatal(err)
		}
	}
}

func stateOf(t testing.TB, f *Fleet, agent string) GatewayInfo {
	t.Helper()
	gi, _, ok := f.Gateway(agent, false)
	if !ok {
		t.Fatalf("%s unknown", agent)
	}
	return gi
}

// TestSilentGateway: a gateway followed without status messages (over
// Kafka, say) goes silent when nothing is heard from it for three times
// its usual interval, at least a minute: a dead 1 Hz gateway within a
// minute, one reading every 10 minutes not before 30 (fleet.silent_after)
// and so not when one reading is late. It shows everywhere the state
// does, and clears at the next reading.
func TestSilentGateway(t *testing.T) {
	f, c := newTestFleet(t, nil)
	var hook stateLog
	f.SetStateHook(hook.hook)
	var fast, slow uint64
	every(t, f, c, "fast", &fast, 10, time.Second)
	every(t, f, c, "slow", &slow, 4, 10*time.Minute)
	every(t, f, c, "fast", &fast, 10, time.Second) // gaps of 30 min between its polls: one outlier in the median
	if gi := stateOf(t, f, "fast"); gi.SilentAfter != 60 {
		t.Fatalf("fast gateway: silent after %vs, want 60 (3 × 1 s, at least a minute)", gi.SilentAfter)
	}
	if gi := stateOf(t, f, "slow"); gi.SilentAfter != 30*60 {
		t.Fatalf("slow gateway: silent after %vs, want 1800 (3 × 10 min, at most silent_after)", gi.SilentAfter)
	}
	every(t, f, c, "slow", &slow, 1, 0) // its reading of now
	c.advance(59 * time.Second)
	f.Expire()
	if gi := stateOf(t, f, "fast"); gi.State != "online" {
		t.Fatalf("fast after 59 s unheard: %s, want online", gi.State)
	}
	c.advance(time.Second)
	f.Expire()
	f.Expire() // once is enough
	if gi := stateOf(t, f, "fast"); gi.State != "silent" {
		t.Fatalf("fast after 60 s unheard: %s, want silent", gi.State)
	}
	if got, want := hook.String(), "fast=online slow=online fast=silent"; got != want {
		t.Fatalf("state hook told %q, want %q", got, want)
	}
	sum := f.Summary("state:silent", 0, 10)
	if sum.Total != 1 || sum.Silent != 1 || sum.Online != 0 || sum.Gateways[0].Agent != "fast" || sum.SilentAfter != 1800 {
		t.Fatalf("state:silent: %+v", sum)
	}
	if sum := f.Summary("", 0, 10); sum.Online != 1 || sum.Silent != 1 {
		t.Fatalf("all: %d online, %d silent, want 1 and 1", sum.Online, sum.Silent)
	}
	var m strings.Builder
	f.WriteMetrics(&m)
	for _, want := range []string{`kelvin_fleet_gateway_up{agent="fast"} 0`, `kelvin_fleet_gateway_up{agent="slow"} 1`} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, m.String())
		}
	}

	// The slow gateway misses a reading (20 min unheard): still online.
	c.advance(20*time.Minute - time.Minute)
	f.Expire()
	if gi := stateOf(t, f, "slow"); gi.State != "online" {
		t.Fatalf("slow after 20 min unheard: %s, want online", gi.State)
	}
	c.advance(10 * time.Minute)
	f.Expire()
	if gi := stateOf(t, f, "slow"); gi.State != "silent" {
		t.Fatalf("slow after 30 min unheard: %s, want silent", gi.State)
	}

	// Anything heard clears it: a reading, or a status.
	every(t, f, c, "fast", &fast, 1, 0)
	f.Handle("kelvin/slow/status", []byte("online"))
	f.Expire()
	if a, b := stateOf(t, f, "fast"), stateOf(t, f, "slow"); a.State != "online" || b.State != "online" {
		t.Fatalf("after hearing from them: %s, %s, want online", a.State, b.State)
	}
	if got, want := hook.String(), "fast=online slow=online fast=silent slow=silent fast=online slow=online"; got != want {
		t.Fatalf("state hook told %q, want %q", got, want)
	}
}

// TestSilentVouched: a gateway whose last MQTT status says online is not
// silent while the MQTT source is connected, however long it publishes no
// reading: its broker would publish its last will. Without the source,
// nothing vouches for it; an offline gateway stays offline.
func TestSilentVouched(t *testing.T) {
	f, c := newTestFleet(t, func(c *Config) { c.SilentAfter = 5 * time.Minute })
	f.setConnected(mqttSourceName, true)
	var seq uint64
	every(t, f, c, "up", &seq, 3, time.Second)
	f.Handle("kelvin/up/status", []byte(`{"state":"online"}`))
	f.Handle("kelvin/down/status", []byte("offline"))
	every(t, f, c, "down", new(uint64), 1, 0) // readings flow: online
	f.Handle("kelvin/down/status", []byte("offline"))
	c.advance(time.Hour)
	f.Expire()
	if a, b := stateOf(t, f, "up"), stateOf(t, f, "down"); a.State != "online" || b.State != "offline" {
		t.Fatalf("an hour on: up %s, down %s; want online, offline", a.State, b.State)
	}
	// A reading does not take the status's word back: the broker
	// still holds its last will.
	every(t, f, c, "up", &seq, 1, 0)
	c.advance(time.Hour)
	f.Expire()
	if gi := stateOf(t, f, "up"); gi.State != "online" {
		t.Fatalf("an hour after a reading: %s, want online", gi.State)
	}
	f.setConnected(mqttSourceName, false)
	every(t, f, c, "up", &seq, 1, 0)
	c.advance(5 * time.Minute)
	f.Expire()
	if a, b := stateOf(t, f, "up"), stateOf(t, f, "down"); a.State != "silent" || b.State != "offline" {
		t.Fatalf("source down 5 min: up %s, down %s; want silent, offline", a.State, b.State)
	}
}

// TestSilentAfterRestart: the silence limit is not saved (the state file
// keeps its format): a restarted fleet gives each gateway it knew
// silent_after from its start before calling it silent; a gateway known
// only by its page is never silent.
func TestSilentAfterRestart(t *testing.T) {
	dir := t.TempDir()
	withState := func(c *Config) { c.StateDir = dir }
	a, ca := newTestFleet(t, withState)
	every(t, a, ca, "gw-1", new(uint64), 5, time.Second)
	a.Handle("homeassistant/sensor/kelvin_gw-2/air_temperature/config",
		[]byte(`{"availability_topic":"kelvin/gw-2/status","device":{"configuration_url":"http://gw-2.lan:8080/"}}`))
	checkpoint(t, a)

	b, cb := newTestFleet(t, withState)
	cb.advance(DefaultSilentAfter - time.Second)
	b.Expire()
	if gi := stateOf(t, b, "gw-1"); gi.State != "unknown" {
		t.Fatalf("just before silent_after from the fleet's start: %s, want unknown", gi.State)
	}
	cb.advance(time.Second)
	b.Expire()
	if a, b := stateOf(t, b, "gw-1"), stateOf(t, b, "gw-2"); a.State != "silent" || b.State != "unknown" {
		t.Fatalf("silent_after from the start: gw-1 %s, gw-2 %s; want silent, unknown", a.State, b.State)
	}
}

// BenchmarkExpireSilence: the once-a-second sweep over 1,000 gateways ×
// 10 sensors at 1 Hz, each sensor with a gap open (not yet lost), each
// gateway's silence limit known (a minute), none silent: what the silence
// check adds to the sweep is one comparison per gateway.
func BenchmarkExpireSilence(b *testing.B) {
	f, c := newTestFleet(b, nil)
	for _, q := range []uint64{1, 2, 5} {
		for g := range 1000 {
			a := fmt.Sprintf("greenhouse-%04d", g)
			for s := range 10 {
				id := fmt.Sprintf("28-0316a2b8%04x", s)
				f.Handle("kelvin/"+a+"/"+id, payload(reading.FormatJSON, a, id, q, 1, c.now()))
			}
		}
		c.advance(time.Second)
	}
	if gi := stateOf(b, f, "greenhouse-0000"); gi.SilentAfter != 60 {
		b.Fatalf("silent after %vs, want 60", gi.SilentAfter)
	}
	b.ReportAllocs()
	for b.Loop() {
		f.Expire()
	}
	if sum := f.Summary("", 0, 0); sum.Online != 1000 {
		b.Fatalf("%d online, want 1000", sum.Online)
	}
}
