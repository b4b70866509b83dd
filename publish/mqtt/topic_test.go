package mqtt

import (
	"testing"

	"github.com/kelvin-gw/kelvin/reading"
)

func TestTopic(t *testing.T) {
	for _, tc := range []struct {
		tmpl, agent, sensor, quantity string
		multi                         bool
		want                          string
		from                          string // the reading's agent: another one's is forwarded
	}{
		{DefaultTopic, "greenhouse-1", "air", "temperature", false, "kelvin/greenhouse-1/air", ""},
		{DefaultTopic, "greenhouse-1", "bme", "humidity", true, "kelvin/greenhouse-1/bme/humidity", ""},
		{"site/{agent}/{quantity}/{sensor}", "g", "bme", "pressure", true, "site/g/pressure/bme", ""},
		{"{sensor}", "g", "air", "temperature", false, "air", ""},
		{DefaultTopic, "barn/2+#", "air", "temperature", false, "kelvin/barn_2__/air", ""},
		{DefaultTopic, "g", "a/b+", "temperature", true, "kelvin/g/a_b_/temperature", ""},
		{DefaultTopic, "g", "air", "temperature", false, "kelvin/g/air", "g"},
		// Forwarded: under the reading's agent, always with the quantity.
		{DefaultTopic, "fleet", "air", "temperature", false, "kelvin/gw-1/air/temperature", "gw-1"},
		{"fwd/{agent}/{quantity}/{sensor}", "fleet", "bme", "pressure", false, "fwd/gw_2/pressure/bme", "gw/2"},
	} {
		c, err := New(Config{URL: "tcp://b", Topic: tc.tmpl, MultiQuantity: func(string) bool { return tc.multi }}, tc.agent, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := reading.Reading{Agent: tc.from, Sensor: tc.sensor, Quantity: tc.quantity}
		if got := c.topicOf(&r); got != tc.want {
			t.Errorf("%q, agent %q, %s/%s, multi %v: topic %q, want %q", tc.tmpl, tc.agent, tc.sensor, tc.quantity, tc.multi, got, tc.want)
		}
	}
}

func TestStatusTopicSanitised(t *testing.T) {
	c, err := New(Config{URL: "tcp://b"}, "barn/2+#", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.statusTopic != "kelvin/barn_2__/status" {
		t.Fatalf("status topic %q", c.statusTopic)
	}
	if id := c.pc.OptionsReader(); id.ClientID() != "kelvin-barn_2__" {
		t.Fatalf("client id %q", id.ClientID())
	}
}

// The topic of a known sensor and quantity costs no allocation.
func TestTopicNoAllocation(t *testing.T) {
	c, err := New(Config{URL: "tcp://b", MultiQuantity: multiBME}, "g", nil)
	if err != nil {
		t.Fatal(err)
	}
	rs := testReadings("g", 6)
	for i := range rs {
		c.topicOf(&rs[i])
	}
	allocs := testing.AllocsPerRun(100, func() {
		for i := range rs {
			c.topicOf(&rs[i])
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch of cached topics, want 0", allocs)
	}
}
