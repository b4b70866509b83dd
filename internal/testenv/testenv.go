// Package testenv finds the external programs Kelvin's tests run against (a
// real mosquitto broker, kcat, chromium) and starts them on loopback.
//
// Locally, a missing program skips the test with a message naming the Debian
// package to install. In CI (CI=true) a missing program fails the test: CI
// must never pass by skipping the tests that matter.
package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI, where skips are failures.
func InCI() bool { return os.Getenv("CI") == "true" }

// Require returns the path of program, looking in $PATH and the sbin
// directories. When it is missing the test is skipped (locally) or fails
// (in CI), naming pkg, the Debian package that provides it.
func Require(t testing.TB, program, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(program); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, program)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	msg := fmt.Sprintf("%s not found: install the Debian package %q (scripts/test.sh does this when run as root)", program, pkg)
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Mosquitto is a real mosquitto broker run by a test on a loopback port.
type Mosquitto struct {
	Port int    // TCP port on 127.0.0.1
	URL  string // tcp://127.0.0.1:PORT
	Dir  string // working directory with the config and log
	t    testing.TB
	cmd  *exec.Cmd
	done chan struct{}
	bin  string
}

// StartMosquitto starts mosquitto on a free loopback port with persistence
// off and anonymous access on, and stops it when the test ends. extraConf
// lines are appended to its config file.
func StartMosquitto(t testing.TB, extraConf ...string) *Mosquitto {
	t.Helper()
	bin := Require(t, "mosquitto", "mosquitto")
	m := &Mosquitto{t: t, bin: bin, Dir: t.TempDir()}
	m.Port = FreePort(t)
	m.URL = fmt.Sprintf("tcp://127.0.0.1:%d", m.Port)
	conf := []string{
		fmt.Sprintf("listener %d 127.0.0.1", m.Port),
		"allow_anonymous true",
		"persistence false",
		"log_dest stderr",
		"log_type error",
		"log_type warning",
		"max_queued_messages 1000000",
	}
	if os.Geteuid() == 0 {
		// As root mosquitto drops to user "mosquitto", which cannot
		// write the test's private temp dir (persistence, logs).
		conf = append(conf, "user root")
	}
	conf = append(conf, extraConf...)
	if err := os.WriteFile(filepath.Join(m.Dir, "mosquitto.conf"), []byte(strings.Join(conf, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(m.Stop)
	return m
}

// Start (re)starts the broker on the same port and waits until it accepts
// connections, for at most 10 s.
func (m *Mosquitto) Start() {
	m.t.Helper()
	if m.cmd != nil {
		return
	}
	log, err := os.OpenFile(filepath.Join(m.Dir, "mosquitto.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		m.t.Fatal(err)
	}
	cmd := exec.Command(m.bin, "-c", filepath.Join(m.Dir, "mosquitto.conf"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		m.t.Fatalf("start mosquitto: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(done) }()
	m.cmd, m.done = cmd, done
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", m.Port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto did not listen on port %d within 10s: %v\n%s", m.Port, err, m.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the broker (SIGKILL: an outage, not a clean shutdown) and
// waits until its port is closed.
func (m *Mosquitto) Stop() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Kill()
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", m.Port), 200*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	m.cmd = nil
}

// Terminate stops the broker with SIGTERM, as an administrator would, so a
// broker with persistence on saves its sessions first; it waits for the
// process to exit (at most 10 s).
func (m *Mosquitto) Terminate() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
	}
	m.Stop()
}

// Log returns what the broker logged so far, for failure messages.
func (m *Mosquitto) Log() string {
	b, _ := os.ReadFile(filepath.Join(m.Dir, "mosquitto.log"))
	return string(b)
}

// WaitFor polls cond every few milliseconds until it holds, failing the
// test after 15 s with "timed out waiting for what". Use it to wait for an
// event, never a sleep: on a slow runner a sleep passes without testing
// what it claims.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	WaitForWithin(t, 15*time.Second, what, cond)
}

// WaitForWithin is WaitFor with a deadline of d.
func WaitForWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			logGoroutines(t)
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// logGoroutines logs every goroutine's stack (the first 256 KiB), so that
// a wait that gave up in CI, where it cannot be rerun under a debugger,
// shows where the program stood.
func logGoroutines(t testing.TB) {
	t.Helper()
	buf := make([]byte, 256<<10)
	t.Logf("goroutines when the wait gave up:\n%s", buf[:runtime.Stack(buf, true)])
}

// CancelWhen calls cancel, from a goroutine of its own, once cond holds
// (polled like WaitFor) or after 15 s: for a test that cancels a call while
// it blocks at a point cond can see, such as a bus playback that reached
// its last operation. The function it returns waits for the goroutine.
func CancelWhen(cond func() bool, cancel func()) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel()
		for deadline := time.Now().Add(15 * time.Second); !cond() && time.Now().Before(deadline); {
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return func() { <-done }
}

// WaitReturn waits up to 15 s for what (a Run or Serve whose context was
// cancelled) to send its result on done: an error fails the test, no
// result by then ends it.
func WaitReturn(t testing.TB, what string, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s: %v, want nil", what, err)
		}
	case <-time.After(15 * time.Second):
		logGoroutines(t)
		t.Fatalf("%s did not return within 15s of its context's end", what)
	}
}
