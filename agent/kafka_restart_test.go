//go:build !nokafka

package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kelvin-gw/kelvin/fleet"
	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

// restartHeaders reads the Kafka topic from its start until it has seen a
// reading of agent's sensor at or above seq, and returns the restart
// headers of agent's readings by sensor, checking that every record's
// value is a plain reading.
func restartHeaders(t *testing.T, brokers []string, topic, agent, sensor string, seq uint64) map[string][]reading.SensorRestart {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := map[string][]reading.SensorRestart{}
	for high := uint64(0); high < seq; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consuming %s: %s/%s reached seq %d, want %d", topic, agent, sensor, high, seq)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			var r struct {
				Agent, Sensor string
				Seq           uint64
			}
			if err := json.Unmarshal(rec.Value, &r); err != nil || r.Agent == "" || r.Seq == 0 {
				t.Fatalf("record value %q is not a reading (%v)", rec.Value, err)
			}
			if r.Agent != agent {
				return
			}
			if r.Sensor == sensor {
				high = max(high, r.Seq)
			}
			for _, h := range rec.Headers {
				if h.Key == reading.RestartHeader {
					sr, err := reading.ParseSensorRestart(h.Value)
					if err != nil {
						t.Fatal(err)
					}
					if sr.SeqResume > r.Seq {
						t.Errorf("%s/%s seq %d carries %s, which resumes after it", r.Agent, r.Sensor, r.Seq, h.Value)
					}
					out[r.Sensor] = append(out[r.Sensor], sr)
				}
			}
		})
	}
	return out
}

// TestKafkaGatewayRestart: a gateway (its own process) publishes to Kafka
// (kfake); it is killed with SIGKILL and started again, so its seqs
// resume after their reservation. A fleet Kelvin following the topic and
// forwarding to a second topic, and a second fleet following that one,
// both count the reservation the restart header announces as skipped and
// nothing as lost: every seq up to the highest is received or skipped. A
// clean restart after that announces nothing and skips nothing.
func TestKafkaGatewayRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := buildKelvin(t, dir)
	cluster, err := kfake.NewCluster(kfake.Ports(testenv.FreePort(t)), kfake.SeedTopics(2, "kelvin.readings", "kelvin.fleet"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := cluster.ListenAddrs()

	f1 := startAgent(t, fmt.Sprintf(`
agent: { id: fleet-1, data_dir: %s, clock: trust }
fleet:
  kafka: { brokers: [%q], topic: kelvin.readings }
  forward: true
  loss_after: 5m
buffer: { sync: 100ms, hot_dir: %s }
kafka: { brokers: [%q], topic: kelvin.fleet }
http: { listen: "127.0.0.1:%d" }
`, filepath.Join(dir, "fleet-1"), brokers[0], filepath.Join(dir, "hot-1"), brokers[0], testenv.FreePort(t)))
	f2 := startAgent(t, fmt.Sprintf(`
agent: { id: fleet-2, data_dir: %s, clock: trust }
fleet:
  kafka: { brokers: [%q], topic: kelvin.fleet }
  loss_after: 5m
http: { listen: "127.0.0.1:%d" }
`, filepath.Join(dir, "fleet-2"), brokers[0], testenv.FreePort(t)))

	gw := &gatewayProc{id: "gw-k", bin: bin, data: filepath.Join(dir, "gw"), conf: filepath.Join(dir, "gw.yaml")}
	os.WriteFile(gw.conf, []byte(fmt.Sprintf(`
agent: { id: gw-k, data_dir: %s, clock: trust }
sensors:
  - { id: air, type: sim, interval: 20ms }
buffer: { sync: 100ms, hot_dir: %s }
kafka: { brokers: [%q], topic: kelvin.readings }
log: { level: warn }
`, gw.data, filepath.Join(dir, "hot-gw"), brokers[0])), 0o644)
	gw.start(t)
	t.Cleanup(func() {
		gw.stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("gateway log:\n%s", gw.stderr.String())
		}
	})
	air := func(a *Agent) fleet.SensorInfo {
		_, ss, _ := a.fleet.Gateway("gw-k", false)
		for _, s := range ss {
			if s.Sensor == "air" {
				return s
			}
		}
		return fleet.SensorInfo{}
	}
	testenv.WaitForWithin(t, 30*time.Second, "the first fleet to take the gateway's readings", func() bool { return air(f1).Received >= 30 })
	gw.stop(syscall.SIGKILL)
	gw.start(t)
	testenv.WaitForWithin(t, 30*time.Second, "readings after the restart", func() bool { return air(f1).High > 65536+30 })
	// A clean stop and start: the seqs go on without a gap, and nothing is
	// announced (the acknowledged readings are in no file of the gateway's:
	// only the clean end it recorded says where they ended).
	gw.stop(syscall.SIGTERM)
	high := air(f1).High
	gw.start(t)
	testenv.WaitForWithin(t, 30*time.Second, "readings after the clean restart", func() bool { return air(f1).High > high+30 })
	gw.stop(syscall.SIGTERM)

	hs := restartHeaders(t, brokers, "kelvin.readings", "gw-k", "air", air(f1).High)
	if len(hs["air"]) != 1 {
		t.Fatalf("restart headers on gw-k/air: %+v, want one, for the kill, none for the clean restart", hs["air"])
	}
	h := hs["air"][0]
	want := h.SeqResume - h.SkipFrom
	if h.SkipFrom == 0 || want == 0 {
		t.Fatalf("restart header %+v: want the range skipped", h)
	}
	for i, a := range []*Agent{f1, f2} {
		testenv.WaitForWithin(t, 30*time.Second, fmt.Sprintf("fleet %d: every seq received or skipped, nothing lost", i+1), func() bool {
			s := air(a)
			return s.High >= air(f1).High && s.Received+s.Skipped == s.High && s.Pending == 0 && s.Lost == 0 && s.Skipped == want
		})
		t.Logf("fleet %d: gw-k/air %+v, high %d; restart header %+v", i+1, air(a).Counts, air(a).High, h)
	}
}
