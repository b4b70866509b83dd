//go:build !nokafka

package kafka

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/publish"
	"github.com/kelvin-gw/kelvin/publish/publishtest"
	"github.com/kelvin-gw/kelvin/reading"
)

// TestOutage cuts the cluster off mid-stream and brings a new one up on the
// same ports (with the same data directory, as a restarted broker would
// have): publish.Forward keeps re-sending, and a consumer sees every seq of
// every series, in order, with duplicates but no gap.
func TestOutage(t *testing.T) {
	t.Parallel()
	ports := []int{testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)}
	dir := t.TempDir()
	clusterOpts := []kfake.Opt{kfake.Ports(ports...), kfake.DataDir(dir), kfake.SeedTopics(3, testTopic)}
	c, err := kfake.NewCluster(clusterOpts...)
	must(t, err)
	brokers := c.ListenAddrs()
	o := newTestOutput(t, testConfig(brokers))

	q := publishtest.NewQueue(100_000)
	ctx, cancel := context.WithCancel(context.Background())
	fwdDone := make(chan error, 1)
	out := &countingOutput{Output: o}
	go func() {
		fwdDone <- publish.Forward(ctx, q, out, publish.ForwardOptions{Batch: 50, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}, testLogger(t))
	}()
	defer func() {
		cancel()
		if err := <-fwdDone; err != nil {
			t.Errorf("forward: %v", err)
		}
	}()

	sensors := []struct{ sensor, quantity string }{
		{"air", reading.Temperature},
		{"i2c-1-0x76", reading.Humidity},
		{"28-0316a2b8ff01", reading.Temperature},
	}
	const phase = 200 // readings per series per phase
	push := func(p int) {
		var parts [][]reading.Reading
		for _, s := range sensors {
			parts = append(parts, readings(s.sensor, s.quantity, uint64(p*phase+1), phase))
		}
		for _, r := range interleave(parts...) {
			if q.Push(r) {
				t.Fatal("queue dropped a reading")
			}
		}
	}

	// Phase 1: all delivered.
	push(0)
	testenv.WaitFor(t, "phase 1 delivered", func() bool { return q.Len() == 0 })

	// Phase 2: the cluster dies while Forward is sending, and more
	// readings come while it is down (phase 2's may all have been sent
	// before the close: these cannot be).
	push(1)
	c.Close()
	push(2)
	testenv.WaitFor(t, "a failed publish", func() bool { return out.failures.Load() > 0 })
	st := o.Status()
	t.Logf("during the outage: %+v", st)
	if st.State != stateDisconnected || st.Connected || st.LastError == "" || st.ErrorTime.IsZero() {
		t.Errorf("status during the outage: %+v", st)
	}

	// Phase 3: a new cluster on the same ports.
	c, err = kfake.NewCluster(clusterOpts...)
	must(t, err)
	defer c.Close()
	testenv.WaitFor(t, "every reading delivered after the restart", func() bool { return q.Len() == 0 })
	if st := o.Status(); st.State != stateConnected || !st.Connected {
		t.Errorf("after recovery: %+v", st)
	}

	total := 3 * phase * len(sensors)
	recs := consume(t, brokers, testTopic, total)
	byKey := map[string][]uint64{}
	for _, r := range recs {
		k := string(r.Key) + "/" + header(r.Headers, "quantity")
		byKey[k] = append(byKey[k], seqOf(t, r.Value))
	}
	if len(byKey) != len(sensors) {
		t.Fatalf("%d series, want %d", len(byKey), len(sensors))
	}
	dups := 0
	for k, seqs := range byKey {
		dups += checkNoGaps(t, k, seqs, 3*phase)
	}
	t.Logf("%d records consumed for %d readings: %d duplicates", len(recs), total, dups)
	if o.Status().Sent < uint64(total) {
		t.Errorf("Sent = %d, want at least %d", o.Status().Sent, total)
	}
}

// TestPublishFailsWhenDown checks Publish gives up by itself, within its
// delivery timeout, when no broker answers, and that the same batch goes
// through once a cluster is back.
func TestPublishFailsWhenDown(t *testing.T) {
	t.Parallel()
	port := testenv.FreePort(t)
	c, err := kfake.NewCluster(kfake.Ports(port), kfake.SeedTopics(1, testTopic))
	must(t, err)
	clock := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	o, err := newOutput(testConfig(c.ListenAddrs()), testAgent, testLogger(t),
		options{deliveryTimeout: testDeliveryTimeout, now: func() time.Time { return clock }})
	must(t, err)
	t.Cleanup(o.Close)
	batch := readings("air", reading.Temperature, 1, 10)
	must(t, o.Publish(context.Background(), batch))
	c.Close()

	// A generous context: Publish must fail on its own, not because of it.
	ctx, cancel := context.WithTimeout(context.Background(), 15*testDeliveryTimeout/2)
	defer cancel()
	err = o.Publish(ctx, batch)
	if err == nil || errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		t.Fatalf("publish to a dead cluster: %v (want its own error before the caller's deadline)", err)
	}
	t.Logf("publish to a dead cluster: %v", err)
	if st := o.Status(); st.State != stateDisconnected || st.LastError != err.Error() || !st.ErrorTime.Equal(clock) {
		t.Errorf("status %+v", st)
	}

	startCluster(t, kfake.Ports(port), kfake.SeedTopics(1, testTopic))
	deadline, cancel2 := context.WithTimeout(context.Background(), 15*testDeliveryTimeout/2)
	defer cancel2()
	for {
		err := o.Publish(deadline, batch)
		if err == nil {
			break
		}
		if deadline.Err() != nil {
			t.Fatalf("publish after restart: %v", err)
		}
	}
	if st := o.Status(); st.State != stateConnected {
		t.Errorf("status after restart %+v", st)
	}
}

// countingOutput counts the Publish calls that failed.
type countingOutput struct {
	*Output
	failures atomic.Int64
}

func (c *countingOutput) Publish(ctx context.Context, batch []reading.Reading) error {
	err := c.Output.Publish(ctx, batch)
	if err != nil {
		c.failures.Add(1)
	}
	return err
}

func header(hs []kgo.RecordHeader, key string) string {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
