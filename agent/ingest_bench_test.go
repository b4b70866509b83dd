package agent

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// ingestAgent runs an agent with n sensors of type typ (s0, s1, ...) and
// the default buffer, and returns it with the page's port.
func ingestAgent(b *testing.B, typ string, n int, extra string) (*Agent, int) {
	var sb strings.Builder
	for i := range n {
		if typ == "mqtt" {
			fmt.Fprintf(&sb, "  - { id: s%d, type: mqtt, topic: dev/s%d }\n", i, i)
		} else {
			fmt.Fprintf(&sb, "  - { id: s%d, type: %s }\n", i, typ)
		}
	}
	port := testenv.FreePort(b)
	// Every client is on 127.0.0.1: allow them all connections at once.
	a := startAgent(b, fmt.Sprintf("agent: { id: bi, data_dir: %s, clock: trust }\nhttp: { listen: \"127.0.0.1:%d\", max_connections_per_address: 128 }\n%s\nsensors:\n%s",
		b.TempDir(), port, extra, sb.String()))
	return a, port
}

// BenchmarkIngestHTTP: readings pushed over HTTP on loopback by 64
// concurrent clients, each request answered 202 only once durable (so a
// request waits for the next group commit, at most buffer.sync = 1 s).
// An op is one round of 64 requests; it reports readings/s.
func BenchmarkIngestHTTP(b *testing.B) {
	const clients = 64
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			const sensors = 1000
			_, port := ingestAgent(b, "http", sensors, "")
			url := fmt.Sprintf("http://127.0.0.1:%d/api/ingest", port)
			testenv.WaitFor(b, "the readings", func() bool {
				resp, err := http.Post(url, "application/json", strings.NewReader(`{"sensor":"s0","value":1}`))
				if err == nil {
					resp.Body.Close()
				}
				return err == nil
			})
			next := 1
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				var wg sync.WaitGroup
				for c := range clients {
					var body strings.Builder
					body.WriteByte('[')
					for k := range batch {
						if k > 0 {
							body.WriteByte(',')
						}
						fmt.Fprintf(&body, `{"sensor":"s%d","value":%d}`, (next+c*batch+k)%sensors, k)
					}
					body.WriteByte(']')
					wg.Add(1)
					go func() {
						defer wg.Done()
						resp, err := http.Post(url, "application/json", strings.NewReader(body.String()))
						if err != nil {
							b.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusAccepted {
							b.Errorf("status %d", resp.StatusCode)
						}
					}()
				}
				wg.Wait()
				next += clients * batch
			}
			b.ReportMetric(float64(b.N*clients*batch)/time.Since(start).Seconds(), "readings/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkIngestMQTT: 200 type mqtt sensors; one device client publishes
// bare values at QoS 1 round robin to their topics as fast as the broker
// takes them; it reports the readings per second that reach the buffer.
// Run it with -benchtime=2000x (10 per sensor, inside the rate limit).
func BenchmarkIngestMQTT(b *testing.B) {
	broker := testenv.StartMosquitto(b)
	const sensors = 200
	a, _ := ingestAgent(b, "mqtt", sensors, fmt.Sprintf("mqtt_in: { url: %q }", broker.URL))
	dev := testenv.ConnectMQTT(b, broker.URL, "bench-devices")
	// Wait until the input is subscribed: a first message gets through.
	base := a.store.log.Stats().Appended
	testenv.WaitFor(b, "the readings", func() bool {
		dev.Publish("dev/s0", 1, false, "1").Wait()
		time.Sleep(20 * time.Millisecond)
		return a.store.log.Stats().Appended > base
	})
	time.Sleep(100 * time.Millisecond)
	base = a.store.log.Stats().Appended
	b.ResetTimer()
	start := time.Now()
	var last paho.Token
	for i := 0; i < b.N; i++ {
		last = dev.Publish(fmt.Sprintf("dev/s%d", i%sensors), 1, false, fmt.Sprint(20+i%10))
	}
	last.Wait()
	deadline := time.Now().Add(60 * time.Second)
	for a.store.log.Stats().Appended < base+uint64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d readings reached the buffer", a.store.log.Stats().Appended-base, b.N)
		}
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "readings/s")
	b.ReportMetric(0, "ns/op")
}
