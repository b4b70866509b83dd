//go:build linux

package hil

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// temperatures are set on the emulated TMP105 one after the other: across
// its range (−55…+125 °C), below zero included, multiples of 0.125 °C (which
// the model stores exactly) and none on the 0.5 °C grid of the chip's
// power-on 9-bit resolution, where each would read differently (−55, −10.5,
// 0.5, 36.5, 124.5). So each arriving as set proves the driver put the chip
// at 12 bits by itself; the harness never touches its registers.
var temperatures = []float64{-54.875, -10.125, 0.625, 36.625, 124.875}

// TestHardwareInTheLoop boots Debian's armhf kernel under QEMU (vexpress-a9)
// with QEMU's TMP105 model at 0x48 on the board's I²C bus and Kelvin's armv7
// binary as the guest's only program (see package doc), and checks:
//
//   - `kelvin scan` in the guest lists a chip at 0x48 of bus 0 with the
//     TMP75-class types to choose from, and reports bus 1 (a controller the
//     device tree names but QEMU does not emulate) as not answering;
//   - each of the temperatures, set over QMP once the guest is up, arrives
//     at a real mosquitto on the host through Kelvin's MQTT output (the
//     guest reaches the host's loopback as 10.0.2.2, QEMU's user network),
//     exactly, and no other value does;
//   - the page's /api/readings, through a port QEMU forwards from
//     127.0.0.1, has the last one;
//   - "poweroff" on the console stops Kelvin cleanly (status 0) and ends
//     QEMU with status 0.
func TestHardwareInTheLoop(t *testing.T) {
	qemu := testenv.Require(t, "qemu-system-arm", "qemu-system-arm")
	gobin := testenv.Require(t, "go", "golang-go")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	lap := func(what string) { t.Logf("%5.1fs %s", time.Since(t0).Seconds(), what) }

	k := guestKernel(t, ctx)
	lap("kernel " + k.Package)
	broker := testenv.StartMosquitto(t)
	sub := subscribe(t, broker.URL, "kelvin/hil/#")
	dir := t.TempDir()
	kelvin := buildARM(t, ctx, gobin, ".", filepath.Join(dir, "kelvin"))
	guestInit := buildARM(t, ctx, gobin, "./internal/hil/guestinit", filepath.Join(dir, "init"))
	lap("built kelvin and the guest's /init (linux/arm GOARM=7)")

	initrd := filepath.Join(dir, "initramfs.cpio.gz")
	writeGuestInitramfs(t, initrd, k, guestInit, kelvin, guestConfig(broker.Port))
	lap("initramfs written")

	httpPort := testenv.FreePort(t)
	qmpPath := filepath.Join(dir, "qmp.sock")
	g := startGuest(t, qemu, qmpPath, []string{
		"-M", "vexpress-a9", "-m", "256", "-smp", "1",
		"-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
		"-audiodev", "none,id=snd", "-global", "pl041.audiodev=snd", // the board's sound chip: silent, no host audio probed
		"-kernel", k.Vmlinuz, "-dtb", k.DTB, "-initrd", initrd,
		"-append", "console=ttyAMA0 rdinit=/init panic=-1 quiet",
		"-device", "tmp105,address=0x48,id=t0,bus=i2c",
		"-nic", fmt.Sprintf("user,model=lan9118,hostfwd=tcp:127.0.0.1:%d-:8080", httpPort),
		"-qmp", "unix:" + qmpPath + ",server=on,wait=off",
	})
	waitGuest := func(d time.Duration, what string, cond func() bool) {
		t.Helper()
		testenv.WaitForWithin(t, d, what, func() bool {
			if !g.running() {
				t.Fatalf("qemu exited (%v) while waiting for %s", g.err, what)
			}
			return cond()
		})
	}

	waitGuest(90*time.Second, "the guest's kelvin scan", func() bool { return g.consoleHas("hil: scan end") })
	lap(lineWith(g.lines(), "hil: scan end"))
	scan := g.lines()
	if i, j := slices.IndexFunc(scan, func(l string) bool { return strings.Contains(l, "hil: scan begin") }),
		slices.IndexFunc(scan, func(l string) bool { return strings.Contains(l, "hil: scan end") }); i >= 0 && j > i {
		t.Logf("kelvin scan in the guest:\n%s", strings.Join(scan[i+1:j], "\n"))
	}
	for _, want := range []string{
		"0x48  unknown (no ID register: set type to the part number printed on the chip, one of lm75, lm75a, lm75b, tmp102, tmp105, tmp175, tmp275, tmp75)",
		"I²C bus 1: i2c: /dev/i2c-1: bus does not answer: a one-byte read of 0x03 took longer than 250ms",
	} {
		if lineWith(scan, want) == "" {
			t.Errorf("kelvin scan in the guest printed no line with %q", want)
		}
	}

	// The model starts at 0 °C: the guest is up once that has arrived.
	waitGuest(90*time.Second, "the first reading at the broker", func() bool { return len(sub.values()) > 0 })
	lap(fmt.Sprintf("first reading at the broker: %v °C", sub.values()[0]))
	for _, want := range temperatures {
		if err := g.setTemperature(ctx, "t0", want); err != nil {
			t.Fatal(err)
		}
		seen := len(sub.values())
		waitGuest(30*time.Second, fmt.Sprintf("%v °C at the broker", want), func() bool {
			return slices.Contains(sub.values()[seen:], want)
		})
		lap(fmt.Sprintf("%v °C set over QMP and received", want))
	}
	for _, v := range sub.values() {
		if v != 0 && !slices.Contains(temperatures, v) {
			t.Errorf("the broker received %v °C, a value never set (a reading at the wrong resolution?)", v)
		}
	}

	last := temperatures[len(temperatures)-1]
	url := fmt.Sprintf("http://127.0.0.1:%d/api/readings?sensor=board", httpPort)
	var page []float64
	var polled time.Time
	waitGuest(30*time.Second, "the last temperature in the page's /api/readings", func() bool {
		if time.Since(polled) < 200*time.Millisecond {
			return false // at most five requests a second into the guest
		}
		polled = time.Now()
		page = apiReadings(url)
		return len(page) > 0 && page[len(page)-1] == last
	})
	lap(fmt.Sprintf("/api/readings through the forwarded port: %d readings, the last %v °C", len(page), page[len(page)-1]))

	if _, err := io.WriteString(g.stdin, "poweroff\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.exited:
	case <-time.After(60 * time.Second):
		t.Fatal("qemu still running 60 s after poweroff was asked for")
	}
	if g.err != nil {
		t.Errorf("qemu exited with %v, want status 0 (a guest poweroff)", g.err)
	}
	if !g.consoleHas("hil: kelvin exited: status 0") {
		t.Errorf("Kelvin did not stop cleanly on SIGTERM in the guest (%q)", lineWith(g.lines(), "hil: kelvin exited"))
	}
	lap("guest powered off, qemu exited")
}

