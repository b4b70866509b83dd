package mqtt

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kelvin-gw/kelvin/internal/testenv"
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
