package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// TestNormalStartIsNotAWarning: the first readings are taken before the
// broker connection is up (here the broker answers only once readings are
// waiting, as a remote one does); that is how every start goes, and it logs
// no warning.
func TestNormalStartIsNotAWarning(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	sub := subscribe(t, broker.URL, "kelvin/gs/air")
	slow, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	cfg, err := Parse("test.yaml", []byte(fmt.Sprintf(`
agent: { id: gs, data_dir: %s }
sensors:
  - { id: air, type: sim, interval: 10ms }
buffer: { sync: 10ms }
mqtt: { url: "tcp://%s", qos: 1 }
http: { listen: "" }
`, t.TempDir(), slow.Addr())), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan *Agent, 1)
	go func() {
		done <- Run(ctx, cfg, Options{Log: slog.New(slog.NewTextHandler(logs, nil)), OnReady: func(a *Agent) { ready <- a }})
	}()
	a := <-ready
	conn, err := slow.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	testenv.WaitFor(t, "readings waiting for the connection", func() bool { return a.store.Backlog("mqtt") >= 5 })
	up, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", broker.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go io.Copy(up, conn)
	go io.Copy(conn, up)
	testenv.WaitFor(t, "readings at the broker", func() bool { return len(sub.get("kelvin/gs/air")) >= 20 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			t.Errorf("a normal start logged: %s", line)
		}
	}
}

// TestStartConnectsBeforeRun: an agent made to run at once (Run, Serve)
// connects to the broker while it opens the buffer and the page, not after.
func TestStartConnectsBeforeRun(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	cfg := simAgent(t, "early", "10ms", broker.URL)
	a, err := start(cfg, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the output connected before Run", func() bool { return a.outputs[0].Status().Connected })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Run(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if a.outputs[0].Status().Connected {
		t.Error("still connected after Run returned")
	}
}

// TestSecondAgentLeavesTheSessionAlone: a second agent started by mistake
// on the data directory of a running one fails on the buffer's lock before
// it connects, so the running agent's session (same client id) is not taken
// over and its retained status is not turned "offline".
func TestSecondAgentLeavesTheSessionAlone(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	sub := subscribe(t, broker.URL, "kelvin/dup/#")
	cfg := simAgent(t, "dup", "1h", broker.URL)
	logs := &testenv.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, Options{Log: slog.New(slog.NewTextHandler(logs, nil))}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	testenv.WaitFor(t, "the first agent online", func() bool { return len(sub.get("kelvin/dup/status")) > 0 })

	second, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := Run(second, cfg, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second agent: %v, want the buffer in use", err)
	}
	// Whatever the second agent published came before this marker.
	if tok := sub.c.Publish("kelvin/dup/marker", 1, false, "x"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("marker: %v", tok.Error())
	}
	testenv.WaitFor(t, "the marker", func() bool { return len(sub.get("kelvin/dup/marker")) > 0 })
	if got := sub.get("kelvin/dup/status"); len(got) != 1 || got[0] != "online" {
		t.Errorf("status messages %q, want only the first agent's online", got)
	}
	if strings.Contains(logs.String(), "connection lost") {
		t.Errorf("the first agent lost its connection:\n%s", logs)
	}
}

// simAgent is the config of agent id with one sim sensor read every
// interval, publishing to the broker at url, without a page.
func simAgent(t *testing.T, id, interval, url string) *Config {
	t.Helper()
	cfg, err := Parse("test.yaml", []byte(fmt.Sprintf(`
agent: { id: %s, data_dir: %s }
sensors:
  - { id: air, type: sim, interval: %s }
mqtt: { url: %q }
http: { listen: "" }
`, id, t.TempDir(), interval, url)), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
