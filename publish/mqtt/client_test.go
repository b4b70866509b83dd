package mqtt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

func TestRoundTrip(t *testing.T) {
	m := testenv.StartMosquitto(t)
	for _, qos := range []int{0, 1, 2} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			agent := fmt.Sprintf("greenhouse-%d", qos)
			sub := subscribe(t, m.URL, "kelvin/"+agent+"/#", 2)
			cfg := DefaultConfig()
			cfg.URL, cfg.QoS, cfg.MultiQuantity = m.URL, qos, multiBME
			c := start(t, cfg, agent)
			c.waitConnected(t)

			const n = 300
			batch := testReadings(agent, n)
			c.publish(t, batch[:256])
			c.publish(t, batch[256:])

			status := "kelvin/" + agent + "/status"
			var got []msg
			sub.wait(t, fmt.Sprintf("%d readings", n), func(ms []msg) bool {
				got = got[:0]
				for _, m := range ms {
					if m.Topic != status {
						got = append(got, m)
					}
				}
				return len(got) >= n
			})
			var bytes uint64
			for i, r := range batch {
				want := "kelvin/" + agent + "/air"
				if r.Sensor == "bme" {
					want = "kelvin/" + agent + "/bme/" + r.Quantity
				}
				payload := string(r.AppendJSON(nil))
				bytes += uint64(len(payload))
				if got[i].Topic != want || !sameJSON(t, got[i].Payload, payload) {
					t.Fatalf("message %d: %s %s, want %s %s", i, got[i].Topic, got[i].Payload, want, payload)
				}
				if got[i].Retained {
					t.Fatalf("message %d retained, want not", i)
				}
			}
			if len(got) != n {
				t.Errorf("received %d readings, want %d", len(got), n)
			}
			st := c.Status()
			if st.Name != "mqtt" || st.URL != m.URL || st.State != "connected" || !st.Connected ||
				st.Sent != n || st.Bytes != bytes || st.LastError != "" {
				t.Errorf("Status = %+v, want connected to %s, %d sent, %d bytes", st, m.URL, n, bytes)
			}
		})
	}
}

func TestOnlineRetainedAndReadingsNotRetained(t *testing.T) {
	m := testenv.StartMosquitto(t)
	const agent = "a1"
	live := subscribe(t, m.URL, "kelvin/a1/status", 1)
	cfg := DefaultConfig()
	cfg.URL = m.URL
	c := start(t, cfg, agent)
	c.waitConnected(t)
	live.wait(t, "online", func(ms []msg) bool { return len(ms) > 0 && ms[len(ms)-1].Payload == "online" })
	c.publish(t, testReadings(agent, 4))

	// A new subscriber gets the retained status and no reading: the
	// retained messages come right after the subscription, before the
	// marker it publishes itself.
	late := subscribe(t, m.URL, "kelvin/a1/#", 1)
	if tok := late.pc.Publish("kelvin/a1/marker", 1, false, "m"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("marker: %v", tok.Error())
	}
	got := late.wait(t, "marker", func(ms []msg) bool { return len(ms) > 0 && ms[len(ms)-1].Topic == "kelvin/a1/marker" })
	if want := []msg{{"kelvin/a1/status", "online", true}, {"kelvin/a1/marker", "m", false}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("late subscriber got %v, want %v", got, want)
	}
}

func TestRetain(t *testing.T) {
	m := testenv.StartMosquitto(t)
	cfg := DefaultConfig()
	cfg.URL, cfg.Retain, cfg.MultiQuantity = m.URL, true, multiBME
	c := start(t, cfg, "a2")
	c.waitConnected(t)
	batch := testReadings("a2", 6) // air 1, bme/temperature 2, air 3, bme/humidity 4, air 5, bme/pressure 6
	c.publish(t, batch)
	want := map[string]uint64{"kelvin/a2/air": 5, "kelvin/a2/bme/temperature": 2, "kelvin/a2/bme/humidity": 4, "kelvin/a2/bme/pressure": 6}
	late := subscribe(t, m.URL, "kelvin/a2/+/#", 1)
	got := late.wait(t, "4 retained readings and the status", func(ms []msg) bool { return len(ms) >= len(want)+1 })
	for _, g := range got {
		if g.Topic == "kelvin/a2/status" {
			continue
		}
		if !g.Retained || want[g.Topic] != seqOf(t, g.Payload) {
			t.Errorf("got %v: want retained seq %d", g, want[g.Topic])
		}
	}
}

