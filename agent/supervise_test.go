package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/publish"
	"github.com/kelvin-gw/kelvin/reading"
)

// brokenOutput is an output whose connection loop fails at once, every
// time it is started.
type brokenOutput struct{ runs atomic.Int32 }

func (b *brokenOutput) Name() string { return "kafka" }
func (b *brokenOutput) Publish(ctx context.Context, _ []reading.Reading) error {
	return errors.New("not connected")
}
func (b *brokenOutput) Status() publish.Status {
	return publish.Status{Name: "kafka", State: "disconnected"}
}
func (b *brokenOutput) Run(context.Context) error {
	b.runs.Add(1)
	return errors.New("cluster exploded")
}

// TestOneOutputFailingLeavesTheOthers runs MQTT and an output whose Run
// fails: MQTT keeps delivering, the failure is logged when it happens and
// the failed output is restarted, and /readyz and /metrics show it.
func TestOneOutputFailingLeavesTheOthers(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	sub := subscribe(t, broker.URL, "kelvin/gh1/air")
	port := testenv.FreePort(t)
	cfg, err := Parse("test.yaml", []byte(fmt.Sprintf(`
agent: { id: gh1, data_dir: %s }
sensors:
  - { id: air, type: sim, interval: 50ms }
mqtt: { url: %q, qos: 1 }
kafka: { brokers: ["127.0.0.1:1"] }
http: { listen: "127.0.0.1:%d" }
`, t.TempDir(), broker.URL, port)), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.SyncBuffer{}
	a, err := New(cfg, Options{Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	broken := &brokenOutput{}
	a.outputs[1] = broken
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	testenv.WaitFor(t, "the failure logged while running", func() bool {
		return strings.Contains(logs.String(), `msg="output failed, restarting it" output=kafka err="cluster exploded"`)
	})
	n := len(sub.get("kelvin/gh1/air"))
	testenv.WaitFor(t, "MQTT to keep delivering after the other output failed", func() bool {
		return len(sub.get("kelvin/gh1/air")) > n+10
	})
	testenv.WaitFor(t, "the failed output to be restarted", func() bool { return broken.runs.Load() >= 2 })

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	get := func(path string) string {
		resp, err := http.Get(base + path)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	testenv.WaitFor(t, "/readyz to name the failed output", func() bool {
		return strings.Contains(get("/readyz"), "output kafka: failed, restarting: cluster exploded")
	})
	testenv.WaitFor(t, "/metrics to count the restart", func() bool {
		m := get("/metrics")
		return strings.Contains(m, `kelvin_output_restarts_total{output="kafka"} `) &&
			!strings.Contains(m, `kelvin_output_restarts_total{output="kafka"} 0`)
	})
	if st := a.Status(); st.Outputs[0].State != "connected" || st.Outputs[0].Restarts != 0 {
		t.Errorf("mqtt status %+v, want connected and never restarted", st.Outputs[0])
	}
}

func TestRestartDelayIsCappedWithJitter(t *testing.T) {
	full := func(d time.Duration) time.Duration { return d }
	half := func(d time.Duration) time.Duration { return d / 2 }
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i, w := range want {
		if got := restartDelay(i+1, full); got != w*time.Second {
			t.Errorf("restart %d: %v, want %v", i+1, got, w*time.Second)
		}
		if got := restartDelay(i+1, half); got != w*time.Second/2 {
			t.Errorf("restart %d with the least jitter: %v, want %v", i+1, got, w*time.Second/2)
		}
	}
	if got := restartDelay(1000, full); got != restartMax {
		t.Errorf("restart 1000: %v, want %v", got, restartMax)
	}
	for range 100 {
		if d := jitterHalf(time.Second); d < time.Second/2 || d > time.Second {
			t.Fatalf("jitterHalf(1s) = %v, outside [0.5s, 1s]", d)
		}
	}
}

// TestOutputNamedOncePerLogLine: the output's own logger and the agent's
// must not both add "output".
func TestOutputNamedOncePerLogLine(t *testing.T) {
	cfg, err := Parse("test.yaml", []byte(fmt.Sprintf(`
agent: { id: gh1, data_dir: %s }
sensors:
  - { id: air, type: sim, interval: 50ms }
mqtt: { url: "tcp://127.0.0.1:%d" }
http: { listen: "" }
`, t.TempDir(), testenv.FreePort(t))), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.SyncBuffer{}
	a, err := New(cfg, Options{Log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, nil) }()
	testenv.WaitFor(t, "the connection failure and a publish attempt logged", func() bool {
		s := logs.String()
		return strings.Contains(s, `"msg":"mqtt connect failed, retrying"`) && strings.Contains(s, `"msg":"publish waiting for the first connection"`)
	})
	cancel()
	<-done
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Count(line, `"output":`) > 1 {
			t.Errorf("output named twice: %s", line)
		}
	}
}
