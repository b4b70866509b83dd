package dist

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// Environment of the re-executed test binary that runs inside the private
// mount namespace.
const (
	lifecycleEnv = "KELVIN_DIST_LIFECYCLE" // "old.deb:new.deb" in the child
)

// TestDebLifecycle installs the package with dpkg, upgrades it, removes
// and purges it, and checks what Debian promises at each step: the kelvin
// user in groups i2c and gpio, /var/lib/kelvin owned by it, the unit
// enabled, the udev rule installed; an upgrade keeping the edited config and
// the buffer; a removal keeping both and taking the rule; a purge deleting
// them.
//
// It runs for real, as root, in a private mount namespace whose /etc, /usr
// and /var are overlays on a tmpfs (and whose /run/systemd is empty, so the
// maintainer scripts take their no-systemd path), so the machine is left as
// it was. Where that is not possible (not root, no mount namespaces, no
// overlayfs) it skips.
func TestDebLifecycle(t *testing.T) {
	if debs := os.Getenv(lifecycleEnv); debs != "" {
		oldDeb, newDeb, _ := strings.Cut(debs, ":")
		lifecycleInNamespace(t, oldDeb, newDeb)
		return
	}
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("dpkg -i needs root (the namespace keeps the machine unchanged)")
	}
	testenv.Require(t, "dpkg", "dpkg")
	if out, err := runErr("", nil, "dpkg-query", "-W", "-f", "${Status}", "kelvin"); err == nil && strings.Contains(out, "installed") {
		t.Skipf("kelvin is installed on this machine (%s); not testing over it", out)
	}
	_, oldDeb := buildHostDeb(t, "v1.2.3")
	_, newDeb := buildHostDeb(t, "v1.2.4")

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^TestDebLifecycle$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), lifecycleEnv+"="+oldDeb+":"+newDeb)
	// Go makes / private (MS_REC|MS_PRIVATE) in a new mount namespace, so
	// nothing mounted in there propagates back.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	b, err := cmd.CombinedOutput()
	out := string(b)
	var pe *os.PathError
	switch {
	case errors.As(err, &pe) || errors.Is(err, syscall.EPERM):
		t.Skipf("no private mount namespace here: %v", err)
	case strings.Contains(out, "--- SKIP: TestDebLifecycle"):
		t.Skipf("inside the namespace:\n%s", out)
	case err != nil:
		t.Fatalf("dpkg lifecycle in a private namespace: %v\n%s", err, out)
	}
	t.Logf("inside the namespace:\n%s", out)
}

