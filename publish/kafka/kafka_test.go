//go:build !nokafka

package kafka

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	c := startCluster(t, kfake.SeedTopics(3, testTopic))
	brokers := c.ListenAddrs()
	o := newTestOutput(t, testConfig(brokers))

	if got := o.Status(); got.State != stateConnecting || got.Connected || got.Name != "kafka" || got.URL != strings.Join(brokers, ",") {
		t.Fatalf("status before publishing: %+v", got)
	}

	// Three sensors, one a BME280 with two quantities: four series.
	const batches, per = 5, 8
	var want []reading.Reading
	ctx := context.Background()
	for b := range batches {
		from := uint64(b*per + 1)
		batch := interleave(
			readings("air", reading.Temperature, from, per),
			readings("i2c-1-0x76", reading.Humidity, from, per),
			readings("i2c-1-0x76", reading.Temperature, from, per),
			readings("28-0316a2b8ff01", reading.Temperature, from, per),
		)
		if err := o.Publish(ctx, batch); err != nil {
			t.Fatalf("publish batch %d: %v", b, err)
		}
		want = append(want, batch...)
	}

	st := o.Status()
	if st.State != stateConnected || !st.Connected || st.LastError != "" {
		t.Errorf("status after publishing: %+v", st)
	}
	if st.Sent != uint64(len(want)) {
		t.Errorf("Sent = %d, want %d", st.Sent, len(want))
	}
	var wantBytes uint64
	wantJSON := map[string]string{} // "sensor/quantity/seq" → JSON
	for i := range want {
		j := string(want[i].AppendJSON(nil))
		wantBytes += uint64(len(j))
		wantJSON[id(want[i].Sensor, want[i].Quantity, want[i].Seq)] = j
	}
	if st.Bytes != wantBytes {
		t.Errorf("Bytes = %d, want %d", st.Bytes, wantBytes)
	}

	recs := consume(t, brokers, testTopic, len(want))
	if len(recs) != len(want) {
		t.Fatalf("consumed %d records, want %d", len(recs), len(want))
	}
	partitionOf := map[string]int32{}
	lastSeq := map[string]uint64{} // per key and quantity
	for _, r := range recs {
		h := map[string]string{}
		for _, kv := range r.Headers {
			h[kv.Key] = string(kv.Value)
		}
		if len(h) != 3 || h["agent"] != testAgent || h["sensor"] == "" || h["quantity"] == "" {
			t.Fatalf("headers %v", r.Headers)
		}
		if wantKey := testAgent + "/" + h["sensor"]; string(r.Key) != wantKey {
			t.Errorf("key %q, want %q", r.Key, wantKey)
		}
		seq := seqOf(t, r.Value)
		j, ok := wantJSON[id(h["sensor"], h["quantity"], seq)]
		if !ok {
			t.Fatalf("unexpected record %s", r.Value)
		}
		if string(r.Value) != j {
			t.Errorf("value\n got %s\nwant %s", r.Value, j)
		}
		if wantTime := t0.Add(time.Duration(seq) * time.Second); !r.Timestamp.Equal(wantTime) {
			t.Errorf("timestamp %v, want the reading's time %v", r.Timestamp, wantTime)
		}
		// One partition per key, readings in order within a series.
		if p, ok := partitionOf[string(r.Key)]; ok && p != r.Partition {
			t.Errorf("key %s in partitions %d and %d", r.Key, p, r.Partition)
		}
		partitionOf[string(r.Key)] = r.Partition
		s := h["sensor"] + "/" + h["quantity"]
		if seq != lastSeq[s]+1 {
			t.Errorf("%s: seq %d after %d", s, seq, lastSeq[s])
		}
		lastSeq[s] = seq
	}
	if len(partitionOf) != 3 {
		t.Errorf("%d keys, want 3: %v", len(partitionOf), partitionOf)
	}
}

func id(sensor, quantity string, seq uint64) string {
	return sensor + "/" + quantity + "/" + strconv.FormatUint(seq, 10)
}

