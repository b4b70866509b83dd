//go:build !nokafka

package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kelvin-gw/kelvin/fleet"
	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/reading"
)

// consumeAll reads the Kafka topic from its start with a fresh client
// until done says the readings seen (by identity, with how often) are
// enough, checking each record's key, headers and value.
func consumeAll(t *testing.T, brokers []string, topic string, done func(map[identity]int) bool) map[identity]int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[identity]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for !done(seen) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consuming %s: %d readings seen, not enough", topic, len(seen))
		}
		fs.EachRecord(func(rec *kgo.Record) {
			var r struct {
				Agent, Sensor string
				Seq           uint64
				Value, Raw    float64
			}
			if err := json.Unmarshal(rec.Value, &r); err != nil {
				t.Fatalf("record %s: %v", rec.Value, err)
			}
			if string(rec.Key) != r.Agent+"/"+r.Sensor || len(rec.Headers) == 0 || string(rec.Headers[0].Value) != r.Agent {
				t.Errorf("record key %q headers %v for %s/%s", rec.Key, rec.Headers, r.Agent, r.Sensor)
			}
			if v := value(r.Agent, r.Sensor, r.Seq); r.Value != v || r.Raw != v {
				t.Errorf("%s/%s seq %d: value %v raw %v, want the gateway's %v", r.Agent, r.Sensor, r.Seq, r.Value, r.Raw, v)
			}
			seen[identity{r.Agent, r.Sensor, r.Seq}]++
		})
	}
	return seen
}

// TestFleetForwardEndToEnd: gateways' readings come in over MQTT (a real
// mosquitto), with duplicates; a fleet Kelvin with fleet.forward and a
// Kafka output (kfake) forwards every distinct reading once, with its own
// agent, sensor and seq and the gateway's value, and none of its own. Then
// the Kafka cluster goes away while readings keep coming: they wait in the
// buffer, and once the cluster is back every one of them arrives (at
// least once).
func TestFleetForwardEndToEnd(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	kafkaOpts := []kfake.Opt{kfake.Ports(testenv.FreePort(t)), kfake.DataDir(t.TempDir()), kfake.SeedTopics(2, "kelvin.fleet")}
	cluster, err := kfake.NewCluster(kafkaOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cluster.Close() })
	brokers := cluster.ListenAddrs()

	dir := t.TempDir()
	a := startAgent(t, fmt.Sprintf(`
agent: { id: fleet, data_dir: %s, clock: trust }
fleet:
  mqtt: { url: %q }
  forward: true
buffer: { sync: 100ms, hot_dir: %s }
kafka: { brokers: [%q], topic: kelvin.fleet }
http: { listen: "127.0.0.1:%d" }
`, filepath.Join(dir, "data"), broker.URL, filepath.Join(dir, "hot"), brokers[0], testenv.FreePort(t)))
	testenv.WaitFor(t, "the fleet to subscribe", func() bool { return a.fleet.Summary("", 0, 1).Sources["mqtt"] })

	gw := newGatewayPublisher(t, broker.URL)
	phase := func(from, to uint64) {
		gw.send("gw-1", "air", from, to)
		gw.send("gw-1", "soil", from, to)
		gw.send("gw-2", "air", from, to)              // the same sensor name on another gateway
		gw.send("gw-1", "air", from+40, from+60)      // re-sent after a reconnect
		gw.send("gw-2", "air", to-10, to)             // and again
		gw.send("fleet", "self", from, from+4)        // this agent's own: never forwarded
		gw.publish("kelvin/gw-3/air", []byte("21.5")) // no identity: ignored
	}
	want := func(to uint64) map[identity]bool {
		m := map[identity]bool{}
		for seq := uint64(1); seq <= to; seq++ {
			for _, s := range [][2]string{{"gw-1", "air"}, {"gw-1", "soil"}, {"gw-2", "air"}} {
				m[identity{s[0], s[1], seq}] = true
			}
		}
		return m
	}
	check := func(seen map[identity]int, want map[identity]bool, once bool) {
		t.Helper()
		for id, n := range seen {
			if !want[id] {
				t.Errorf("forwarded %v, which no gateway sent (or this agent's own)", id)
			}
			if once && n != 1 {
				t.Errorf("%v forwarded %d times, want once (the fleet drops duplicates)", id, n)
			}
		}
		for id := range want {
			if seen[id] == 0 {
				t.Errorf("%v never forwarded", id)
			}
		}
	}

	phase(1, 100)
	w := want(100)
	seen := consumeAll(t, brokers, "kelvin.fleet", func(s map[identity]int) bool { return len(s) >= len(w) })
	// Wait for anything extra to show up as well: the buffer is empty
	// once Kafka acknowledged all of it.
	testenv.WaitFor(t, "the Kafka output to acknowledge everything", func() bool { return a.store.Backlog("kafka") == 0 })
	seen = consumeAll(t, brokers, "kelvin.fleet", func(s map[identity]int) bool { return len(s) >= len(w) })
	check(seen, w, true)

	// The Kafka cluster goes away; readings keep coming and wait in the buffer.
	cluster.Close()
	phase(101, 200)
	testenv.WaitFor(t, "the fleet to take the readings", func() bool {
		gi, _, _ := a.fleet.Gateway("gw-2", false)
		return gi.Received == 200
	})
	if n := a.store.Backlog("kafka"); n < 300 {
		t.Fatalf("backlog %d during the outage, want the 300 new readings", n)
	}
	cluster, err = kfake.NewCluster(kafkaOpts...)
	if err != nil {
		t.Fatal(err)
	}
	w = want(200)
	testenv.WaitForWithin(t, 60*time.Second, "the backlog sent after the outage", func() bool { return a.store.Backlog("kafka") == 0 })
	seen = consumeAll(t, brokers, "kelvin.fleet", func(s map[identity]int) bool { return len(s) >= len(w) })
	check(seen, w, false)
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	t.Logf("after the outage: %d distinct readings, %d delivered again (at least once)", len(seen), dups)
	if st := a.store.Stats(); st.Forwarded != uint64(len(w)) {
		t.Errorf("buffer stored %d forwarded readings, want %d", st.Forwarded, len(w))
	}
}

