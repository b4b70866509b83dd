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