// TestMissingTopic: a topic that does not exist (and that the cluster does
// not create) fails the output, which recovers once the topic is created.
func TestMissingTopic(t *testing.T) {
	t.Parallel()
	c := startCluster(t, kfake.NumBrokers(1))
	cfg := testConfig(c.ListenAddrs())
	cfg.Topic = "kelvin.{agent}.{quantity}"
	// The production delivery timeout: kgo gives up on a missing topic
	// after 4 metadata requests a second apart, and only then says why.
	o, err := newOutput(cfg, testAgent, testLogger(t), options{})
	must(t, err)
	t.Cleanup(o.Close)
	ctx := context.Background()
	batch := readings("air", reading.Temperature, 1, 5)

	start := time.Now()
	err = o.Publish(ctx, batch)
	t.Logf("failed after %v", time.Since(start))
	if err == nil {
		t.Fatal("publish to a missing topic succeeded")
	}
	t.Logf("missing topic: %v", err)
	st := o.Status()
	if st.State != stateFailed || !strings.Contains(st.LastError, "UNKNOWN_TOPIC_OR_PARTITION") || !strings.Contains(st.LastError, "kelvin.greenhouse-1.temperature") {
		t.Errorf("status %+v", st)
	}

	must(t, c.CreateTopic("kelvin.greenhouse-1.temperature", 2, nil))
	must(t, o.Publish(ctx, batch))
	if st := o.Status(); st.State != stateConnected || st.Sent != uint64(len(batch)) {
		t.Errorf("status after the topic was created: %+v", st)
	}
}

func TestPublishCanceled(t *testing.T) {
	t.Parallel()
	// A port nothing listens on: Publish can only end by its context.
	o := newTestOutput(t, testConfig([]string{"127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Publish(ctx, readings("air", reading.Temperature, 1, 3)) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a canceled context: %v, want context.Canceled", err)
	}
	if st := o.Status(); st.State == stateConnected || st.Sent != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	c := startCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, testTopic))
	o := newTestOutput(t, testConfig(c.ListenAddrs()))
	must(t, o.Publish(context.Background(), readings("air", reading.Temperature, 1, 3)))
	o.Close()
	o.Close() // twice is fine
	if err := o.Publish(context.Background(), readings("air", reading.Temperature, 4, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
	if err := o.Publish(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("empty Publish after Close: %v, want ErrClosed", err)
	}
	if st := o.Status(); st.Sent != 3 || st.Name != "kafka" {
		t.Errorf("status after Close: %+v", st)
	}
}

func TestEmptyBatch(t *testing.T) {
	t.Parallel()
	o := newTestOutput(t, testConfig([]string{"127.0.0.1:9"}))
	if err := o.Publish(context.Background(), nil); err != nil {
		t.Errorf("empty Publish: %v", err)
	}
	if st := o.Status(); st.State != stateConnecting {
		t.Errorf("state after an empty Publish: %q", st.State)
	}
}

// TestFormats: kafka.format picks the record value; each is exactly what
// reading.Format produces (its golden tests pin the bytes); keys and
// headers do not change.
func TestFormats(t *testing.T) {
	t.Parallel()
	c := startCluster(t, kfake.SeedTopics(1, testTopic))
	brokers := c.ListenAddrs()
	r := readings("air", reading.Temperature, 1, 1)[0]
	for i, format := range []string{"json", "influx", "value", "senml"} {
		cfg := testConfig(brokers)
		cfg.Format = format
		must(t, errors.Join(cfg.Validate()...))
		o := newTestOutput(t, cfg)
		rr := r
		rr.Seq = uint64(i + 1)
		if err := o.Publish(context.Background(), []reading.Reading{rr}); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
	}
	recs := consume(t, brokers, testTopic, 4)
	for i, format := range []string{"json", "influx", "value", "senml"} {
		f, _ := reading.ParseFormat(format)
		rr := r
		rr.Seq = uint64(i + 1)
		if want := f.Append(nil, &rr); string(recs[i].Value) != string(want) {
			t.Errorf("%s: value %s, want %s", format, recs[i].Value, want)
		}
		if string(recs[i].Key) != r.Agent+"/air" {
			t.Errorf("%s: key %s", format, recs[i].Key)
		}
	}
	cfg := testConfig(brokers)
	cfg.Format = "xml"
	if errs := cfg.Validate(); len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "format: ") {
		t.Errorf("format xml: %v, want one error on format", errs)
	}
}
