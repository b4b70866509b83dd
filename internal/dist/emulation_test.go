package dist

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// TestARMBinariesRunUnderEmulation runs the Pi binaries, built as
// scripts/build.sh builds them, under qemu-user: `kelvin version` names the
// architecture, and `kelvin run` serves readings and the page on loopback
// and exits 0 on SIGTERM. The armv6 binary runs on an ARM1176 (the Pi Zero
// and Pi 1 core), which has no VFPv3 and no ARMv7 instructions: a GOARM=7
// binary dies there at startup, as it would on a Pi Zero.
func TestARMBinariesRunUnderEmulation(t *testing.T) {
	for _, tc := range []struct {
		tg   target
		emu  []string // the emulator and its flags
		prog string
	}{
		{armv6, []string{"-cpu", "arm1176"}, "qemu-arm-static"},
		{arm64, nil, "qemu-aarch64-static"},
	} {
		t.Run(tc.tg.Name, func(t *testing.T) {
			t.Parallel()
			qemu := testenv.Require(t, tc.prog, "qemu-user-static")
			dir := t.TempDir()
			bin := buildKelvin(t, tc.tg, "v0.0.0-emulated", dir)
			emu := append(append([]string{qemu}, tc.emu...), bin)

			out := run(t, dir, nil, emu[0], append(emu[1:], "version")...)
			if want := "kelvin v0.0.0-emulated "; !strings.HasPrefix(out, want) {
				t.Errorf("version = %q, want it to start with %q", out, want)
			}
			if want := "linux/" + tc.tg.Arch + ")"; !strings.Contains(out, want) {
				t.Errorf("version = %q, want it to name %q", out, want)
			}

			port := testenv.FreePort(t)
			cfg := agentConfig(t, dir, port)
			runAgent(t, append(emu, "run", "-config", cfg), port, 60*time.Second)
		})
	}
}

// TestARM1176RejectsARMv7 checks the emulation is strict enough to catch a
// wrong GOARM: a tiny GOARM=7 program dies on the emulated ARM1176 (as on a
// Pi Zero: "Illegal instruction"), the same program built with GOARM=6 runs.
// Without it, TestARMBinariesRunUnderEmulation could pass on a Pi 2-class
// core and prove nothing about the Pi Zero.
func TestARM1176RejectsARMv7(t *testing.T) {
	t.Parallel()
	qemu := testenv.Require(t, "qemu-arm-static", "qemu-user-static")
	gobin := testenv.Require(t, "go", "golang-go")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "go.mod"), "module probe\n\ngo 1.26\n", 0o644)
	writeFile(t, filepath.Join(dir, "main.go"), "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"probe\", 1.5) }\n", 0o644)
	for _, goarm := range []string{"6", "7"} {
		bin := filepath.Join(dir, "probe"+goarm)
		run(t, dir, []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm", "GOARM=" + goarm, "GOFLAGS=-buildvcs=false"},
			gobin, "build", "-trimpath", "-o", bin, ".")
		out, err := runErr(dir, nil, qemu, "-cpu", "arm1176", bin)
		switch {
		case goarm == "6" && (err != nil || !strings.Contains(out, "probe 1.5")):
			t.Errorf("GOARM=6 on arm1176: %v\n%s", err, out)
		case goarm == "7" && err == nil:
			t.Errorf("GOARM=7 ran on the emulated ARM1176; the emulation would not catch an ARMv7 binary:\n%s", out)
		}
	}
}
