package mqtt

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/publish"
	"github.com/kelvin-gw/kelvin/publish/publishtest"
)

// The delivery guarantee end to end: Forward from a Queue to the Client,
// through a proxy the test cuts, to a real broker and a subscriber that must
// see every seq at least once, in order, with no gap.

// fastRetry makes Forward retry quickly.
var fastRetry = publish.ForwardOptions{Batch: 100, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}

// seqsOf returns the seqs of the readings among ms (the status messages
// aside).
func seqsOf(t testing.TB, ms []msg, status string) []uint64 {
	t.Helper()
	var out []uint64
	for _, m := range ms {
		if m.Topic != status {
			out = append(out, seqOf(t, m.Payload))
		}
	}
	return out
}

func contains(seqs []uint64, s uint64) bool {
	for _, v := range seqs {
		if v == s {
			return true
		}
	}
	return false
}

func outageSetup(t *testing.T, agent string, extraConf ...string) (*testenv.Mosquitto, *testenv.Proxy, *started, *publishtest.Queue) {
	t.Helper()
	m := testenv.StartMosquitto(t, extraConf...)
	p := testenv.StartProxy(t, fmt.Sprintf("127.0.0.1:%d", m.Port))
	cfg := DefaultConfig()
	cfg.URL = "tcp://" + p.Addr()
	c := start(t, cfg, agent)
	c.waitConnected(t)
	return m, p, c, publishtest.NewQueue(100_000)
}

// All readings pushed while the broker is down arrive once it is back.
func TestForwardBrokerDownThenUp(t *testing.T) {
	const n = 1000
	m, p, c, q := outageSetup(t, "o1")
	forward(t, q, c, fastRetry)

	p.Pause() // the client cannot reconnect before the new subscriber is there
	m.Stop()
	testenv.WaitFor(t, "client disconnected", func() bool { return !c.Status().Connected })
	for i, r := range testReadings("o1", n) {
		r.Sensor, r.Quantity = "air", "temperature"
		if q.Push(r) {
			t.Fatalf("reading %d dropped", i+1)
		}
	}
	m.Start()
	sub := subscribe(t, m.URL, "kelvin/o1/air", 1)
	p.Resume()

	got := sub.wait(t, fmt.Sprintf("seq %d", n), func(ms []msg) bool {
		return len(ms) > 0 && seqOf(t, ms[len(ms)-1].Payload) == n
	})
	dups := checkNoGap(t, seqsOf(t, got, ""), 1, n)
	testenv.WaitFor(t, "queue empty", func() bool { return q.Len() == 0 })
	t.Logf("%d readings, %d duplicates", n, dups)
}

// The connection is cut (RST) several times while a stream is in flight; the
// broker and the subscriber stay up, so the subscriber must see everything.
func TestForwardConnectionCutMidStream(t *testing.T) {
	const n, cuts = 6000, 3
	m, p, c, q := outageSetup(t, "o2")
	sub := subscribe(t, m.URL, "kelvin/o2/#", 1)
	for _, r := range testReadings("o2", n) {
		r.Sensor, r.Quantity = "air", "temperature"
		q.Push(r)
	}
	forward(t, q, c, fastRetry)
	last := time.Now()
	for k := int64(1); k <= cuts; k++ {
		// A cut while paho takes a message of the batch holds that
		// message up to paho's write timeout, and Run waits for it
		// before it reconnects (see Client.Run): recovery may take
		// writeTimeout and a reconnection, more on a loaded runner.
		testenv.WaitForWithin(t, 4*writeTimeout, "progress before a cut", func() bool { return sub.count.Load() >= k*n/(cuts+1) })
		p.Kill()
		t.Logf("cut %d after %d messages (%v after the previous one), %d readings queued",
			k, sub.count.Load(), time.Since(last).Round(time.Millisecond), q.Len())
		last = time.Now()
	}
	got := sub.wait(t, fmt.Sprintf("seq %d", n), func(ms []msg) bool {
		s := seqsOf(t, ms, "kelvin/o2/status")
		return len(s) > 0 && s[len(s)-1] == n
	})
	dups := checkNoGap(t, seqsOf(t, got, "kelvin/o2/status"), 1, n)
	t.Logf("%d readings, %d duplicates", n, dups)
}

var receivedPublish = regexp.MustCompile(`Received PUBLISH from kelvin-o3 \(d\d, q\d, r\d, m\d+, 'kelvin/o3/s(\d+)'`)

// The broker is killed mid-stream and restarted empty (no persistence).
// Readings it had received and not yet passed to the subscriber die with it:
// that is the broker's loss, not the client's, so the test tells them apart
// with the broker's own log of what it received (each reading has its own
// topic for that). Everything else must arrive, in order, without gaps.
func TestForwardBrokerDiesMidStream(t *testing.T) {
	const n = 3000
	m, p, c, q := outageSetup(t, "o3", "log_type debug")
	sub1 := subscribe(t, m.URL, "kelvin/o3/+", 1)
	for _, r := range testReadings("o3", n) {
		r.Sensor, r.Quantity = "s"+strconv.FormatUint(r.Seq, 10), "temperature"
		q.Push(r)
	}
	forward(t, q, c, fastRetry)

	testenv.WaitFor(t, "a third of the stream", func() bool { return sub1.count.Load() >= n/3 })
	p.Pause()
	m.Stop()
	if q.Len() == 0 {
		t.Skip("the whole stream was delivered before the broker was killed: nothing to test")
	}
	t.Logf("broker killed after %d messages, %d readings queued", sub1.count.Load(), q.Len())
	oldLog := m.Log()
	m.Start()
	sub2 := subscribe(t, m.URL, "kelvin/o3/+", 1)
	p.Resume()

	const status = "kelvin/o3/status"
	got2 := sub2.wait(t, fmt.Sprintf("seq %d", n), func(ms []msg) bool {
		s := seqsOf(t, ms, status)
		return len(s) > 0 && s[len(s)-1] == n
	})
	s1, s2 := seqsOf(t, sub1.snapshot(), status), seqsOf(t, got2, status)
	if len(s1) == 0 || len(s2) == 0 {
		t.Fatalf("subscriber 1 got %d readings, subscriber 2 %d", len(s1), len(s2))
	}
	last1 := s1[len(s1)-1]
	checkNoGap(t, s1, 1, last1)
	checkNoGap(t, s2, s2[0], n)

	var brokerGot []uint64
	for _, m := range receivedPublish.FindAllStringSubmatch(oldLog, -1) {
		s, _ := strconv.ParseUint(m[1], 10, 64)
		brokerGot = append(brokerGot, s)
	}
	lost := 0
	for s := last1 + 1; s < s2[0]; s++ {
		if !contains(brokerGot, s) {
			t.Fatalf("seq %d: neither subscriber got it and the old broker never received it: lost by the client", s)
		}
		lost++
	}
	t.Logf("subscriber 1 got 1..%d, subscriber 2 %d..%d; %d lost with the broker", last1, s2[0], n, lost)
}
