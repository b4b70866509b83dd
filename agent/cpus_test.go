package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// TestCPUs: agent.cpus defaults to 1 for a gateway and to every CPU (the
// runtime's choice) for a fleet receiver; $GOMAXPROCS wins over the
// default but not over the key; a value out of range names its line.
func TestCPUs(t *testing.T) {
	const sensor = "sensors: [ { id: a, type: sim } ]\n"
	const fleet = "fleet: { mqtt: { url: tcp://127.0.0.1:1 } }\n"
	for _, c := range []struct {
		name, yaml string
		envSet     bool
		n          int
		ok         bool
	}{
		{"gateway default", sensor, false, 1, true},
		{"fleet default", fleet, false, 6, true},
		{"set", "agent: { cpus: 3 }\n" + sensor, false, 3, true},
		{"zero is every CPU", "agent: { cpus: 0 }\n" + sensor, false, 6, true},
		{"environment over the default", sensor, true, 0, false},
		{"environment over the fleet default", fleet, true, 0, false},
		{"the key over the environment", "agent: { cpus: 2 }\n" + sensor, true, 2, true},
	} {
		cfg, err := Parse("test.yaml", []byte(c.yaml), nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if n, ok := cfg.goMaxProcs(6, c.envSet); n != c.n || ok != c.ok {
			t.Errorf("%s: goMaxProcs(6, %v) = %d, %v; want %d, %v", c.name, c.envSet, n, ok, c.n, c.ok)
		}
	}
	for _, bad := range []string{"-1", "1025"} {
		_, err := Parse("test.yaml", []byte("agent:\n  cpus: "+bad+"\n"+sensor), nil)
		if err == nil || !strings.Contains(err.Error(), "test.yaml:2: agent.cpus: want 0 (every CPU) to 1024, got "+bad) {
			t.Errorf("cpus: %s: %v", bad, err)
		}
	}
	_, err := Parse("test.yaml", []byte("agent:\n  cpus: two\n"+sensor), nil)
	if err == nil || !strings.Contains(err.Error(), "test.yaml:2: agent.cpus") {
		t.Errorf("cpus: two: %v", err)
	}
}

// TestServeAppliesCPUs: every start, the first and each reload's, hands
// its config to Options.SetCPUs before anything runs.
func TestServeAppliesCPUs(t *testing.T) {
	dir := t.TempDir()
	yaml := func(n string) []byte {
		return []byte("agent: { cpus: " + n + ", data_dir: " + dir + " }\nhttp: { listen: \"\" }\n" +
			"sensors: [ { id: a, type: sim } ]\n")
	}
	cfg, err := Parse("test.yaml", yaml("2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 2)
	ready := make(chan struct{}, 2)
	reload := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, cfg, reload, func() (*Config, error) { return Parse("test.yaml", yaml("3"), nil) }, Options{
			Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
			SetCPUs: func(c *Config) { got <- c.Agent.CPUs },
			OnReady: func(*Agent) { ready <- struct{}{} },
		})
	}()
	if n := <-got; n != 2 {
		t.Errorf("first start: cpus %d, want 2", n)
	}
	<-ready
	reload <- struct{}{}
	if n := <-got; n != 3 {
		t.Errorf("after the reload: cpus %d, want 3", n)
	}
	<-ready
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestRunSetsCPUs: kelvin run, as a process, runs with agent.cpus Ps (its
// /metrics says so): 1 by default, $GOMAXPROCS without the key, the key
// over $GOMAXPROCS.
func TestRunSetsCPUs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := buildKelvin(t, dir)
	for _, c := range []struct {
		name, key, env, want string
	}{
		{"default", "", "", "1"},
		{"environment", "", "3", "3"},
		{"key over environment", "cpus: 2, ", "3", "2"},
	} {
		port := testenv.FreePort(t)
		conf := filepath.Join(dir, "kelvin.yaml")
		os.WriteFile(conf, []byte(fmt.Sprintf("agent: { %sid: cpus, data_dir: %s }\nsensors: [ { id: a, type: sim } ]\nhttp: { listen: \"127.0.0.1:%d\" }\nlog: { level: warn }\n",
			c.key, filepath.Join(dir, "data"), port)), 0o644)
		cmd := exec.Command(bin, "run", "-config", conf)
		cmd.Env = os.Environ()
		if c.env != "" {
			cmd.Env = append(cmd.Env, "GOMAXPROCS="+c.env)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var got string
		testenv.WaitForWithin(t, 10*time.Second, "the agent's /metrics", func() bool {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
			if err != nil {
				return false
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for line := range strings.Lines(string(b)) {
				if v, ok := strings.CutPrefix(line, "go_sched_gomaxprocs_threads "); ok {
					got = strings.TrimSpace(v)
				}
			}
			return got != ""
		})
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("%s: kelvin run: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s: GOMAXPROCS %s, want %s", c.name, got, c.want)
		}
	}
}
