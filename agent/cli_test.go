package agent

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

func TestMainExitCodes(t *testing.T) {
	// The page history's figures follow the size of a reading in memory
	// (httpui.ReadingBytes): 144 bytes on a 64-bit build, 96 on a 32-bit one
	// (armv6 and armv7, the Pi builds, and 386).
	histMinimal := "page history: 1 series need about 0.5 MiB for http.history 1h0m0s; http.history_bytes is 32.0 MiB\n"
	histFast := "page history: 2 series need about 1.0 MiB for http.history 1h0m0s; http.history_bytes is 0.2 MiB\n" +
		"warning: http.history_bytes: 0.2 MiB holds 910 readings per series, about 1m31s of a sensor read every 100ms, less than http.history 1h0m0s: raise http.history_bytes to 1.0 MiB or lower http.history\n"
	if strconv.IntSize == 32 {
		histMinimal = "page history: 1 series need about 0.3 MiB for http.history 1h0m0s; http.history_bytes is 32.0 MiB\n"
		histFast = "page history: 2 series need about 0.7 MiB for http.history 1h0m0s; http.history_bytes is 0.2 MiB\n" +
			"warning: http.history_bytes: 0.2 MiB holds 1365 readings per series, about 2m17s of a sensor read every 100ms, less than http.history 1h0m0s: raise http.history_bytes to 0.7 MiB or lower http.history\n"
	}
	for _, tc := range []struct {
		args       []string
		code       int
		out, inErr string
	}{
		{args: nil, code: ExitUsage, inErr: "Usage:"},
		{args: []string{"frobnicate"}, code: ExitUsage, inErr: `unknown command "frobnicate"`},
		{args: []string{"version"}, code: ExitOK, out: "kelvin "},
		{args: []string{"check", "-config", "testdata/good-minimal.yaml"}, code: ExitOK, out: "testdata/good-minimal.yaml: ok: agent "},
		{args: []string{"check", "-config", "testdata/good-minimal.yaml"}, code: ExitOK, out: histMinimal},
		// The page history's memory budget against what the sensors need
		// (issue 15, item 5): a warning, not an error.
		{args: []string{"check", "-config", "testdata/good-fast-history.yaml"}, code: ExitOK, out: histFast},
		// The fleet example says what it follows.
		{args: []string{"check", "-config", "../configs/fleet.yaml"}, code: ExitOK,
			out: "../configs/fleet.yaml: ok: agent fleet, 0 sensors, outputs: none, page: :8080, fleet follows: mqtt tcp://localhost:1883\n"},
		{args: []string{"check"}, code: ExitUsage, inErr: "-config FILE is required"},
		{args: []string{"check", "-config", "testdata/nonexistent.yaml"}, code: ExitUsage, inErr: "testdata/nonexistent.yaml: no such file or directory"},
		{args: []string{"check", "-config", "testdata/bad-keys.yaml"}, code: ExitUsage, inErr: "testdata/bad-keys.yaml:3: agent.datadir: unknown key"},
		// A forwarding fleet that would feed itself (issue 18).
		{args: []string{"check", "-config", "testdata/bad-forward.yaml"}, code: ExitUsage, inErr: "testdata/bad-forward.yaml:5: fleet.forward: would feed the fleet its own readings"},
		// run refuses a bad config with status 2 before starting anything.
		{args: []string{"run", "-config", "testdata/bad-w1.yaml"}, code: ExitUsage, inErr: "testdata/bad-w1.yaml:6: sensors[1].address"},
		{args: []string{"run", "-bogus"}, code: ExitUsage, inErr: "flag provided but not defined"},
	} {
		var out, errOut bytes.Buffer
		code := Main(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errOut.String(), tc.inErr) {
			t.Errorf("kelvin %s: status %d, stdout %q, stderr %q; want status %d, stdout with %q, stderr with %q",
				strings.Join(tc.args, " "), code, out.String(), errOut.String(), tc.code, tc.out, tc.inErr)
		}
	}
}

// TestScanFakeSysfs scans a fake kernel 1-Wire tree (and no I²C buses): it
// lists each device with its reading and prints a config block that
// `kelvin check` accepts.
func TestScanFakeSysfs(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Main([]string{"scan", "-sysfs", "testdata/w1", "-dev", t.TempDir()}, &out, &errOut)
	if code != ExitOK {
		t.Fatalf("scan: status %d, stderr %s", code, errOut.String())
	}
	for _, want := range []string{
		"28-000000000191  25.0625 °C",
		"28-0000000bad00  faulty: ",
		"28-000000000550  faulty: ",
		"I²C: no buses at",
		"  - id: w1_28_000000000191\n    type: ds18b20\n    address: 28-000000000191\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("scan output lacks %q:\n%s", want, out.String())
		}
	}
	_, block, ok := strings.Cut(out.String(), "rename the ids as you like):\n")
	if !ok {
		t.Fatal("no config block")
	}
	if _, err := Parse("scan.yaml", []byte(block), func(string) (string, bool) { return "", false }); err != nil {
		t.Errorf("the pasted block does not check: %v\n%s", err, block)
	}
}

func TestScanNothingAttached(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main([]string{"scan", "-sysfs", t.TempDir() + "/none", "-dev", t.TempDir()}, &out, &errOut); code != ExitOK {
		t.Fatalf("status %d", code)
	}
	if !strings.Contains(out.String(), "no kernel 1-Wire bus") || !strings.Contains(out.String(), "Nothing attached was found") {
		t.Errorf("output:\n%s", out.String())
	}
}

// TestScanBridgeFamilies: behind a DS2482, scan suggests a sensor for every
// family the config takes (sensors.ValidW1Address), no other, and the
// block checks.
func TestScanBridgeFamilies(t *testing.T) {
	var block strings.Builder
	for d, want := range map[string]bool{
		"10-000801b5a9c2": true, "22-000000a1b2c3": true, "28-0316a2b8ff01": true,
		"3b-000000a1b2c3": true, "42-000000a1b2c3": true,
		"01-000012345678": false, "26-000000a1b2c3": false,
	} {
		y, ok := bridgeSensorYAML(d, 1, 0x18)
		if ok != want {
			t.Errorf("%s: suggested %v, want %v", d, ok, want)
		}
		block.WriteString(y)
	}
	if _, err := Parse("scan.yaml", []byte("sensors:\n"+block.String()), func(string) (string, bool) { return "", false }); err != nil {
		t.Errorf("the suggested block does not check: %v\n%s", err, block.String())
	}
}
