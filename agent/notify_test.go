package agent

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kelvin-gw/kelvin/internal/wallclock"
)

// TestSystemdNotify runs the agent as systemd would with Type=notify and a
// watchdog, and listens on the notify socket for READY=1 and WATCHDOG=1.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "100000") // 100 ms: pings every 50 ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))

	cfg, err := Parse("t.yaml", []byte("agent: {data_dir: "+t.TempDir()+"}\nsensors: [{id: a, type: sim, interval: 100ms}]\nhttp: {listen: \"\"}\n"), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}) }()

	got := map[string]bool{}
	buf := make([]byte, 256)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !got["READY=1"] || !got["WATCHDOG=1"] {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got[string(buf[:n])] = true
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for !got["STOPPING=1"] {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no STOPPING=1: %v", err)
		}
		got[string(buf[:n])] = true
	}
}

// TestWatchdogOnTheGrid: the watchdog pings fall on the agent's read grid
// (its start plus whole intervals), not at instants of their own.
func TestWatchdogOnTheGrid(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &notifier{addr: filepath.Join(t.TempDir(), "no-systemd"), log: slog.New(slog.DiscardHandler)}
		grid := wallclock.Now()
		time.Sleep(300 * time.Millisecond) // the agent read a while before the watchdog started
		var at []time.Duration
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			n.watchdog(ctx, grid, wallclock.Now, 15*time.Second, func() bool { at = append(at, wallclock.Now().Sub(grid)); return true })
		}()
		time.Sleep(46 * time.Second)
		cancel()
		<-done
		if want := []time.Duration{15 * time.Second, 30 * time.Second, 45 * time.Second}; !slices.Equal(at, want) {
			t.Errorf("pinged at %v after the grid's start, want %v", at, want)
		}
	})
}
