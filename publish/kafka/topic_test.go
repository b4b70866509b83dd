//go:build !nokafka

package kafka

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kelvin-gw/kelvin/reading"
)

func TestTopicTemplate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		tmpl, agent, sensor, quantity, want string
	}{
		{"kelvin.readings", "gh-1", "air", "temperature", "kelvin.readings"},
		{"{agent}", "gh-1", "air", "temperature", "gh-1"},
		{"kelvin.{agent}.{sensor}.{quantity}", "gh-1", "28-0316a2b8ff01", "humidity", "kelvin.gh-1.28-0316a2b8ff01.humidity"},
		{"k-{quantity}-{quantity}", "gh-1", "air", "pressure", "k-pressure-pressure"},
		// Characters Kafka refuses become "_".
		{"kelvin.{agent}", "Green House/1 (°C)", "air", "temperature", "kelvin.Green_House_1___C_"},
		{"{sensor}", "gh-1", "i2c-1/0x76", "temperature", "i2c-1_0x76"},
	} {
		tt, err := newTopicTemplate(tc.tmpl)
		if err != nil {
			t.Fatalf("%q: %v", tc.tmpl, err)
		}
		if got := tt.expand(tc.agent, tc.sensor, tc.quantity); got != tc.want {
			t.Errorf("%q with agent %q sensor %q quantity %q: %q, want %q", tc.tmpl, tc.agent, tc.sensor, tc.quantity, got, tc.want)
		}
	}
}

// TestTopicRouting publishes through a template to per-quantity topics,
// with an agent id that needs sanitising and readings that leave Agent
// empty (the output fills it in).
func TestTopicRouting(t *testing.T) {
	t.Parallel()
	const agent = "green house/1"
	tempTopic, humTopic := "kelvin.green_house_1.temperature", "kelvin.green_house_1.humidity"
	c := startCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, tempTopic, humTopic))
	cfg := testConfig(c.ListenAddrs())
	cfg.Topic = "kelvin.{agent}.{quantity}"
	o, err := newOutput(cfg, agent, testLogger(t), options{deliveryTimeout: testDeliveryTimeout})
	must(t, err)
	t.Cleanup(o.Close)

	batch := interleave(readings("air", reading.Temperature, 1, 3), readings("air", reading.Humidity, 1, 2))
	for i := range batch {
		batch[i].Agent = ""
	}
	must(t, o.Publish(context.Background(), batch))

	for topic, n := range map[string]int{tempTopic: 3, humTopic: 2} {
		recs := consume(t, c.ListenAddrs(), topic, n)
		if len(recs) != n {
			t.Errorf("%s: %d records, want %d", topic, len(recs), n)
		}
		for _, r := range recs {
			if string(r.Key) != agent+"/air" || header(r.Headers, "agent") != agent {
				t.Errorf("%s: key %q, headers %v", topic, r.Key, r.Headers)
			}
			want := `{"agent":"green house/1","sensor":"air"`
			if got := string(r.Value); len(got) < len(want) || got[:len(want)] != want {
				t.Errorf("%s: value %s, want the agent id filled in", topic, got)
			}
		}
	}
}
