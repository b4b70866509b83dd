package mqtt

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

// TestHomeAssistantDiscovery: with mqtt.homeassistant, every sensor
// quantity gets a retained discovery config with what Home Assistant needs
// to create it (class, unit, state topic and template, availability,
// expiry, device); they are published again when Home Assistant announces
// itself; and the config of a sensor no longer configured is cleared.
func TestHomeAssistantDiscovery(t *testing.T) {
	haRepublishDelay = [2]time.Duration{10 * time.Millisecond, 20 * time.Millisecond}
	m := testenv.StartMosquitto(t)
	cfg := DefaultConfig()
	cfg.URL, cfg.HomeAssistant = m.URL, true
	cfg.MultiQuantity = func(s string) bool { return s == "air" }
	cfg.HASensors = []HASensor{
		{Sensor: "air", Quantity: "temperature", IntervalSeconds: 30},
		{Sensor: "air", Quantity: "humidity", IntervalSeconds: 30},
		{Sensor: "tank", Quantity: "temperature", IntervalSeconds: 5},
	}
	cfg.HADevice = HADevice{Version: "v1.2.3", PageURL: "http://gh.local:8080/"}
	c := start(t, cfg, "gh")
	c.waitConnected(t)

	const filter = "homeassistant/sensor/kelvin_gh/+/config"
	// retainedConfigs subscribes afresh and returns the configs it is sent,
	// retained or (when the client is still publishing them) live; an empty
	// payload removes one.
	retainedConfigs := func(n int) map[string]map[string]any {
		t.Helper()
		sub := subscribe(t, m.URL, filter, 1)
		sub.wait(t, "discovery configs", func(ms []msg) bool { return len(ms) >= n })
		out := map[string]map[string]any{}
		for _, msg := range sub.settle(t) { // and no more than n
			if msg.Payload == "" {
				delete(out, msg.Topic)
				continue
			}
			var v map[string]any
			if err := json.Unmarshal([]byte(msg.Payload), &v); err != nil {
				t.Fatalf("%s: not JSON: %v: %s", msg.Topic, err, msg.Payload)
			}
			out[msg.Topic] = v
		}
		return out
	}
	got := retainedConfigs(3)
	want := map[string]map[string]any{
		"homeassistant/sensor/kelvin_gh/air_temperature/config": {
			"unique_id": "kelvin_gh_air_temperature", "name": "air temperature", "state_topic": "kelvin/gh/air/temperature",
			"unit_of_measurement": "°C", "device_class": "temperature", "expire_after": 90.0},
		"homeassistant/sensor/kelvin_gh/air_humidity/config": {
			"unique_id": "kelvin_gh_air_humidity", "state_topic": "kelvin/gh/air/humidity",
			"unit_of_measurement": "%", "device_class": "humidity", "expire_after": 90.0},
		"homeassistant/sensor/kelvin_gh/tank_temperature/config": {
			"unique_id": "kelvin_gh_tank_temperature", "state_topic": "kelvin/gh/tank",
			"unit_of_measurement": "°C", "device_class": "temperature", "expire_after": 60.0},
	}
	if len(got) != len(want) {
		t.Fatalf("retained configs: %v, want %d", keysOf(got), len(want))
	}
	for topic, fields := range want {
		cf := got[topic]
		if cf == nil {
			t.Errorf("no retained config at %s", topic)
			continue
		}
		for k, v := range fields {
			if cf[k] != v {
				t.Errorf("%s: %s = %v, want %v", topic, k, cf[k], v)
			}
		}
		for k, v := range map[string]any{"value_template": "{{ value_json.value }}", "state_class": "measurement",
			"availability_topic": "kelvin/gh/status", "payload_available": "online", "payload_not_available": "offline"} {
			if cf[k] != v {
				t.Errorf("%s: %s = %v, want %v", topic, k, cf[k], v)
			}
		}
		dev, _ := cf["device"].(map[string]any)
		if ids, _ := dev["identifiers"].([]any); len(ids) != 1 || ids[0] != "kelvin_gh" ||
			dev["sw_version"] != "v1.2.3" || dev["configuration_url"] != "http://gh.local:8080/" || dev["model"] == "" {
			t.Errorf("%s: device %v", topic, dev)
		}
	}

	// Home Assistant restarts: the configs come again.
	live := subscribe(t, m.URL, filter, 1)
	live.wait(t, "the retained configs", func(ms []msg) bool { return len(ms) >= 3 })
	ha := paho.NewClient(paho.NewClientOptions().AddBroker(m.URL).SetClientID("fake-home-assistant"))
	if tok := ha.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer ha.Disconnect(50)
	ha.Publish("homeassistant/status", 1, false, "online").WaitTimeout(10 * time.Second)
	live.wait(t, "discovery published again", func(ms []msg) bool { return len(ms) >= 6 })

	// A restart with the tank removed from the config clears its config.
	c.stop(t)
	cfg.HASensors = cfg.HASensors[:2]
	c = start(t, cfg, "gh")
	c.waitConnected(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := retainedConfigs(2)
		if _, ok := got["homeassistant/sensor/kelvin_gh/tank_temperature/config"]; !ok && len(got) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the removed sensor's config is still retained: %v", keysOf(got))
		}
	}

	bad := DefaultConfig()
	bad.URL, bad.HomeAssistant, bad.Format = m.URL, true, "influx"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "homeassistant") {
		t.Errorf("homeassistant with format influx: %v, want an error", err)
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestHomeAssistantForwarded: readings of other agents (a fleet forwarding
// its gateways') are published under their own agent, each sensor
// quantity announced to Home Assistant before its first reading, as a
// device per gateway whose ids never meet the gateway's own discovery,
// available while both the gateway and the forwarder are online; the
// gateway's state is mirrored, retained, on its status topic.
func TestHomeAssistantForwarded(t *testing.T) {
	m := testenv.StartMosquitto(t)
	cfg := DefaultConfig()
	cfg.URL, cfg.HomeAssistant = m.URL, true
	c := start(t, cfg, "fleet")
	c.waitConnected(t)
	c.MirrorGatewayState("gw-1", "online")
	c.MirrorGatewayState("fleet", "online") // its own: never mirrored

	configs := subscribe(t, m.URL, "homeassistant/sensor/+/+/config", 1)
	readings := subscribe(t, m.URL, "kelvin/+/+/+", 1)
	batch := []reading.Reading{
		{Agent: "gw-1", Sensor: "air", Quantity: reading.Temperature, Value: 21.5, Unit: "°C", Time: t0, Seq: 7},
		{Agent: "gw-1", Sensor: "air", Quantity: reading.Humidity, Value: 40, Unit: "%RH", Time: t0, Seq: 7},
		{Agent: "gw-1", Sensor: "air", Quantity: reading.Temperature, Value: 21.6, Unit: "°C", Time: t0.Add(time.Second), Seq: 8},
		{Agent: "gw-2", Sensor: "tank", Quantity: reading.Temperature, Value: 4, Unit: "°C", Time: t0, Seq: 1},
	}
	c.publish(t, batch)
	readings.wait(t, "the forwarded readings", func(ms []msg) bool { return len(ms) >= 4 })
	got := map[string]map[string]any{}
	for _, msg := range configs.settle(t) {
		var v map[string]any
		if err := json.Unmarshal([]byte(msg.Payload), &v); err != nil {
			t.Fatalf("%s: %v", msg.Topic, err)
		}
		got[msg.Topic] = v
	}
	want := map[string]map[string]any{
		"homeassistant/sensor/kelvin_gw-1_via_fleet/air_temperature/config": {
			"unique_id": "kelvin_gw-1_via_fleet_air_temperature", "state_topic": "kelvin/gw-1/air/temperature",
			"unit_of_measurement": "°C", "device_class": "temperature"},
		"homeassistant/sensor/kelvin_gw-1_via_fleet/air_humidity/config": {
			"unique_id": "kelvin_gw-1_via_fleet_air_humidity", "state_topic": "kelvin/gw-1/air/humidity",
			"unit_of_measurement": "%", "device_class": "humidity"},
		"homeassistant/sensor/kelvin_gw-2_via_fleet/tank_temperature/config": {
			"unique_id": "kelvin_gw-2_via_fleet_tank_temperature", "state_topic": "kelvin/gw-2/tank/temperature"},
	}
	if len(got) != len(want) {
		t.Fatalf("configs %v, want %d (one per sensor quantity, once)", keysOf(got), len(want))
	}
	for topic, fields := range want {
		cf := got[topic]
		if cf == nil {
			t.Fatalf("no config at %s: %v", topic, keysOf(got))
		}
		for k, v := range fields {
			if cf[k] != v {
				t.Errorf("%s: %s = %v, want %v", topic, k, cf[k], v)
			}
		}
		gw := strings.Split(strings.TrimPrefix(topic, "homeassistant/sensor/kelvin_"), "_via_")[0]
		if b, _ := json.Marshal(cf["availability"]); string(b) != `[{"topic":"kelvin/`+gw+`/status"},{"topic":"kelvin/fleet/status"}]` || cf["availability_mode"] != "all" {
			t.Errorf("%s: availability %s, mode %v", topic, b, cf["availability_mode"])
		}
		if _, ok := cf["expire_after"]; ok {
			t.Errorf("%s: expire_after %v: the forwarder does not know the interval", topic, cf["expire_after"])
		}
		dev, _ := cf["device"].(map[string]any)
		if ids, _ := dev["identifiers"].([]any); len(ids) != 1 || ids[0] != "kelvin_"+gw+"_via_fleet" || dev["name"] != "Kelvin "+gw+" (via fleet)" {
			t.Errorf("%s: device %v", topic, dev)
		}
	}
	for _, msg := range readings.snapshot() {
		if !strings.HasPrefix(msg.Topic, "kelvin/gw-") {
			t.Errorf("reading on %s", msg.Topic)
		}
	}

	// The gateway's state, mirrored; the forwarder's own is its own.
	if st := retained(t, m.URL, "kelvin/gw-1/status"); st.Payload != "online" {
		t.Fatalf("gw-1 status %q", st.Payload)
	}
	c.MirrorGatewayState("gw-1", "offline")
	st := subscribe(t, m.URL, "kelvin/gw-1/status", 1)
	st.wait(t, "gw-1 offline", func(ms []msg) bool { return len(ms) > 0 && ms[len(ms)-1].Payload == "offline" })
	if own := retained(t, m.URL, "kelvin/fleet/status"); own.Payload != "online" {
		t.Fatalf("the forwarder's status %q", own.Payload)
	}
	// Restart announcements too, and all of it again after a reconnection.
	c.MirrorGatewayRestart("gw-2", []byte(`{"seq_resume":{"tank":65537}}`))
	if r := retained(t, m.URL, "kelvin/gw-2/restart"); r.Payload != `{"seq_resume":{"tank":65537}}` {
		t.Fatalf("gw-2 restart %q", r.Payload)
	}
	m.Terminate()
	m.Start() // without persistence: the retained messages are gone
	c.waitConnected(t)
	if st := retained(t, m.URL, "kelvin/gw-1/status"); st.Payload != "offline" {
		t.Fatalf("gw-1 status after the broker restarted: %q", st.Payload)
	}
	if r := retained(t, m.URL, "kelvin/gw-2/restart"); r.Payload != `{"seq_resume":{"tank":65537}}` {
		t.Fatalf("gw-2 restart after the broker restarted: %q", r.Payload)
	}
}
