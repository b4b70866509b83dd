package agent

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/reading"
)

// identity is what a consumer de-duplicates on.
type identity struct {
	agent, sensor string
	seq           uint64
}

// gatewayPublisher publishes Kelvin-format readings to a broker as
// gateways would, at QoS 1.
type gatewayPublisher struct {
	t  *testing.T
	pc paho.Client
}

func newGatewayPublisher(t *testing.T, url string) *gatewayPublisher {
	t.Helper()
	pc := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("test-gateways").SetAutoReconnect(false))
	if tok := pc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { pc.Disconnect(50) })
	return &gatewayPublisher{t: t, pc: pc}
}

// value is the value a test gateway gives reading seq of agent/sensor.
func value(agent, sensor string, seq uint64) float64 {
	return float64(len(agent)+len(sensor)) + float64(seq)/4
}

// send publishes seqs from..to of agent/sensor, one reading a message.
func (g *gatewayPublisher) send(agent, sensor string, from, to uint64) {
	g.t.Helper()
	for seq := from; seq <= to; seq++ {
		v := value(agent, sensor, seq)
		r := reading.Reading{Agent: agent, Sensor: sensor, Quantity: reading.Temperature, Unit: "°C",
			Value: v, Raw: v, Time: wallclock.Now().Add(time.Duration(seq) * time.Millisecond), Seq: seq}
		g.publish("kelvin/"+agent+"/"+sensor, reading.FormatJSON.Append(nil, &r))
	}
}

func (g *gatewayPublisher) publish(topic string, payload []byte) {
	g.t.Helper()
	if tok := g.pc.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		g.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// TestFleetForwardHomeAssistant: a fleet follows one broker and forwards
// to another with mqtt.homeassistant: each gateway's readings arrive there
// under the gateway's own agent, announced to Home Assistant before the
// first of them, and the gateway's state (from its status and last will
// on the followed broker) and restart announcement are mirrored there.
func TestFleetForwardHomeAssistant(t *testing.T) {
	in, out := testenv.StartMosquitto(t), testenv.StartMosquitto(t)
	dir := t.TempDir()
	a := startAgent(t, fmt.Sprintf(`
agent: { id: fleet, data_dir: %s, clock: trust }
fleet:
  mqtt: { url: %q }
  forward: true
buffer: { hot_dir: %s }
mqtt: { url: %q, homeassistant: true }
http: { listen: "127.0.0.1:%d" }
`, filepath.Join(dir, "data"), in.URL, filepath.Join(dir, "hot"), out.URL, testenv.FreePort(t)))
	testenv.WaitFor(t, "the fleet to subscribe", func() bool { return a.fleet.Summary("", 0, 1).Sources["mqtt"] })
	configs := subscribe(t, out.URL, "homeassistant/sensor/+/+/config")
	states := subscribe(t, out.URL, "kelvin/+/status")
	readings := subscribe(t, out.URL, "kelvin/gw-1/air/temperature")

	gw := newGatewayPublisher(t, in.URL)
	if tok := gw.pc.Publish("kelvin/gw-1/status", 1, true, "online"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	gw.send("gw-1", "air", 1, 5)
	gw.send("gw-1", "air", 3, 5) // duplicates
	testenv.WaitFor(t, "the readings on the other broker", func() bool { return len(readings.get("kelvin/gw-1/air/temperature")) >= 5 })
	var seqs []uint64
	for _, p := range readings.get("kelvin/gw-1/air/temperature") {
		var r reading.Reading
		if err := json.Unmarshal([]byte(p), &r); err != nil || r.Agent != "gw-1" || r.Value != value("gw-1", "air", r.Seq) {
			t.Fatalf("forwarded %s: %v", p, err)
		}
		seqs = append(seqs, r.Seq)
	}
	if !slices.Equal(seqs, []uint64{1, 2, 3, 4, 5}) {
		t.Errorf("seqs %v, want 1 to 5 once each", seqs)
	}
	// Published before the first reading, but to another subscriber:
	// the broker's deliveries to two clients are not ordered.
	var cf []string
	testenv.WaitFor(t, "gw-1's discovery config", func() bool {
		cf = configs.get("homeassistant/sensor/kelvin_gw-1_via_fleet/air_temperature/config")
		return len(cf) > 0
	})
	if len(cf) != 1 {
		t.Fatalf("discovery configs %v", cf)
	}
	var d struct {
		UniqueID     string `json:"unique_id"`
		StateTopic   string `json:"state_topic"`
		Availability []struct{ Topic string }
		Device       struct{ Identifiers []string }
	}
	if err := json.Unmarshal([]byte(cf[0]), &d); err != nil {
		t.Fatal(err)
	}
	if d.UniqueID != "kelvin_gw-1_via_fleet_air_temperature" || d.StateTopic != "kelvin/gw-1/air/temperature" ||
		len(d.Availability) != 2 || d.Availability[0].Topic != "kelvin/gw-1/status" || d.Availability[1].Topic != "kelvin/fleet/status" ||
		!slices.Equal(d.Device.Identifiers, []string{"kelvin_gw-1_via_fleet"}) {
		t.Errorf("discovery %s", cf[0])
	}
	testenv.WaitFor(t, "gw-1 online, mirrored", func() bool {
		s := states.get("kelvin/gw-1/status")
		return len(s) > 0 && s[len(s)-1] == "online"
	})

	// Its restart announcement, mirrored as it came.
	restart := `{"started":"2026-12-04T22:00:00Z","seq_resume":{"air":65537}}`
	restarts := subscribe(t, out.URL, "kelvin/gw-1/restart")
	if tok := gw.pc.Publish("kelvin/gw-1/restart", 1, true, restart); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	testenv.WaitFor(t, "gw-1's restart announcement, mirrored", func() bool {
		r := restarts.get("kelvin/gw-1/restart")
		return len(r) > 0 && r[len(r)-1] == restart
	})

	// The gateway goes away: its last will says offline on the followed
	// broker, and so does the mirror.
	if tok := gw.pc.Publish("kelvin/gw-1/status", 1, true, "offline"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	testenv.WaitFor(t, "gw-1 offline, mirrored", func() bool {
		s := states.get("kelvin/gw-1/status")
		return len(s) > 0 && s[len(s)-1] == "offline"
	})
}
