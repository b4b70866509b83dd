package testenv

import (
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// ConnectMQTT connects a plain paho client (a device, a gateway) with
// clientID to the broker at url, failing the test when that takes more
// than 10 s, and disconnects it when the test ends.
func ConnectMQTT(t testing.TB, url, clientID string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(clientID))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s to %s: %v", clientID, url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

// PublishMQTT publishes payload on topic at QoS 1 and waits for the
// broker's acknowledgement, failing the test after 10 s.
func PublishMQTT(t testing.TB, c paho.Client, topic string, retained bool, payload any) {
	t.Helper()
	if tok := c.Publish(topic, 1, retained, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish on %s: %v", topic, tok.Error())
	}
}