// lifecycleInNamespace is TestDebLifecycle inside the private mount
// namespace, in the re-executed test binary.
func lifecycleInNamespace(t *testing.T, oldDeb, newDeb string) {
	scratch := t.TempDir()
	// Cleanups run last first: the overlays go, then this tmpfs, then
	// TempDir removes the empty directory.
	mount := func(source, target, fstype, data string) error {
		if err := syscall.Mount(source, target, fstype, 0, data); err != nil {
			return err
		}
		t.Cleanup(func() { syscall.Unmount(target, syscall.MNT_DETACH) })
		return nil
	}
	// overlayfs wants its upper directory on a plain filesystem, not on
	// the container's own overlay.
	if err := mount("tmpfs", scratch, "tmpfs", "mode=0755"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	for _, dir := range []string{"/etc", "/usr", "/var"} {
		up, work := filepath.Join(scratch, dir, "upper"), filepath.Join(scratch, dir, "work")
		for _, d := range []string{up, work} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := mount("overlay", dir, "overlay", "lowerdir="+dir+",upperdir="+up+",workdir="+work); err != nil {
			t.Skipf("overlay on %s: %v", dir, err)
		}
	}
	if _, err := os.Stat("/run/systemd"); err == nil {
		if err := mount("tmpfs", "/run/systemd", "tmpfs", "mode=0755"); err != nil {
			t.Fatalf("hide /run/systemd: %v", err)
		}
	}
	dsh, _ := exec.LookPath("deb-systemd-helper")
	wants := "/etc/systemd/system/multi-user.target.wants/kelvin.service"
	const udevRule = "/lib/udev/rules.d/60-kelvin-w1.rules"

	// Install.
	t.Logf("dpkg -i %s", filepath.Base(oldDeb))
	run(t, "/", nil, "dpkg", "-i", oldDeb)
	if out := run(t, "/", nil, "id", "-nG", "kelvin"); !hasWords(out, "kelvin", "i2c", "gpio") {
		t.Errorf("id -nG kelvin = %q, want kelvin, i2c and gpio", out)
	}
	if out := run(t, "/", nil, "getent", "passwd", "kelvin"); !strings.HasSuffix(strings.TrimSpace(out), ":/var/lib/kelvin:/usr/sbin/nologin") {
		t.Errorf("getent passwd kelvin = %q, want home /var/lib/kelvin and no login shell", out)
	}
	if out := run(t, "/", nil, "stat", "-c", "%U:%G %a", "/var/lib/kelvin"); strings.TrimSpace(out) != "kelvin:kelvin 750" {
		t.Errorf("/var/lib/kelvin = %q, want kelvin:kelvin 750", out)
	}
	if dsh != "" {
		if _, err := os.Lstat(wants); err != nil {
			t.Errorf("the service is not enabled after install: %v", err)
		}
	}
	if _, err := os.Stat(udevRule); err != nil {
		t.Errorf("the udev rule is not installed: %v", err)
	}

	// Use: the admin edits the config, the agent buffers readings.
	const edit = "\n# edited by the admin\n"
	appendFile(t, "/etc/kelvin/kelvin.yaml", edit)
	writeFile(t, "/var/lib/kelvin/buffer", "readings", 0o640)

	// Upgrade; then the postinst again, as dpkg-reconfigure would.
	t.Logf("dpkg -i %s", filepath.Base(newDeb))
	run(t, "/", nil, "dpkg", "-i", newDeb)
	if out := run(t, "/", nil, "dpkg-query", "-W", "-f", "${Version}", "kelvin"); out != "1.2.4" {
		t.Errorf("after the upgrade dpkg has version %q, want 1.2.4", out)
	}
	if !strings.HasSuffix(readFile(t, "/etc/kelvin/kelvin.yaml"), edit) {
		t.Errorf("the upgrade lost the edited config")
	}
	if readFile(t, "/var/lib/kelvin/buffer") != "readings" {
		t.Errorf("the upgrade lost /var/lib/kelvin/buffer")
	}
	run(t, "/", nil, "/var/lib/dpkg/info/kelvin.postinst", "configure", "1.2.4")
	if out := run(t, "/", nil, "id", "-nG", "kelvin"); !hasWords(out, "kelvin", "i2c", "gpio") {
		t.Errorf("after postinst ran twice: id -nG kelvin = %q", out)
	}

	// Remove: the config and the buffer stay.
	t.Log("dpkg -r kelvin")
	run(t, "/", nil, "dpkg", "-r", "kelvin")
	for _, gone := range []string{"/usr/bin/kelvin", "/lib/systemd/system/kelvin.service", udevRule} {
		if _, err := os.Lstat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after dpkg -r: %v", gone, err)
		}
	}
	if !strings.HasSuffix(readFile(t, "/etc/kelvin/kelvin.yaml"), edit) {
		t.Errorf("dpkg -r changed the config")
	}
	if readFile(t, "/var/lib/kelvin/buffer") != "readings" {
		t.Errorf("dpkg -r deleted /var/lib/kelvin/buffer")
	}

	// Purge: everything but the user goes.
	t.Log("dpkg -P kelvin")
	run(t, "/", nil, "dpkg", "-P", "kelvin")
	for _, gone := range []string{"/etc/kelvin", "/var/lib/kelvin", wants} {
		if _, err := os.Lstat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after dpkg -P: %v", gone, err)
		}
	}
	if out, err := runErr("/", nil, "dpkg-query", "-W", "kelvin"); err == nil {
		t.Errorf("dpkg still knows kelvin after the purge: %s", out)
	}
}

// hasWords reports whether every word is one of the fields of s.
func hasWords(s string, words ...string) bool {
	have := strings.Fields(s)
	for _, w := range words {
		if !contains(have, w) {
			return false
		}
	}
	return true
}

func appendFile(t testing.TB, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
