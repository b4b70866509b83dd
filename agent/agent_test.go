package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/wallclock"

	"github.com/coder/websocket"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

// subscriber collects what a real MQTT client receives.
type subscriber struct {
	mu   sync.Mutex
	msgs map[string][]string // topic → payloads in order
	c    paho.Client
}

func subscribe(t *testing.T, url, filter string) *subscriber {
	t.Helper()
	s := &subscriber{msgs: map[string][]string{}}
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("test-sub-%d", time.Now().UnixNano()))
	s.c = paho.NewClient(opts)
	if tok := s.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	tok := s.c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		s.mu.Lock()
		s.msgs[m.Topic()] = append(s.msgs[m.Topic()], string(m.Payload()))
		s.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { s.c.Disconnect(100) })
	return s
}

func (s *subscriber) get(topic string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs[topic]...)
}

// TestFakeDS18B20ReachesBrokerAndPage is the end-to-end path of a wired
// sensor: a fake kernel 1-Wire tree with the datasheet's +25.0625 °C
// scratchpad, read by the agent, published to a real mosquitto and pushed
// to a websocket client of the page. A sensor whose CRC fails and one stuck
// at the power-on value never publish, and show as faulty.
func TestFakeDS18B20ReachesBrokerAndPage(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	sub := subscribe(t, broker.URL, "kelvin/#")
	port := testenv.FreePort(t)
	yaml := fmt.Sprintf(`
agent: { id: gh1, data_dir: %s }
onewire: { sysfs: testdata/w1 }
sensors:
  - { id: tank, type: ds18b20, address: 28-000000000191, interval: 1s }
  - { id: crc, type: ds18b20, address: 28-0000000bad00, interval: 1s }
  - { id: por, type: ds18b20, address: 28-000000000550, interval: 1s }
mqtt: { url: %q, qos: 1 }
http: { listen: "127.0.0.1:%d" }
`, t.TempDir(), broker.URL, port)
	cfg, err := Parse("test.yaml", []byte(yaml), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- Run(ctx, cfg, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), OnReady: func(*Agent) { close(ready) }})
	}()
	<-ready
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	testenv.WaitForWithin(t, 10*time.Second, "the page to listen", func() bool {
		resp, err := http.Get(base + "/api/status")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer wcancel()
	ws, _, err := websocket.Dial(wctx, "ws://127.0.0.1:"+fmt.Sprint(port)+"/ws", nil)
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	defer ws.CloseNow()

	// The page gets the reading within about one interval.
	_, msg, err := ws.Read(wctx)
	if err != nil {
		t.Fatalf("websocket read: %v", err)
	}
	var got reading.Reading
	if err := json.Unmarshal(msg, &got); err != nil {
		t.Fatalf("websocket payload %s: %v", msg, err)
	}
	if got.Sensor != "tank" || got.Value != 25.0625 || got.Raw != 25.0625 || got.Unit != "°C" || got.Agent != "gh1" || got.Quantity != "temperature" {
		t.Errorf("websocket reading = %s", msg)
	}

	// The broker gets it too, with seq counting from 1.
	testenv.WaitForWithin(t, 10*time.Second, "two readings of tank on kelvin/gh1/tank", func() bool { return len(sub.get("kelvin/gh1/tank")) >= 2 })
	for i, p := range sub.get("kelvin/gh1/tank")[:2] {
		var r reading.Reading
		if err := json.Unmarshal([]byte(p), &r); err != nil {
			t.Fatalf("payload %q: %v", p, err)
		}
		if r.Seq != uint64(i+1) || r.Value != 25.0625 || r.Sensor != "tank" {
			t.Errorf("message %d = %s, want seq %d value 25.0625", i, p, i+1)
		}
	}
	if got := sub.get("kelvin/gh1/status"); len(got) == 0 || got[len(got)-1] != "online" {
		t.Errorf("status topic = %q, want online", got)
	}

	// Faulty sensors never publish a number, and say why.
	resp, err := http.Get(base + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Sensors []struct{ ID, State, Reason string }
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	want := map[string]string{"tank": "ok/", "crc": "faulty/crc", "por": "faulty/power_on_reset"}
	for _, s := range st.Sensors {
		if w := want[s.ID]; s.State+"/"+s.Reason != w {
			t.Errorf("sensor %s: state %s/%s, want %s", s.ID, s.State, s.Reason, w)
		}
	}
	// And in the metrics, by reason.
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`kelvin_sensor_up{sensor="tank",type="ds18b20"} 1`, `kelvin_sensor_up{sensor="crc",type="ds18b20"} 0`,
		`kelvin_sensor_errors_total{sensor="crc",reason="crc"} `, `kelvin_sensor_errors_total{sensor="por",reason="power_on_reset"} `,
		`kelvin_sensor_value{sensor="tank",quantity="temperature",unit="°C"} 25.0625`, `kelvin_output_connected{output="mqtt"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, topic := range []string{"kelvin/gh1/crc", "kelvin/gh1/por"} {
		if got := sub.get(topic); len(got) > 0 {
			t.Errorf("%s published %q", topic, got)
		}
	}

	cancel()
	testenv.WaitReturn(t, "Run", done)
	testenv.WaitForWithin(t, 5*time.Second, "offline status after shutdown", func() bool {
		got := sub.get("kelvin/gh1/status")
		return len(got) > 0 && got[len(got)-1] == "offline"
	})
}

// startAgent parses yaml, runs the agent with a silent log until the test
// ends, and returns it.
func startAgent(t testing.TB, yaml string) *Agent {
	t.Helper()
	return startAgentWith(t, yaml, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// startAgentWith is startAgent with opts.
func startAgentWith(t testing.TB, yaml string, opts Options) *Agent {
	t.Helper()
	cfg, err := Parse("test.yaml", []byte(yaml), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	return a
}

// buildKelvin builds the kelvin binary into dir and returns its path, for
// tests that run it as a process (to kill it with SIGKILL).
func buildKelvin(t *testing.T, dir string) string {
	t.Helper()
	gobin := testenv.Require(t, "go", "golang-go")
	bin := filepath.Join(dir, "kelvin")
	args := []string{"build", "-o", bin}
	if wallclock.Skewed {
		// The processes run on the test's clock (KELVIN_CLOCK_SKEW is
		// inherited), not 400 days behind it.
		args = append(args, "-tags", "kelvin_skew")
	}
	if out, err := exec.Command(gobin, append(args, "..")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
