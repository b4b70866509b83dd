//go:build !nokafka

package fleet

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

// produce writes Kelvin JSON readings seq from..to of agent/sensor, keyed
// as Kelvin's Kafka output keys them.
func produce(t *testing.T, cl *kgo.Client, agent, sensor string, from, to uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for seq := from; seq <= to; seq++ {
		r := &kgo.Record{Topic: DefaultKafkaTopic, Key: []byte(agent + "/" + sensor),
			Value: payload(reading.FormatJSON, agent, sensor, seq, float64(seq), time.Unix(1_800_000_000+int64(seq), 0))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// runKafkaFleet runs a fleet reading the cluster as group until the test
// or stop ends it.
func runKafkaFleet(t *testing.T, brokers []string, group string) (*Fleet, func()) {
	t.Helper()
	f, _ := newTestFleet(t, func(c *Config) {
		c.MQTT = nil
		c.Kafka = &KafkaConfig{Brokers: brokers, Group: group}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("fleet run: %v", err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
	})
	return f, stop
}

func received(f *Fleet, agent string) uint64 {
	gi, _, _ := f.Gateway(agent, false)
	return gi.Received
}

// TestKafkaSourceResumesAndReplicates: a fleet reads the topic as a
// consumer group and drops duplicates; another instance of the same group
// resumes at the committed offsets (it does not read the first readings
// again); an instance with its own group reads everything.
func TestKafkaSourceResumesAndReplicates(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, DefaultKafkaTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	produce(t, prod, "gw-a", "air", 1, 50)
	produce(t, prod, "gw-a", "air", 41, 50) // resent after a reconnect
	produce(t, prod, "gw-b", "tank", 1, 50)

	f1, stop1 := runKafkaFleet(t, brokers, "view")
	testenv.WaitFor(t, "the first fleet to read every reading", func() bool {
		return received(f1, "gw-a") == 50 && received(f1, "gw-b") == 50
	})
	if gi, _, _ := f1.Gateway("gw-a", false); gi.Duplicates != 10 || gi.Lost != 0 || gi.Pending != 0 {
		t.Fatalf("gw-a: %+v, want 10 duplicates and nothing missing", gi.Counts)
	}
	stop1() // commits its offsets

	produce(t, prod, "gw-a", "air", 51, 60)
	f2, _ := runKafkaFleet(t, brokers, "view")
	testenv.WaitFor(t, "the restarted fleet to read the new readings", func() bool { return received(f2, "gw-a") == 10 })
	_, ss, _ := f2.Gateway("gw-a", false)
	if len(ss) != 1 || ss[0].High != 60 || ss[0].Received != 10 {
		t.Fatalf("restarted fleet: %+v, want seqs 51..60 only (resumed at the committed offset)", ss)
	}
	if _, _, ok := f2.Gateway("gw-b", false); ok {
		t.Fatal("restarted fleet read gw-b's old readings again")
	}

	f3, _ := runKafkaFleet(t, brokers, "replica")
	testenv.WaitFor(t, "a fleet with its own group to read everything", func() bool {
		return received(f3, "gw-a") == 60 && received(f3, "gw-b") == 50
	})
}
