package mqtt

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kelvin-gw/kelvin/reading"
)

// DefaultHomeAssistantPrefix is Home Assistant's default discovery prefix.
const DefaultHomeAssistantPrefix = "homeassistant"

// HASensor is one sensor quantity announced to Home Assistant.
type HASensor struct {
	Sensor          string
	Quantity        string
	IntervalSeconds float64
}

// HADevice describes the agent in Home Assistant's device registry.
type HADevice struct {
	Version string // sw_version
	PageURL string // configuration_url; empty leaves it out
}

// haRepublishDelay bounds the jittered wait before discovery is published
// again after Home Assistant announced itself: it drops what arrives
// while it is still starting.
var haRepublishDelay = [2]time.Duration{2 * time.Second, 5 * time.Second}

// haConfig is one sensor's MQTT discovery payload.
type haConfig struct {
	UniqueID          string   `json:"unique_id"`
	ObjectID          string   `json:"object_id"`
	Name              string   `json:"name"`
	StateTopic        string   `json:"state_topic"`
	ValueTemplate     string   `json:"value_template"`
	Unit              string   `json:"unit_of_measurement,omitempty"`
	DeviceClass       string   `json:"device_class,omitempty"`
	StateClass        string   `json:"state_class"`
	AvailabilityTopic string   `json:"availability_topic"`
	PayloadAvailable  string   `json:"payload_available"`
	PayloadNotAvail   string   `json:"payload_not_available"`
	ExpireAfter       int      `json:"expire_after"`
	Device            haDevice `json:"device"`
}

type haDevice struct {
	Identifiers      []string `json:"identifiers"`
	Name             string   `json:"name"`
	Manufacturer     string   `json:"manufacturer"`
	Model            string   `json:"model"`
	SWVersion        string   `json:"sw_version,omitempty"`
	ConfigurationURL string   `json:"configuration_url,omitempty"`
}

// haNodeID is the discovery node of the agent.
func (c *Client) haNodeID() string { return "kelvin_" + c.agent }

// haTopic is the discovery config topic of one sensor quantity.
func (c *Client) haTopic(s HASensor) string {
	return c.haPrefix + "/sensor/" + c.haNodeID() + "/" + sanitise(s.Sensor) + "_" + sanitise(s.Quantity) + "/config"
}

// haPayloads returns the discovery topic → payload of every sensor quantity.
func (c *Client) haPayloads() map[string][]byte {
	out := make(map[string][]byte, len(c.haSensors))
	tmpl := "{{ value_json.value }}"
	if c.format == reading.FormatValue {
		tmpl = "{{ value }}"
	}
	for _, s := range c.haSensors {
		multi := c.multi != nil && c.multi(s.Sensor)
		unit := reading.UnitOf(s.Quantity)
		class := ""
		switch s.Quantity {
		case reading.Temperature:
			class = "temperature"
		case reading.Humidity:
			class, unit = "humidity", "%" // Home Assistant's unit for relative humidity
		case reading.Pressure:
			class = "pressure"
		}
		id := c.haNodeID() + "_" + sanitise(s.Sensor) + "_" + sanitise(s.Quantity)
		cfg := haConfig{
			UniqueID:          id,
			ObjectID:          id,
			Name:              s.Sensor + " " + s.Quantity,
			StateTopic:        string(c.topic.appendTopic(nil, s.Sensor, s.Quantity, multi)),
			ValueTemplate:     tmpl,
			Unit:              unit,
			DeviceClass:       class,
			StateClass:        "measurement",
			AvailabilityTopic: c.statusTopic,
			PayloadAvailable:  "online",
			PayloadNotAvail:   "offline",
			// Three missed readings, and never less than a minute: a dead
			// sensor goes unavailable instead of freezing at its last value.
			ExpireAfter: max(60, int(3*s.IntervalSeconds+0.999)),
			Device: haDevice{
				Identifiers:      []string{c.haNodeID()},
				Name:             "Kelvin " + c.agent,
				Manufacturer:     "Kelvin",
				Model:            "Kelvin temperature gateway",
				SWVersion:        c.haDevice.Version,
				ConfigurationURL: c.haDevice.PageURL,
			},
		}
		b, _ := json.Marshal(cfg)
		out[c.haTopic(s)] = b
	}
	return out
}

// haPublish publishes every discovery config, retained, at QoS 1.
func (c *Client) haPublish(pc paho.Client) {
	for topic, payload := range c.haPayloads() {
		tok := pc.Publish(topic, 1, true, payload)
		if tok.WaitTimeout(publishTimeout) && tok.Error() != nil {
			c.log.Warn("home assistant discovery not published", "topic", topic, "err", tok.Error())
			return
		}
	}
	c.log.Debug("home assistant discovery published", "sensors", len(c.haSensors))
}

// haOnConnect publishes discovery and subscribes to Home Assistant's
// status (to publish again when it restarts) and to our own discovery
// topics (to clear the retained config of a sensor no longer configured).
func (c *Client) haOnConnect(pc paho.Client) {
	current := c.haPayloads()
	c.haPublish(pc)
	pc.Subscribe(c.haPrefix+"/status", 1, func(pc paho.Client, m paho.Message) {
		if strings.TrimSpace(string(m.Payload())) != "online" {
			return
		}
		go func() {
			lo, hi := haRepublishDelay[0], haRepublishDelay[1]
			time.Sleep(lo + rand.N(hi-lo+1))
			if pc.IsConnectionOpen() {
				c.log.Info("home assistant came online: publishing discovery again")
				c.haPublish(pc)
			}
		}()
	})
	pc.Subscribe(c.haPrefix+"/sensor/"+c.haNodeID()+"/+/config", 1, func(pc paho.Client, m paho.Message) {
		if _, ok := current[m.Topic()]; ok || len(m.Payload()) == 0 {
			return
		}
		go func() {
			c.log.Info("home assistant: removing the config of a sensor no longer configured", "topic", m.Topic())
			pc.Publish(m.Topic(), 1, true, []byte{}).WaitTimeout(publishTimeout)
		}()
	})
}
