//go:build linux

package hil

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// guest is one QEMU run.
type guest struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	qmpPath string
	exited  chan struct{} // closed when qemu has exited
	err     error         // qemu's exit, once exited is closed

	mu      sync.Mutex
	console []string // the serial console, line by line
}

// startGuest starts qemu with args and the serial console on its stdin and
// stdout. The test's cleanup kills it if it is still running and waits for
// it, so no qemu outlives the test; on failure the console is logged.
func startGuest(t *testing.T, qemu, qmpPath string, args []string) *guest {
	t.Helper()
	g := &guest{qmpPath: qmpPath, exited: make(chan struct{})}
	g.cmd = exec.Command(qemu, args...)
	var err error
	if g.stdin, err = g.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := g.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	g.cmd.Stderr = g.cmd.Stdout
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			g.mu.Lock()
			g.console = append(g.console, strings.TrimRight(sc.Text(), "\r"))
			if os.Getenv("HIL_DEBUG") != "" {
				fmt.Printf("%s %s\n", time.Now().Format("15:04:05.000"), sc.Text())
			}
			g.mu.Unlock()
		}
	}()
	go func() {
		<-read // Wait closes the pipe: read it to the end first
		g.err = g.cmd.Wait()
		close(g.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-g.exited:
		default:
			g.cmd.Process.Kill()
			select {
			case <-g.exited:
			case <-time.After(10 * time.Second):
				t.Errorf("qemu (pid %d) still running 10 s after SIGKILL", g.cmd.Process.Pid)
			}
		}
		if t.Failed() {
			t.Logf("guest console:\n%s", strings.Join(g.lines(), "\n"))
		}
	})
	return g
}

// lines returns the console so far.
func (g *guest) lines() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.console...)
}

// consoleHas reports whether a console line contains s.
func (g *guest) consoleHas(s string) bool {
	for _, l := range g.lines() {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// running reports whether qemu has not exited.
func (g *guest) running() bool {
	select {
	case <-g.exited:
		return false
	default:
		return true
	}
}

// setTemperature sets the TMP105 model's temperature over QMP: qom-set of
// its "temperature" property, in m°C. The model stores it as
// m°C·256/1000, truncated: multiples of 0.125 °C are exact.
func (g *guest) setTemperature(ctx context.Context, id string, celsius float64) error {
	return g.qmp(ctx, "qom-set", map[string]any{"path": id, "property": "temperature", "value": int(celsius * 1000)})
}

// qmp runs one QMP command on a connection of its own: the greeting,
// qmp_capabilities, the command, and its return (events are skipped).
func (g *guest) qmp(ctx context.Context, command string, args map[string]any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", g.qmpPath)
	if err != nil {
		return fmt.Errorf("qmp: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	dec := json.NewDecoder(conn)
	var greeting map[string]any
	if err := dec.Decode(&greeting); err != nil {
		return fmt.Errorf("qmp greeting: %w", err)
	}
	call := func(cmd string, args map[string]any) error {
		req := map[string]any{"execute": cmd}
		if args != nil {
			req["arguments"] = args
		}
		if err := json.NewEncoder(conn).Encode(req); err != nil {
			return err
		}
		for {
			var resp struct {
				Return json.RawMessage `json:"return"`
				Error  *struct {
					Class, Desc string
				} `json:"error"`
				Event string `json:"event"`
			}
			if err := dec.Decode(&resp); err != nil {
				return fmt.Errorf("qmp %s: %w", cmd, err)
			}
			switch {
			case resp.Error != nil:
				return fmt.Errorf("qmp %s: %s: %s", cmd, resp.Error.Class, resp.Error.Desc)
			case resp.Return != nil:
				return nil
			}
		}
	}
	if err := call("qmp_capabilities", nil); err != nil {
		return err
	}
	return call(command, args)
}