func TestWillOnConnectionLoss(t *testing.T) {
	m := testenv.StartMosquitto(t)
	p := testenv.StartProxy(t, fmt.Sprintf("127.0.0.1:%d", m.Port))
	const status = "kelvin/green_house_1/status"
	live := subscribe(t, m.URL, status, 1)
	cfg := DefaultConfig()
	cfg.URL = "tcp://" + p.Addr()
	c := start(t, cfg, "green/house+1") // sanitised in topics
	c.waitConnected(t)
	live.wait(t, "online", func(ms []msg) bool { return len(ms) > 0 && ms[len(ms)-1].Payload == "online" })

	p.Pause() // no reconnection, so the will stays the last word
	p.Kill()
	live.wait(t, "offline (the will)", func(ms []msg) bool { return ms[len(ms)-1].Payload == "offline" })
	if r := retained(t, m.URL, status); r != (msg{status, "offline", true}) {
		t.Fatalf("retained status = %v, want offline", r)
	}
	testenv.WaitFor(t, "status disconnected", func() bool { return !c.Status().Connected })
	st := c.Status()
	// The loss, or a failed reconnection attempt since.
	if st.State == "connected" || !strings.Contains(st.LastError, "connect") || st.ErrorTime.IsZero() {
		t.Errorf("Status = %+v, want a lost connection", st)
	}
	err := c.Publish(context.Background(), testReadings("x", 1))
	if !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Publish while disconnected = %v, want ErrNotConnected", err)
	}

	p.Resume()
	c.waitConnected(t)
	live.wait(t, "online again", func(ms []msg) bool { return ms[len(ms)-1].Payload == "online" })
}

func TestCleanShutdownPublishesOffline(t *testing.T) {
	m := testenv.StartMosquitto(t)
	live := subscribe(t, m.URL, "kelvin/a3/status", 1)
	cfg := DefaultConfig()
	cfg.URL = m.URL
	c := start(t, cfg, "a3")
	c.waitConnected(t)
	live.wait(t, "online", func(ms []msg) bool { return len(ms) > 0 && ms[len(ms)-1].Payload == "online" })
	c.stop(t)
	got := live.wait(t, "offline", func(ms []msg) bool { return ms[len(ms)-1].Payload == "offline" })
	if len(got) != 2 {
		t.Errorf("status messages %v, want online, offline", got)
	}
	if r := retained(t, m.URL, "kelvin/a3/status"); r.Payload != "offline" || !r.Retained {
		t.Fatalf("retained status = %v, want offline", r)
	}
	if st := c.Status(); st.State != "disconnected" || st.Connected {
		t.Errorf("Status after Run = %+v, want disconnected", st)
	}
}

func TestPublishNotConnected(t *testing.T) {
	cfg := DefaultConfig()
	cfg.URL = fmt.Sprintf("tcp://127.0.0.1:%d", testenv.FreePort(t))
	c, err := New(cfg, "a4", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(context.Background(), testReadings("a4", 3)); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Publish before Run = %v, want ErrNotConnected", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Publish(ctx, testReadings("a4", 3)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with a done ctx = %v, want context.Canceled", err)
	}
	if st := c.Status(); st.State != "disconnected" || st.Sent != 0 {
		t.Fatalf("Status = %+v", st)
	}
}

// A broker that is not there: Run keeps retrying and returns nil on cancel.
func TestRunRetriesAndCancels(t *testing.T) {
	cfg := DefaultConfig()
	cfg.URL = fmt.Sprintf("tcp://127.0.0.1:%d", testenv.FreePort(t))
	c := start(t, cfg, "a5")
	testenv.WaitFor(t, "a connection error in Status", func() bool { return c.Status().LastError != "" })
	st := c.Status()
	if st.Connected || !strings.Contains(st.LastError, "connect") {
		t.Errorf("Status = %+v, want a connect error", st)
	}
	c.stop(t)
}

