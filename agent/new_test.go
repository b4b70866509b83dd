package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/publish/kafka"
)

// TestFailedNewReleasesWhatItOpened: when a step of New fails after others
// opened the store, the outputs (a Kafka client runs from the start) and
// the history archive, New closes them: their goroutines end, and the
// buffer's lock on the data directory is free, so a second agent opens it.
func TestFailedNewReleasesWhatItOpened(t *testing.T) {
	for _, tc := range []struct {
		name    string
		breakIt func(dir string) // after the config was checked
		fixIt   func(dir string)
		want    string
	}{
		{"archive", func(dir string) { writeTestFile(t, filepath.Join(dir, "data", "history"), "not a directory") },
			func(dir string) { os.Remove(filepath.Join(dir, "data", "history")) }, "history"},
		{"mqtt_in password", func(dir string) { os.Remove(filepath.Join(dir, "in.pass")) },
			func(dir string) { writeTestFile(t, filepath.Join(dir, "in.pass"), "secret\n") }, "mqtt_in: password_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "data"), 0o750); err != nil {
				t.Fatal(err)
			}
			writeTestFile(t, filepath.Join(dir, "in.pass"), "secret\n")
			kafkaSection := ""
			if kafka.Available {
				kafkaSection = `kafka: { brokers: ["127.0.0.1:1"] }`
			}
			cfg, err := Parse("test.yaml", []byte(fmt.Sprintf(`
agent: { id: gf, data_dir: %s/data }
sensors:
  - { id: air, type: sim, interval: 1s }
  - { id: plug, type: mqtt, topic: tele/plug/SENSOR }
mqtt_in: { url: "tcp://127.0.0.1:1", username: u, password_file: %s/in.pass }
http: { listen: "127.0.0.1:0" }
%s
`, dir, dir, kafkaSection)), os.LookupEnv)
			if err != nil {
				t.Fatal(err)
			}
			opts := Options{LogOut: &testenv.SyncBuffer{}}
			base := openedGoroutines()
			tc.breakIt(dir)
			if _, err := New(cfg, opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error about %s", err, tc.want)
			}
			testenv.WaitFor(t, "the goroutines of what New opened to end", func() bool { return openedGoroutines() <= base })

			tc.fixIt(dir)
			a, err := New(cfg, opts)
			if err != nil {
				t.Fatalf("a second agent on the data directory: %v", err)
			}
			if openedGoroutines() <= base {
				t.Error("no goroutines of the store, archive or outputs seen: the check above proves nothing")
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := a.Run(ctx, nil); err != nil {
				t.Fatal(err)
			}
			testenv.WaitFor(t, "the second agent's goroutines to end", func() bool { return openedGoroutines() <= base })
		})
	}
}

// openedGoroutines counts the goroutines of the buffer, the archive and the
// Kafka client.
func openedGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, p := range []string{"kelvin/buffer.", "kelvin/archive.", "franz-go/pkg/kgo."} {
			if strings.Contains(g, p) {
				count++
				break
			}
		}
	}
	return count
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
