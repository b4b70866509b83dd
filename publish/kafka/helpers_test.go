//go:build !nokafka

package kafka

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kelvin-gw/kelvin/reading"
)

const (
	testAgent = "greenhouse-1"
	testTopic = "kelvin.readings"
	// testDeliveryTimeout replaces the 30 s record delivery timeout so an
	// outage fails Publish quickly.
	testDeliveryTimeout = 2 * time.Second
)

// t0 is the time of the first test reading.
var t0 = time.Date(2026, 11, 23, 7, 0, 0, 123_000_000, time.UTC)

// startCluster starts an in-process Kafka cluster on loopback and closes it
// when the test ends.
func startCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// testConfig is a defaulted config for brokers with a short linger.
func testConfig(brokers []string) Config {
	cfg := Config{Brokers: brokers, Linger: 5 * time.Millisecond}
	cfg.SetDefaults()
	return cfg
}

// testLogger logs to the test, at debug level when -v.
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newTestOutput builds an Output with the short test delivery timeout and
// closes it when the test ends.
func newTestOutput(t testing.TB, cfg Config, extra ...kgo.Opt) *Output {
	t.Helper()
	o, err := newOutput(cfg, testAgent, testLogger(t), options{deliveryTimeout: testDeliveryTimeout, extra: extra})
	if err != nil {
		t.Fatalf("new output: %v", err)
	}
	t.Cleanup(o.Close)
	return o
}

// readings returns n readings of sensor's quantity with seq from..from+n-1,
// one a second.
func readings(sensor, quantity string, from uint64, n int) []reading.Reading {
	rs := make([]reading.Reading, n)
	for i := range rs {
		seq := from + uint64(i)
		v := 20 + float64(seq%50)/10
		rs[i] = reading.Reading{
			Agent:    testAgent,
			Sensor:   sensor,
			Quantity: quantity,
			Value:    v,
			Raw:      v + 0.0625,
			Unit:     reading.UnitOf(quantity),
			Time:     t0.Add(time.Duration(seq) * time.Second),
			Seq:      seq,
		}
	}
	return rs
}

// interleave merges batches of readings round-robin, as the buffer hands
// out readings of several sensors in time order.
func interleave(parts ...[]reading.Reading) []reading.Reading {
	var out []reading.Reading
	for i := 0; ; i++ {
		added := false
		for _, p := range parts {
			if i < len(p) {
				out = append(out, p[i])
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

// consume reads records from topic from the start until it has at least n
// or 10 s passed.
func consume(t testing.TB, brokers []string, topic string, n int, extra ...kgo.Opt) []*kgo.Record {
	t.Helper()
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d records of %s, want %d", len(recs), topic, n)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Logf("fetch %s/%d: %v", topic, p, err)
		})
		recs = append(recs, fs.Records()...)
	}
	return recs
}

// seqsByKey returns the seq of every record's JSON value, grouped by key,
// in the order each partition delivered them.
func seqsByKey(t testing.TB, recs []*kgo.Record) map[string][]uint64 {
	t.Helper()
	out := map[string][]uint64{}
	for _, r := range recs {
		out[string(r.Key)] = append(out[string(r.Key)], seqOf(t, r.Value))
	}
	return out
}

func seqOf(t testing.TB, value []byte) uint64 {
	t.Helper()
	s := string(value)
	i := strings.LastIndex(s, `"seq":`)
	if i < 0 || !strings.HasSuffix(s, "}") {
		t.Fatalf("no seq in %s", s)
	}
	seq, err := strconv.ParseUint(s[i+len(`"seq":`):len(s)-1], 10, 64)
	if err != nil {
		t.Fatalf("bad seq in %s: %v", s, err)
	}
	return seq
}

// checkNoGaps checks that seqs, a key's readings in delivery order,
// contain 1..last with every seq first appearing after its predecessor:
// duplicates are allowed, gaps and reordering are not.
func checkNoGaps(t testing.TB, key string, seqs []uint64, last uint64) (dups int) {
	t.Helper()
	var next uint64 = 1
	for i, s := range seqs {
		switch {
		case s == next:
			next++
		case s < next:
			dups++
		default:
			t.Fatalf("%s: seq %d at position %d before seq %d: a gap", key, s, i, next)
		}
	}
	if next-1 != last {
		t.Fatalf("%s: delivered seqs 1..%d, want 1..%d", key, next-1, last)
	}
	return dups
}

// writeFile writes a file in the test's temporary directory.
func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
