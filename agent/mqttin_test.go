package agent

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

// TestMQTTInput: type mqtt sensors take readings that other devices
// publish, in their documented formats — Tasmota's tele/<device>/SENSOR
// JSON, ESPHome's bare <prefix>/sensor/<name>/state, Zigbee2MQTT's JSON —
// through filters to the outputs like wired ones. Retained values (a
// device's last value, sent again on every subscription) are not new
// readings; a payload without the value makes the sensor faulty, never a
// number.
func TestMQTTInput(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	dev := testenv.ConnectMQTT(t, broker.URL, "test-devices")
	pub := func(topic, payload string, retained bool) {
		t.Helper()
		testenv.PublishMQTT(t, dev, topic, retained, payload)
	}
	// ESPHome retains its states: this old value must not become a reading.
	pub("greenhouse/sensor/soil_temperature/state", "99.9", true)

	sub := subscribe(t, broker.URL, "kelvin/gm/#")
	a := startAgent(t, fmt.Sprintf(`
agent: { id: gm, data_dir: %s, clock: trust }
sensors:
  - { id: plug, type: mqtt, topic: tele/plug1/SENSOR, value_path: $.AM2301.Temperature, interval: 5m }
  - { id: soil, type: mqtt, topic: greenhouse/sensor/soil_temperature/state, filters: [ {round: 1} ] }
  - { id: balcony, type: mqtt, topic: zigbee2mqtt/balcony, value_path: $.humidity, quantity: humidity }
mqtt: { url: %q, qos: 1 }
http: { listen: "" }
`, t.TempDir(), broker.URL))

	// Tasmota, AM2301 on a plug (its SENSOR telemetry).
	testenv.WaitForWithin(t, 10*time.Second, "the Tasmota reading", func() bool {
		pub("tele/plug1/SENSOR", `{"Time":"2026-11-26T08:00:00","AM2301":{"Temperature":21.3,"Humidity":45.2,"DewPoint":8.9},"TempUnit":"C"}`, false)
		time.Sleep(50 * time.Millisecond)
		return len(sub.get("kelvin/gm/plug")) > 0
	})
	pub("greenhouse/sensor/soil_temperature/state", "14.26", false)
	pub("zigbee2mqtt/balcony", `{"battery":97,"humidity":61.5,"linkquality":120,"temperature":14.2,"voltage":2995}`, false)
	testenv.WaitForWithin(t, 10*time.Second, "the ESPHome and Zigbee2MQTT readings", func() bool {
		return len(sub.get("kelvin/gm/soil")) > 0 && len(sub.get("kelvin/gm/balcony")) > 0
	})
	check := func(topic string, value float64, unit string) {
		t.Helper()
		var r reading.Reading
		json.Unmarshal([]byte(sub.get(topic)[0]), &r)
		if r.Value != value || r.Unit != unit || r.Seq != 1 {
			t.Errorf("%s: %s, want value %v %s seq 1", topic, sub.get(topic)[0], value, unit)
		}
	}
	check("kelvin/gm/plug", 21.3, "°C")
	check("kelvin/gm/soil", 14.3, "°C") // round: 1
	check("kelvin/gm/balcony", 61.5, "%RH")
	for _, p := range sub.get("kelvin/gm/soil") {
		if strings.Contains(p, "99.9") {
			t.Errorf("the retained value became a reading: %s", p)
		}
	}

	// A payload without the value: faulty, and nothing published.
	n := len(sub.get("kelvin/gm/plug"))
	pub("tele/plug1/SENSOR", `{"Time":"2026-11-26T08:05:00","DS18B20":{"Temperature":3}}`, false)
	testenv.WaitForWithin(t, 10*time.Second, "the plug to be faulty", func() bool {
		for _, s := range a.Status().Sensors {
			if s.ID == "plug" {
				return s.State == "faulty" && s.Reason == "bad_data" && strings.Contains(s.Error, `no field "AM2301"`)
			}
		}
		return false
	})
	if got := len(sub.get("kelvin/gm/plug")); got != n {
		t.Errorf("a payload without the value published %d readings", got-n)
	}

	// A value no thermometer reads: refused, with the reason.
	n = len(sub.get("kelvin/gm/soil"))
	pub("greenhouse/sensor/soil_temperature/state", "1e308", false)
	testenv.WaitForWithin(t, 10*time.Second, "the soil sensor to be faulty", func() bool {
		for _, s := range a.Status().Sensors {
			if s.ID == "soil" {
				return s.State == "faulty" && s.Reason == "bad_data" && strings.Contains(s.Error, "temperature 1e+308 °C is outside the plausible")
			}
		}
		return false
	})
	if got := len(sub.get("kelvin/gm/soil")); got != n {
		t.Errorf("an implausible value published %d readings", got-n)
	}
}

