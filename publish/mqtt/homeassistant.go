package mqtt

import (
	"encoding/json"
	"fmt"
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

// haConfig is one sensor's MQTT discovery payload. A local sensor has one
// availability topic (the agent's status); a forwarded one a list of two,
// both of which must say online.
type haConfig struct {
	UniqueID          string           `json:"unique_id"`
	ObjectID          string           `json:"object_id"`
	Name              string           `json:"name"`
	StateTopic        string           `json:"state_topic"`
	ValueTemplate     string           `json:"value_template"`
	Unit              string           `json:"unit_of_measurement,omitempty"`
	DeviceClass       string           `json:"device_class,omitempty"`
	StateClass        string           `json:"state_class"`
	AvailabilityTopic string           `json:"availability_topic,omitempty"`
	Availability      []haAvailability `json:"availability,omitempty"`
	AvailabilityMode  string           `json:"availability_mode,omitempty"`
	PayloadAvailable  string           `json:"payload_available"`
	PayloadNotAvail   string           `json:"payload_not_available"`
	ExpireAfter       int              `json:"expire_after,omitempty"`
	Device            haDevice         `json:"device"`
}

// haAvailability is one entry of a discovery config's availability list.
type haAvailability struct {
	Topic string `json:"topic"`
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
	for _, s := range c.haSensors {
		multi := c.multi != nil && c.multi(s.Sensor)
		cfg := c.haSensorConfig(c.haNodeID(), s.Sensor, s.Quantity, string(c.topic.appendTopic(nil, c.agent, s.Sensor, s.Quantity, multi)))
		cfg.AvailabilityTopic = c.statusTopic
		// Three missed readings, and never less than a minute: a dead
		// sensor goes unavailable instead of freezing at its last value.
		cfg.ExpireAfter = max(60, int(3*s.IntervalSeconds+0.999))
		cfg.Device = haDevice{
			Identifiers:      []string{c.haNodeID()},
			Name:             "Kelvin " + c.agent,
			Manufacturer:     "Kelvin",
			Model:            "Kelvin temperature gateway",
			SWVersion:        c.haDevice.Version,
			ConfigurationURL: c.haDevice.PageURL,
		}
		b, _ := json.Marshal(cfg)
		out[c.haTopic(s)] = b
	}
	return out
}

// haSensorConfig is the part of a discovery config that depends on the
// sensor quantity alone: ids, name, class, unit, state topic and template.
func (c *Client) haSensorConfig(node, sensor, quantity, stateTopic string) haConfig {
	tmpl := "{{ value_json.value }}"
	if c.format == reading.FormatValue {
		tmpl = "{{ value }}"
	}
	unit := reading.UnitOf(quantity)
	class := ""
	switch quantity {
	case reading.Temperature:
		class = "temperature"
	case reading.Humidity:
		class, unit = "humidity", "%" // Home Assistant's unit for relative humidity
	case reading.Pressure:
		class = "pressure"
	}
	id := node + "_" + sanitise(sensor) + "_" + sanitise(quantity)
	return haConfig{
		UniqueID:         id,
		ObjectID:         id,
		Name:             sensor + " " + quantity,
		StateTopic:       stateTopic,
		ValueTemplate:    tmpl,
		Unit:             unit,
		DeviceClass:      class,
		StateClass:       "measurement",
		PayloadAvailable: "online",
		PayloadNotAvail:  "offline",
	}
}

// haForwardedNode is the discovery node of the gateway agent's sensors
// forwarded by this agent: a device of its own per gateway, and ids that
// never meet the gateway's own discovery (kelvin_{agent}).
func (c *Client) haForwardedNode(agent string) string {
	return "kelvin_" + sanitise(agent) + "_via_" + c.agent
}

// haForwarded returns the discovery topic and payload of a forwarded
// reading's sensor quantity, published on stateTopic. It is available
// while both the gateway (its status, whose last will says offline) and
// this agent (whose own last will does, and which mirrors or follows the
// gateway's status) are online. It has no expire_after: the forwarder
// does not know the gateway's read intervals.
func (c *Client) haForwarded(r *reading.Reading, stateTopic string) (string, []byte) {
	node := c.haForwardedNode(r.Agent)
	cfg := c.haSensorConfig(node, r.Sensor, r.Quantity, stateTopic)
	cfg.Availability = []haAvailability{{Topic: gatewayStatusTopic(r.Agent)}, {Topic: c.statusTopic}}
	cfg.AvailabilityMode = "all"
	cfg.Device = haDevice{
		Identifiers:  []string{node},
		Name:         "Kelvin " + r.Agent + " (via " + c.agent + ")",
		Manufacturer: "Kelvin",
		Model:        "Kelvin temperature gateway",
	}
	b, _ := json.Marshal(cfg)
	return c.haPrefix + "/sensor/" + node + "/" + sanitise(r.Sensor) + "_" + sanitise(r.Quantity) + "/config", b
}

// gatewayStatusTopic is the status topic of a gateway agent.
func gatewayStatusTopic(agent string) string { return "kelvin/" + sanitise(agent) + "/status" }

// haAnnounce publishes, retained, the discovery config of a forwarded
// reading's sensor quantity the first time this connection (or Home
// Assistant, since it last came online) sees it, and waits for the
// broker's acknowledgement. It is called by Publish before the reading,
// with the batch's writes held back on conn: they go out with the
// discovery, before the wait, and are held again after it.
func (c *Client) haAnnounce(r *reading.Reading, stateTopic string, conn *bufConn) error {
	k := topicKey{r.Agent, r.Sensor, r.Quantity}
	c.haMu.Lock()
	done := c.haAnnounced[k]
	c.haMu.Unlock()
	if done {
		return nil
	}
	topic, payload := c.haForwarded(r, stateTopic)
	tok := c.pc.Publish(topic, 1, true, payload)
	conn.release()
	acked := tok.WaitTimeout(publishTimeout)
	conn.hold()
	if !acked {
		return fmt.Errorf("home assistant discovery of %s/%s not acknowledged within %v", r.Agent, r.Sensor, publishTimeout)
	}
	if err := tok.Error(); err != nil {
		return err
	}
	c.haMu.Lock()
	if len(c.haAnnounced) >= maxCachedTopics {
		clear(c.haAnnounced)
	}
	c.haAnnounced[k] = true
	c.haMu.Unlock()
	return nil
}

// haForget makes Publish announce forwarded sensors again.
func (c *Client) haForget() {
	c.haMu.Lock()
	clear(c.haAnnounced)
	c.haMu.Unlock()
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
				c.haForget()
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
