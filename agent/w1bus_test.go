package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// notWritable is a file that no process may open for writing, root
// included: a sysfs attribute without a store method (the kernel refuses
// the open with EACCES), or on a read-only /sys (a container) with EROFS.
// A fake therm_bulk_read linked to it fails the way a real one does for
// the kelvin user without the udev rule, or under ProtectKernelTunables=
// without ReadWritePaths=, whoever runs the test.
const notWritable = "/sys/kernel/uevent_seqnum"

// unavailable matches the sentence for a bus of testdata/w1 (three
// DS18B20s, no conv_time: 750 ms each) whose therm_bulk_read cannot be
// written.
var unavailable = regexp.MustCompile(`bulk conversion unavailable on w1_bus_master1: (permission denied|read-only file system); readings take 3 × 750ms; see docs/hardware\.md`)

// w1TreeWithoutBulk copies testdata/w1 to a temporary directory and gives
// its master a therm_bulk_read that cannot be written. It skips when this
// machine has no such file to link to.
func w1TreeWithoutBulk(t *testing.T) string {
	t.Helper()
	if f, err := os.OpenFile(notWritable, os.O_WRONLY, 0); err == nil {
		f.Close()
		t.Skipf("%s opens for writing here: no file to stand for a therm_bulk_read this process may not write", notWritable)
	} else if _, err := os.Stat(notWritable); err != nil {
		t.Skipf("no %s (no sysfs here): %v", notWritable, err)
	}
	dir := t.TempDir()
	err := os.CopyFS(dir, os.DirFS("testdata/w1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(notWritable, filepath.Join(dir, "w1_bus_master1", "therm_bulk_read")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestW1BulkUnavailableIsTold: when a bus cannot convert in bulk, the
// agent says so once in its log, from the first read on, and on the page
// for as long as it lasts, with the reason and what it costs.
func TestW1BulkUnavailableIsTold(t *testing.T) {
	sysfs := w1TreeWithoutBulk(t)
	var logs testenv.SyncBuffer
	a := startAgentWith(t, fmt.Sprintf(`
agent: { id: g, data_dir: %s }
onewire: { sysfs: %s }
http: { listen: "" }
sensors:
  - { id: a, type: ds18b20, address: 28-000000000191, interval: 1s }
  - { id: b, type: ds18b20, address: 28-0000000bad00, interval: 1s }
  - { id: c, type: ds18b20, address: 28-000000000550, interval: 1s }
`, t.TempDir(), sysfs), Options{Log: slog.New(slog.NewTextHandler(&logs, nil))})

	testenv.WaitForWithin(t, 10*time.Second, "a notice on the page", func() bool { return len(a.Status().Notices) > 0 })
	if n := a.Status().Notices; len(n) != 1 || !unavailable.MatchString(n[0]) {
		t.Errorf("page notices = %q, want one matching %v", n, unavailable)
	}
	// Two more rounds: still one line in the log.
	testenv.WaitForWithin(t, 10*time.Second, "three rounds of reads", func() bool { return a.byID["a"].status().Reads >= 3 })
	var lines []string
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "bulk conversion") {
			lines = append(lines, line)
		}
	}
	if len(lines) != 1 || !unavailable.MatchString(lines[0]) || !strings.Contains(lines[0], "level=WARN") {
		t.Errorf("log lines about bulk conversion: %q, want one warning matching %v\nlog:\n%s", lines, unavailable, logs.String())
	}
}

// TestScanReportsBulkConversion: `kelvin scan` says per bus whether the
// user running it may start a bulk conversion.
func TestScanReportsBulkConversion(t *testing.T) {
	sysfs := w1TreeWithoutBulk(t)
	var out, errOut bytes.Buffer
	if code := Main([]string{"scan", "-sysfs", sysfs, "-dev", t.TempDir()}, &out, &errOut); code != ExitOK {
		t.Fatalf("scan: status %d, stderr %s", code, errOut.String())
	}
	if !regexp.MustCompile(`1-Wire bulk conversion, for .+:\n  ` + unavailable.String()).MatchString(out.String()) {
		t.Errorf("scan output lacks a line matching %v:\n%s", unavailable, out.String())
	}

	// Writable (a plain file, owned by whoever runs the test).
	bulk := filepath.Join(sysfs, "w1_bus_master1", "therm_bulk_read")
	if err := os.Remove(bulk); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bulk, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := Main([]string{"scan", "-sysfs", sysfs, "-dev", t.TempDir()}, &out, &errOut); code != ExitOK {
		t.Fatalf("scan: status %d, stderr %s", code, errOut.String())
	}
	if want := "  bulk conversion on w1_bus_master1: 3 sensors in one 750ms conversion\n"; !strings.Contains(out.String(), want) {
		t.Errorf("scan output lacks %q:\n%s", want, out.String())
	}
	if got, _ := os.ReadFile(bulk); string(got) != "0\n" {
		t.Errorf("scan wrote to therm_bulk_read: %q", got)
	}
}

// TestAgentClosesW1Files: the bulk reader keeps each device's w1_slave open
// between rounds; when the agent stops (as before a reload), they are all
// closed.
func TestAgentClosesW1Files(t *testing.T) {
	sysfs := t.TempDir()
	if err := os.CopyFS(sysfs, os.DirFS("testdata/w1")); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("test.yaml", []byte(fmt.Sprintf(`
agent: { id: g, data_dir: %s }
onewire: { sysfs: %s }
http: { listen: "" }
sensors:
  - { id: a, type: ds18b20, address: 28-000000000191, interval: 1s }
  - { id: b, type: ds18b20, address: 28-000000000550, interval: 1s }
`, t.TempDir(), sysfs)), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, nil) }()
	testenv.WaitForWithin(t, 10*time.Second, "a round of reads", func() bool { return a.byID["a"].status().Reads >= 1 })
	// 28-000000000550 shows the power-on value 85 °C: a failed read,
	// after which its file is opened afresh each time, not kept.
	if n := testenv.OpenUnder(t, sysfs); n != 1 {
		t.Errorf("%d descriptors open on the 1-Wire tree while running, want 1 (the w1_slave that reads well)", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if n := testenv.OpenUnder(t, sysfs); n != 0 {
		t.Errorf("%d descriptors open on the 1-Wire tree after the agent stopped, want 0", n)
	}
}
