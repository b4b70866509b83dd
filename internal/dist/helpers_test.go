package dist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// repoRoot returns the module's root directory (tests run in internal/dist).
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found from the test's directory: %v", err)
	}
	return root
}

// target is one of scripts/build.sh's build targets.
type target struct {
	Name   string // build.sh's name: armv6, armv7, arm64, amd64
	GOARCH string
	GOARM  string // "" unless GOARCH is arm
	Arch   string // what `kelvin version` prints after "linux/"
}

var (
	armv6 = target{Name: "armv6", GOARCH: "arm", GOARM: "6", Arch: "arm/v6"}
	arm64 = target{Name: "arm64", GOARCH: "arm64", Arch: "arm64"}
	amd64 = target{Name: "amd64", GOARCH: "amd64", Arch: "amd64"}
)

// buildKelvin cross-compiles the kelvin command for tg into dir with the
// flags scripts/build.sh uses (static, -trimpath, stripped, the version
// stamped in), and returns the binary's path. It reuses the Go build cache,
// so only the first build of a target compiles everything.
func buildKelvin(t testing.TB, tg target, version, dir string) string {
	t.Helper()
	gobin := testenv.Require(t, "go", "golang-go")
	out := filepath.Join(dir, "kelvin-linux-"+tg.Name)
	cmd := exec.Command(gobin, "build", "-trimpath",
		"-ldflags", "-s -w -X github.com/kelvin-gw/kelvin/agent.version="+version,
		"-o", out, ".")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+tg.GOARCH, "GOARM="+tg.GOARM)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build for %s: %v\n%s", tg.Name, err, b)
	}
	return out
}

// agentConfig writes a config with one simulated sensor read every 200 ms,
// the page on 127.0.0.1:port and the data directory in dir, and returns its
// path.
func agentConfig(t testing.TB, dir string, port int) string {
	t.Helper()
	cfg := fmt.Sprintf(`agent:
  id: dist-test
  data_dir: %s
sensors:
  - id: air
    type: sim
    interval: 200ms
http:
  listen: 127.0.0.1:%d
log:
  format: text
`, filepath.Join(dir, "data"), port)
	path := filepath.Join(dir, "kelvin.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runAgent starts argv (kelvin run, possibly under an emulator) with a
// config from agentConfig, waits for /api/readings to hold a reading of
// sensor "air" (polling for up to wait: emulation is slow), checks that /
// serves the page, then sends SIGTERM and requires exit status 0 within
// 10 s.
func runAgent(t *testing.T, argv []string, port int, wait time.Duration) {
	t.Helper()
	var log testenv.SyncBuffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	done := false
	t.Cleanup(func() {
		if !done {
			cmd.Process.Kill()
			<-exited
		}
	})

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(wait)
	var last string
	for {
		select {
		case err := <-exited:
			done = true
			t.Fatalf("kelvin exited before serving a reading: %v\n%s", err, log.String())
		default:
		}
		n, err := countReadings(client, base+"/api/readings?sensor=air")
		if err == nil && n > 0 {
			break
		}
		if err != nil {
			last = err.Error()
		} else {
			last = "no readings yet"
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reading on %s/api/readings within %v (last: %s)\n%s", base, wait, last, log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}

	body, status, err := get(client, base+"/")
	if err != nil || status != http.StatusOK || !strings.Contains(body, "<title>Kelvin</title>") {
		t.Errorf("GET / = %d, %v; want 200 and the page, got:\n%.300s", status, err, body)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case err := <-exited:
		done = true
		if err != nil {
			t.Fatalf("kelvin did not exit 0 on SIGTERM: %v\n%s", err, log.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("kelvin still running 10 s after SIGTERM\n%s", log.String())
	}
}

// countReadings GETs url and returns the length of the JSON array it holds.
func countReadings(client *http.Client, url string) (int, error) {
	body, status, err := get(client, url)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("status %d: %.200s", status, body)
	}
	var rs []struct {
		Sensor string  `json:"sensor"`
		Value  float64 `json:"value"`
	}
	if err := json.Unmarshal([]byte(body), &rs); err != nil {
		return 0, fmt.Errorf("decode: %w: %.200s", err, body)
	}
	return len(rs), nil
}

func get(client *http.Client, url string) (string, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
}

// run runs a command and returns its combined output; a non-zero exit
// fails the test.
func run(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// runErr runs a command with env added to the test's environment and
// returns its combined output and error.
func runErr(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	b, err := cmd.CombinedOutput()
	return string(b), err
}

// exitCode returns the exit status in err, 0 for nil and -1 when the
// program did not exit normally.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}