// TestMQTTInputConfig: topics Kelvin publishes to itself are refused (a
// loop), as are wildcards, bad value paths and a missing broker.
func TestMQTTInputConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ yaml, want string }{
		{"mqtt: { url: tcp://b:1883 }\nsensors: [ { id: x, type: mqtt, topic: kelvin/gm/air } ]", `sensors[0].topic: "kelvin/gm/air" is under kelvin/gm/, where Kelvin publishes itself`},
		{"mqtt: { url: tcp://b:1883, topic: \"site/{agent}/t/{sensor}\" }\nsensors: [ { id: x, type: mqtt, topic: site/gm/t/x } ]", `is under site/gm/t/`},
		{"mqtt: { url: tcp://b:1883, homeassistant: true }\nsensors: [ { id: x, type: mqtt, topic: homeassistant/sensor/kelvin_gm/x/config } ]", `is under homeassistant/sensor/kelvin_gm/`},
		{"mqtt: { url: tcp://b:1883 }\nsensors: [ { id: x, type: mqtt, topic: tele/+/SENSOR } ]", "no + or # wildcards"},
		{"mqtt: { url: tcp://b:1883 }\nsensors: [ { id: x, type: mqtt, topic: a/b, value_path: AM2301.Temperature } ]", "value_path: want $.field"},
		{"sensors: [ { id: x, type: mqtt, topic: a/b } ]", "type mqtt needs a broker"},
		{"mqtt: { url: tcp://b:1883 }\nsensors: [ { id: x, type: mqtt } ]", "sensors[0].topic: required"},
		{"mqtt_in: { url: \"localhost\" }\nsensors: [ { id: x, type: mqtt, topic: a/b } ]", "mqtt_in.url"},
		{"mqtt_in: { url: tcp://b:1883, max_payload_bytes: 1GiB }\nsensors: [ { id: x, type: mqtt, topic: a/b } ]", "mqtt_in.max_payload_bytes: 1GiB: want 1B to"},
	} {
		_, err := Parse("test.yaml", []byte("agent: { id: gm, data_dir: "+dir+" }\n"+tc.yaml+"\n"), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\n  error %v, want %q", tc.yaml, err, tc.want)
		}
	}
	if _, err := Parse("test.yaml", []byte("agent: { id: gm, data_dir: "+dir+" }\nmqtt_in: { url: tcp://local:1883 }\nsensors: [ { id: x, type: mqtt, topic: tele/plug/SENSOR, value_path: $.AM2301.Temperature } ]\n"), nil); err != nil {
		t.Errorf("a valid mqtt_in config: %v", err)
	}
}

// TestMQTTInputPayloadLimit: mqtt_in.max_payload_bytes reaches the input;
// a larger payload makes its sensor faulty with reason too_large.
func TestMQTTInputPayloadLimit(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	dev := testenv.ConnectMQTT(t, broker.URL, "test-devices")
	a := startAgent(t, fmt.Sprintf(`
agent: { id: gl, data_dir: %s, clock: trust }
sensors: [ { id: soil, type: mqtt, topic: soil/state } ]
mqtt_in: { url: %q, max_payload_bytes: 1KiB }
http: { listen: "" }
`, t.TempDir(), broker.URL))
	big := strings.Repeat("1", 4096)
	testenv.WaitForWithin(t, 10*time.Second, "the soil sensor to be faulty, too_large", func() bool {
		// Published until the input has subscribed.
		dev.Publish("soil/state", 1, false, big).WaitTimeout(10 * time.Second)
		for _, s := range a.Status().Sensors {
			if s.ID == "soil" {
				return s.State == "faulty" && s.Reason == "too_large" && strings.Contains(s.Error, "a payload of 4096 bytes, over the limit of 1024")
			}
		}
		return false
	})
}