// lineWith returns the first line containing s, or "".
func lineWith(lines []string, s string) string {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// guestConfig is Kelvin's config in the guest: the TMP105 on bus 0 read
// every 500 ms, no filters, published to the host's broker.
func guestConfig(brokerPort int) []byte {
	return fmt.Appendf(nil, `agent:
  id: hil
  data_dir: /data
sensors:
  - id: board
    type: tmp105
    bus: 0
    address: 0x48
    interval: 500ms
mqtt:
  url: tcp://10.0.2.2:%d
  qos: 1
http:
  listen: ":8080"
log:
  format: text
`, brokerPort)
}

// buildARM builds the package pkg (relative to the module root) for the
// guest as scripts/build.sh builds the armv7 release binary: static,
// linux/arm GOARM=7, -trimpath, stripped, without net/http's HTTP/2.
func buildARM(t *testing.T, ctx context.Context, gobin, pkg, out string) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, gobin, "build", "-trimpath", "-buildvcs=false", "-tags", "nethttpomithttp2",
		"-ldflags", "-s -w", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm", "GOARM=7")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s for linux/arm: %v\n%s", pkg, err, b)
	}
	return out
}

// writeGuestInitramfs writes the guest's root file system: /init, /kelvin,
// its config, the modules with their load order, the mount points, and
// /dev/console, which the kernel opens for /init before devtmpfs is mounted.
func writeGuestInitramfs(t *testing.T, path string, k kernel, guestInit, kelvin string, config []byte) {
	t.Helper()
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	files := []cpioFile{
		{Name: "dev", Mode: modeDir | 0o755},
		{Name: "dev/console", Mode: modeChar | 0o600, Major: 5, Minor: 1},
		{Name: "proc", Mode: modeDir | 0o755},
		{Name: "sys", Mode: modeDir | 0o755},
		{Name: "data", Mode: modeDir | 0o755},
		{Name: "tmp", Mode: modeDir | 0o1777},
		{Name: "etc", Mode: modeDir | 0o755},
		{Name: "etc/kelvin.yaml", Mode: modeFile | 0o644, Data: config},
		{Name: "lib", Mode: modeDir | 0o755},
		{Name: "lib/modules", Mode: modeDir | 0o755},
		{Name: "init", Mode: modeFile | 0o755, Data: read(guestInit)},
		{Name: "kelvin", Mode: modeFile | 0o755, Data: read(kelvin)},
	}
	var order strings.Builder
	for _, m := range k.Modules {
		files = append(files, cpioFile{Name: "lib/modules/" + filepath.Base(m), Mode: modeFile | 0o644, Data: read(m)})
		order.WriteString(filepath.Base(m) + "\n")
	}
	files = append(files, cpioFile{Name: "lib/modules/order", Mode: modeFile | 0o644, Data: []byte(order.String())})
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeInitramfs(f, files); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// subscriber keeps the raw values of the readings a real MQTT client
// receives, in order.
type subscriber struct {
	mu   sync.Mutex
	vals []float64
}

func subscribe(t *testing.T, url, filter string) *subscriber {
	t.Helper()
	s := &subscriber{}
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("hil-sub-%d", time.Now().UnixNano())))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		var r struct {
			Sensor, Quantity string
			Raw              *float64
		}
		if json.Unmarshal(m.Payload(), &r) != nil || r.Raw == nil || r.Sensor != "board" {
			return // the status topic
		}
		s.mu.Lock()
		s.vals = append(s.vals, *r.Raw)
		s.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return s
}

func (s *subscriber) values() []float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.vals)
}

// apiReadings returns the values of /api/readings, oldest first, or nil
// when the page does not answer (yet).
func apiReadings(url string) []float64 {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var rs []struct{ Value float64 }
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&rs) != nil {
		return nil
	}
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r.Value
	}
	return out
}