// TestFleetForwardSurvivesKill9: a forwarding fleet (its own process)
// takes readings while its Kafka cluster is down, so they wait in its
// buffer; it is killed with SIGKILL, the cluster comes up, the fleet is
// started again, and every reading it had taken arrives.
func TestFleetForwardSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := buildKelvin(t, dir)
	broker := testenv.StartMosquitto(t)
	kafkaPort := testenv.FreePort(t)
	kafkaAddr := fmt.Sprintf("127.0.0.1:%d", kafkaPort)
	httpPort := testenv.FreePort(t)
	f := &gatewayProc{id: "fleet", bin: bin, data: filepath.Join(dir, "data"), conf: filepath.Join(dir, "fleet.yaml")}
	os.WriteFile(f.conf, []byte(fmt.Sprintf(`
agent: { id: fleet, data_dir: %s, clock: trust }
fleet:
  mqtt: { url: %q }
  forward: true
buffer: { hot_dir: %s }
kafka: { brokers: [%q], topic: kelvin.fleet }
http: { listen: "127.0.0.1:%d" }
log: { level: warn }
`, f.data, broker.URL, filepath.Join(dir, "hot"), kafkaAddr, httpPort)), 0o644)
	f.start(t)
	t.Cleanup(func() {
		f.stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("fleet log:\n%s", f.stderr.String())
		}
	})
	api := fmt.Sprintf("http://127.0.0.1:%d/api/fleet", httpPort)
	summary := func() (s fleet.Summary) {
		resp, err := http.Get(api)
		if err != nil {
			return s
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&s)
		return s
	}
	testenv.WaitForWithin(t, 30*time.Second, "the fleet to subscribe", func() bool { return summary().Sources["mqtt"] })

	gw := newGatewayPublisher(t, broker.URL)
	gw.send("gw-1", "air", 1, 200)
	gw.send("gw-2", "air", 1, 200)
	testenv.WaitFor(t, "the fleet to take every reading", func() bool { return summary().Totals.Received == 400 })
	f.stop(syscall.SIGKILL)

	cluster, err := kfake.NewCluster(kfake.Ports(kafkaPort), kfake.SeedTopics(1, "kelvin.fleet"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	f.start(t)
	seen := consumeAll(t, []string{kafkaAddr}, "kelvin.fleet", func(s map[identity]int) bool { return len(s) >= 400 })
	for _, agent := range []string{"gw-1", "gw-2"} {
		for seq := uint64(1); seq <= 200; seq++ {
			if seen[identity{agent, "air", seq}] == 0 {
				t.Errorf("%s/air seq %d lost", agent, seq)
			}
		}
	}
}

// BenchmarkFleetForward measures the fleet's path of a forwarded reading:
// a gateway's JSON message taken by the fleet (parse, duplicate check,
// page state) → the durable buffer (hot tail) → the Kafka output (kfake),
// acknowledged. b.N readings (10 gateways × 10 sensors) are handed to the
// fleet as its MQTT source would, then the benchmark waits until Kafka
// acknowledged all of them; "off" is the fleet alone, without forward.
func BenchmarkFleetForward(b *testing.B) {
	for _, forward := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "kafka"}[forward], func(b *testing.B) {
			broker := testenv.StartMosquitto(b)
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "kelvin.fleet"))
			if err != nil {
				b.Fatal(err)
			}
			defer cluster.Close()
			dir := b.TempDir()
			a := startAgent(b, fmt.Sprintf(`
agent: { id: fleet, data_dir: %s, clock: trust }
fleet:
  mqtt: { url: %q }
  forward: %v
buffer: { hot_dir: %s, max_bytes: 512MiB }
kafka: { brokers: [%q], topic: kelvin.fleet }
http: { listen: "127.0.0.1:%d" }
`, filepath.Join(dir, "data"), broker.URL, forward, filepath.Join(dir, "hot"), cluster.ListenAddrs()[0], testenv.FreePort(b)))
			topics := make([]string, 100)
			for i := range topics {
				topics[i] = fmt.Sprintf("kelvin/gw-%d/s%d", i/10, i%10)
			}
			ts := wallclock.Now()
			msgs := make([][]byte, b.N)
			for i := range msgs {
				r := reading.Reading{Agent: fmt.Sprintf("gw-%d", i%100/10), Sensor: fmt.Sprintf("s%d", i%10), Quantity: reading.Temperature,
					Unit: "°C", Value: 21.5, Raw: 21.5, Time: ts.Add(time.Duration(i) * time.Millisecond), Seq: uint64(i/100 + 1)}
				msgs[i] = reading.FormatJSON.Append(nil, &r)
			}
			b.ResetTimer()
			for i, m := range msgs {
				a.fleet.Handle(topics[i%100], m)
			}
			if forward {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				for a.store.Backlog("kafka") > 0 && ctx.Err() == nil {
					time.Sleep(time.Millisecond)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "readings/s")
		})
	}
}