// readableDir returns a temporary directory that mosquitto can read after
// dropping its privileges (when the tests run as root).
func readableDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPassword(t *testing.T) {
	passwd := testenv.Require(t, "mosquitto_passwd", "mosquitto")
	dir := readableDir(t)
	brokerFile := filepath.Join(dir, "passwd")
	if out, err := exec.Command(passwd, "-b", "-c", brokerFile, "kelvin", "s3cret").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
	}
	os.Chmod(brokerFile, 0o644)
	m := testenv.StartMosquitto(t, "password_file "+brokerFile, "allow_anonymous false")

	good := filepath.Join(dir, "good")
	bad := filepath.Join(dir, "bad")
	os.WriteFile(good, []byte("s3cret\n"), 0o600)
	os.WriteFile(bad, []byte("wrong\n"), 0o600)

	t.Run("right password", func(t *testing.T) {
		sub := subscribe(t, strings.Replace(m.URL, "tcp://", "tcp://kelvin:s3cret@", 1), "kelvin/a6/air", 1)
		cfg := DefaultConfig()
		cfg.URL, cfg.Username, cfg.PasswordFile = m.URL, "kelvin", good
		c := start(t, cfg, "a6")
		c.waitConnected(t)
		c.publish(t, testReadings("a6", 1))
		sub.wait(t, "the reading", func(ms []msg) bool { return len(ms) == 1 })
	})
	t.Run("wrong password", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.URL, cfg.Username, cfg.PasswordFile = m.URL, "kelvin", bad
		c := start(t, cfg, "a7")
		testenv.WaitFor(t, "an error in Status", func() bool { return c.Status().LastError != "" })
		st := c.Status()
		if st.Connected || st.State == "connected" || !strings.Contains(strings.ToLower(st.LastError), "not authorized") {
			t.Errorf("Status = %+v, want not authorized", st)
		}
		if err := c.Publish(context.Background(), testReadings("a7", 1)); !errors.Is(err, ErrNotConnected) {
			t.Errorf("Publish = %v, want ErrNotConnected", err)
		}
	})
	t.Run("password in the URL is not shown", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.URL = strings.Replace(m.URL, "tcp://", "tcp://kelvin:s3cret@", 1)
		c := start(t, cfg, "a8")
		c.waitConnected(t)
		if st := c.Status(); strings.Contains(st.URL, "s3cret") || !strings.Contains(st.URL, "kelvin@") {
			t.Errorf("Status.URL = %q, want the user without the password", st.URL)
		}
	})
}

func TestWebSocket(t *testing.T) {
	wsPort := testenv.FreePort(t)
	m := testenv.StartMosquitto(t, fmt.Sprintf("listener %d 127.0.0.1", wsPort), "protocol websockets")
	sub := subscribe(t, m.URL, "kelvin/a9/air", 1)
	cfg := DefaultConfig()
	cfg.URL = fmt.Sprintf("ws://127.0.0.1:%d", wsPort)
	c := start(t, cfg, "a9")
	c.waitConnected(t)
	c.publish(t, testReadings("a9", 1))
	got := sub.wait(t, "the reading", func(ms []msg) bool { return len(ms) == 1 })
	if seqOf(t, got[0].Payload) != 1 {
		t.Fatalf("got %v", got)
	}
}

// TestFormats: mqtt.format picks the payload; each is exactly what
// reading.Format produces (whose golden tests pin the bytes), as a real
// subscriber receives it. The golden of each is repeated here for one
// reading so that a change in the wiring shows.
func TestFormats(t *testing.T) {
	m := testenv.StartMosquitto(t)
	r := reading.Reading{Agent: "gh", Sensor: "air", Quantity: reading.Temperature, Unit: "°C",
		Value: 21.43, Raw: 21.5, Time: time.Date(2026, 11, 23, 7, 0, 0, 123e6, time.UTC), Seq: 42}
	for format, want := range map[string]string{
		"json":   `{"agent":"gh","sensor":"air","quantity":"temperature","value":21.43,"raw":21.5,"unit":"°C","ts":"2026-11-23T07:00:00.123Z","seq":42}`,
		"influx": `temperature,agent=gh,sensor=air,unit=°C value=21.43,raw=21.5,seq=42i 1795417200123000000`,
		"value":  `21.43`,
		"senml":  "",
	} {
		t.Run(format, func(t *testing.T) {
			f, err := reading.ParseFormat(format)
			if err != nil {
				t.Fatal(err)
			}
			if want == "" {
				want = string(f.Append(nil, &r))
			}
			if got := string(f.Append(nil, &r)); got != want {
				t.Fatalf("reading.Format %s = %s, want %s", format, got, want)
			}
			sub := subscribe(t, m.URL, "kelvin/gh/air", 1)
			cfg := DefaultConfig()
			cfg.URL, cfg.Format = m.URL, format
			c := start(t, cfg, "gh")
			c.waitConnected(t)
			c.publish(t, []reading.Reading{r})
			got := sub.wait(t, "the reading", func(ms []msg) bool { return len(ms) > 0 })
			if got[0].Payload != want {
				t.Errorf("payload %s, want %s", got[0].Payload, want)
			}
			c.stop(t)
		})
	}
	if err := (Config{URL: m.URL, Format: "xml"}).Validate(); err == nil || !strings.Contains(err.Error(), "format") {
		t.Errorf("format xml: %v, want an error naming format", err)
	}
}

