//go:build !nokafka

package fleet

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

// produceRestart writes agent/sensor's reading at seq with the restart
// header r, as Kelvin's Kafka output writes a sensor's first reading
// after a restart.
func produceRestart(t *testing.T, cl *kgo.Client, agent, sensor string, seq uint64, r reading.SensorRestart) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec := &kgo.Record{Topic: DefaultKafkaTopic, Key: []byte(agent + "/" + sensor),
		Value: payload(reading.FormatJSON, agent, sensor, seq, float64(seq), time.Unix(1_800_000_000+int64(seq), 0)),
		Headers: []kgo.RecordHeader{{Key: "agent", Value: []byte(agent)}, {Key: "sensor", Value: []byte(sensor)},
			{Key: reading.RestartHeader, Value: reading.MarshalSensorRestart(r)}}}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestKafkaRestartHeader: over Kafka, a gateway's restart comes as the
// "restart" header of each sensor's first reading after it. The fleet
// counts exactly the announced range as skipped, while a real gap below
// it (a reading that never arrived) is still counted as lost; a header
// read again (a duplicate record) counts nothing twice; a header without
// skip_from (relayed from MQTT) skips the gap just below seq_resume. The
// restart hook gets each announcement, for a forwarding fleet to carry on.
func TestKafkaRestartHeader(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, DefaultKafkaTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	produce(t, prod, "gw-a", "air", 1, 49)
	produce(t, prod, "gw-a", "air", 51, 100) // 50 never arrives: a real loss
	// The restart after a crash: the log held up to 100, the reservation
	// ran to 65536.
	started := time.Unix(1_800_000_000, 0).UTC()
	produceRestart(t, prod, "gw-a", "air", 65537, reading.SensorRestart{Started: started, SeqResume: 65537, SkipFrom: 101})
	produce(t, prod, "gw-a", "air", 65538, 65540)
	produceRestart(t, prod, "gw-a", "air", 65537, reading.SensorRestart{Started: started, SeqResume: 65537, SkipFrom: 101}) // again
	produce(t, prod, "gw-b", "tank", 1, 10)
	produceRestart(t, prod, "gw-b", "tank", 30, reading.SensorRestart{SeqResume: 30})
	produceRestart(t, prod, "gw-c", "new", 7, reading.SensorRestart{SeqResume: 7, SkipFrom: 1}) // never seen before
	// A producer that sets no agent and sensor headers: the key says.
	produce(t, prod, "gw-d", "pond", 1, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: DefaultKafkaTopic, Key: []byte("gw-d/pond"),
		Value:   payload(reading.FormatJSON, "gw-d", "pond", 100, 1, time.Unix(1_800_000_100, 0)),
		Headers: []kgo.RecordHeader{{Key: reading.RestartHeader, Value: []byte(`{"seq_resume":100,"skip_from":6}`)}}}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	brokers := c.ListenAddrs()
	f, clk := newTestFleetLog(t, nil, func(c *Config) {
		c.MQTT = nil
		c.Kafka = &KafkaConfig{Brokers: brokers, Group: "view"}
	})
	var mu sync.Mutex
	relayed := map[string][]reading.Restart{}
	f.SetRestartHook(func(agent string, p []byte) {
		a, err := reading.ParseRestart(p)
		if err != nil {
			t.Errorf("restart hook: %v", err)
		}
		mu.Lock()
		relayed[agent] = append(relayed[agent], a)
		mu.Unlock()
	})
	rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	done := make(chan error, 1)
	go func() { done <- f.Run(rctx) }()
	defer func() {
		rcancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	testenv.WaitFor(t, "every reading taken", func() bool {
		return received(f, "gw-a") == 99+4 && received(f, "gw-b") == 11 && received(f, "gw-c") == 1 && received(f, "gw-d") == 6
	})
	clk.advance(DefaultLossAfter + time.Second)
	f.Expire()

	_, ss, _ := f.Gateway("gw-a", false)
	if got := ss[0].Counts; got.Lost != 1 || got.Pending != 0 || got.Skipped != 65536-100 || got.Duplicates != 1 {
		t.Errorf("gw-a/air %+v, want lost 1 (seq 50), skipped %d (101..65536, the reservation), 1 duplicate", got, 65536-100)
	}
	_, ss, _ = f.Gateway("gw-b", false)
	if got := ss[0].Counts; got.Lost != 0 || got.Pending != 0 || got.Skipped != 19 {
		t.Errorf("gw-b/tank %+v, want skipped 19 (11..29) and nothing lost", got)
	}
	_, ss, _ = f.Gateway("gw-c", false)
	if got := ss[0].Counts; got.Lost != 0 || got.Skipped != 0 || got.Received != 1 {
		t.Errorf("gw-c/new %+v: counting starts at its first reading", got)
	}
	_, ss, _ = f.Gateway("gw-d", false)
	if got := ss[0].Counts; got.Lost != 0 || got.Pending != 0 || got.Skipped != 94 {
		t.Errorf("gw-d/pond %+v, want skipped 94 (6..99) from a header without agent and sensor headers", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if a := relayed["gw-a"]; len(a) != 2 || a[0].SeqResume["air"] != 65537 || a[0].SkipFrom["air"] != 101 || !a[0].Started.Equal(started) {
		t.Errorf("restart hook got %+v for gw-a, want seq_resume 65537 and skip_from 101 (twice)", a)
	}
	if a := relayed["gw-b"]; len(a) != 1 || a[0].SeqResume["tank"] != 30 || a[0].SkipFrom != nil {
		t.Errorf("restart hook got %+v for gw-b, want seq_resume 30 alone", a)
	}
}