// TestRestartAnnouncedWhenConnected: the agent connects while it opens the
// buffer, so the announcement may be set after the connection is up; it is
// then published at once, not only at the next connection.
func TestRestartAnnouncedWhenConnected(t *testing.T) {
	m := testenv.StartMosquitto(t)
	cfg := DefaultConfig()
	cfg.URL = m.URL
	c := start(t, cfg, "a5")
	c.waitConnected(t)
	// What the agent does: the connection is up before it knows what to
	// announce (it connects while the buffer opens).
	c.AnnounceSkipped(time.Unix(1_900_000_000, 0), map[string][2]uint64{"s": {1743, 65536}})
	want := `{"started":"2030-03-17T17:46:40Z","seq_resume":{"s":65537},"skip_from":{"s":1743}}`
	testenv.WaitFor(t, "the skipped range announced while connected", func() bool {
		return retained(t, m.URL, "kelvin/a5/restart").Payload == want
	})
}

// TestPublishBatchInOneWrite: with one P, as the agent runs, each batch
// reaches the broker in one write call, and batches in a row (each reusing
// the payload buffer of the one before) arrive intact and in order.
func TestPublishBatchInOneWrite(t *testing.T) {
	m := testenv.StartMosquitto(t)
	for _, qos := range []int{0, 1} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			agent := fmt.Sprintf("onewrite-%d", qos)
			status := "kelvin/" + agent + "/status"
			sub := subscribe(t, m.URL, "kelvin/"+agent+"/#", 1)
			cfg := DefaultConfig()
			cfg.URL, cfg.QoS = m.URL, qos
			c := start(t, cfg, agent)
			c.waitConnected(t)
			// The "online" status is written before the batches.
			sub.wait(t, "online", func(ms []msg) bool { return len(ms) > 0 })
			conn := c.conn.Load()
			if conn == nil {
				t.Fatal("no bufConn for a tcp:// broker")
			}
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))

			const batches, n = 5, 8
			all := testReadings(agent, batches*n)
			for b := range batches {
				before := conn.writeCalls()
				c.publish(t, all[b*n:(b+1)*n])
				if w := conn.writeCalls() - before; w != 1 {
					t.Errorf("batch %d of %d messages went out in %d writes, want 1", b+1, n, w)
				}
			}
			var got []msg
			sub.wait(t, fmt.Sprintf("%d readings", len(all)), func(ms []msg) bool {
				got = got[:0]
				for _, m := range ms {
					if m.Topic != status {
						got = append(got, m)
					}
				}
				return len(got) >= len(all)
			})
			for i, r := range all {
				if !sameJSON(t, got[i].Payload, string(r.AppendJSON(nil))) {
					t.Fatalf("message %d: %s, want %s", i, got[i].Payload, r.AppendJSON(nil))
				}
			}
		})
	}
}

// TestPublishReusesPayloadsOnlyAfterSuccess: the payload buffer of an
// acknowledged batch serves the next one; after a failed batch, whose
// payloads paho may still hold, the next batch gets a new buffer and
// arrives intact.
func TestPublishReusesPayloadsOnlyAfterSuccess(t *testing.T) {
	m := testenv.StartMosquitto(t)
	const agent = "reuse"
	sub := subscribe(t, m.URL, "kelvin/"+agent+"/#", 1)
	cfg := DefaultConfig()
	cfg.URL = m.URL
	c := start(t, cfg, agent)
	c.waitConnected(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))

	all := testReadings(agent, 24)
	c.publish(t, all[:8])
	if c.payloads == nil {
		t.Fatal("no payload buffer kept after an acknowledged batch")
	}
	kept := &c.payloads[:1][0]

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go cancel() // with one P, runs when Publish first waits on paho: mid-batch
	if err := c.Publish(ctx, all[8:16]); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish cancelled mid-batch = %v, want context.Canceled", err)
	}
	if c.payloads != nil {
		t.Fatal("payload buffer kept after a failed batch")
	}

	c.publish(t, all[16:])
	if c.payloads == nil || &c.payloads[:1][0] == kept {
		t.Fatal("the batch after a failure reused the failed batch's buffer")
	}
	want := map[uint64]string{}
	for _, r := range all[16:] {
		want[r.Seq] = string(r.AppendJSON(nil))
	}
	status := "kelvin/" + agent + "/status"
	sub.wait(t, "the last batch", func(ms []msg) bool {
		seen := map[uint64]bool{}
		for _, m := range ms {
			if m.Topic == status {
				continue
			}
			if s := seqOf(t, m.Payload); s > 16 {
				if !sameJSON(t, m.Payload, want[s]) {
					t.Fatalf("seq %d: %s, want %s", s, m.Payload, want[s])
				}
				seen[s] = true
			}
		}
		return len(seen) == len(want)
	})
}
