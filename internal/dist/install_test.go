package dist

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// installEnv is the environment for a root-free scripts/install.sh run
// into destdir.
func installEnv(destdir string) []string {
	return []string{"DESTDIR=" + destdir, "KELVIN_INSTALL_NO_USER=1", "KELVIN_INSTALL_NO_SYSTEMCTL=1"}
}

// TestInstallScript runs scripts/install.sh into a DESTDIR twice: the
// second run is a no-op apart from the binary, and keeps the edited config.
func TestInstallScript(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	script := filepath.Join(root, "scripts", "install.sh")
	dest := t.TempDir()
	work := t.TempDir()
	bin := filepath.Join(work, "kelvin")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho kelvin v1\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	run(t, work, installEnv(dest), script, bin)
	wantFiles := map[string]struct {
		src  string
		mode os.FileMode
	}{
		"usr/bin/kelvin":                      {bin, 0o755},
		"etc/systemd/system/kelvin.service":   {filepath.Join(root, "packaging", "kelvin.service"), 0o644},
		"etc/udev/rules.d/60-kelvin-w1.rules": {filepath.Join(root, "packaging", "60-kelvin-w1.rules"), 0o644},
		"etc/kelvin/kelvin.yaml":              {filepath.Join(root, "packaging", "kelvin.yaml"), 0o644},
	}
	for path, want := range wantFiles {
		checkFile(t, filepath.Join(dest, path), want.src, want.mode)
	}
	if st, err := os.Stat(filepath.Join(dest, "var", "lib", "kelvin")); err != nil || !st.IsDir() || st.Mode().Perm() != 0o750 {
		t.Errorf("var/lib/kelvin: %v, %v; want a directory with mode 0750", err, st)
	}

	// The admin edits the config; a second run (an upgrade: a new binary,
	// found as ./kelvin this time) must keep it.
	conf := filepath.Join(dest, "etc", "kelvin", "kelvin.yaml")
	edited := []byte("sensors:\n  - id: mine\n    type: sim\n")
	if err := os.WriteFile(conf, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho kelvin v2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := run(t, work, installEnv(dest), script)
	if !strings.Contains(out, "kept /etc/kelvin/kelvin.yaml") {
		t.Errorf("second run did not say it kept the config:\n%s", out)
	}
	if got, _ := os.ReadFile(conf); !bytes.Equal(got, edited) {
		t.Errorf("second run overwrote the config:\n%s", got)
	}
	checkFile(t, filepath.Join(dest, "usr", "bin", "kelvin"), bin, 0o755)
	leftovers, _ := filepath.Glob(filepath.Join(dest, "*", "*", "*.new"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}

	t.Run("missing binary", func(t *testing.T) {
		// A copy of the script, away from the repository's dist/.
		src := copyTree(t, root, "scripts/install.sh", "packaging/kelvin.service", "packaging/kelvin.yaml", "packaging/60-kelvin-w1.rules")
		out, err := runErr(t.TempDir(), installEnv(t.TempDir()), filepath.Join(src, "scripts", "install.sh"))
		if exitCode(err) != 1 || !strings.Contains(out, "no binary") {
			t.Errorf("without a binary: exit %d, want 1 and a message naming the binary:\n%s", exitCode(err), out)
		}
	})

	t.Run("refuses without root", func(t *testing.T) {
		argv := []string{script, bin}
		if os.Getuid() == 0 {
			// Drop to nobody to see the refusal; the script and the
			// packaging files must be readable by it.
			setpriv, err := exec.LookPath("setpriv")
			if err != nil {
				t.Skip("running as root and no setpriv (util-linux) to drop privileges")
			}
			src := copyTree(t, root, "scripts/install.sh", "packaging/kelvin.service", "packaging/kelvin.yaml", "packaging/60-kelvin-w1.rules")
			argv = []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
				filepath.Join(src, "scripts", "install.sh"), filepath.Join(src, "packaging", "kelvin.yaml")}
		}
		for _, env := range [][]string{
			nil,                        // a plain install: writes /usr/bin
			{"DESTDIR=" + t.TempDir()}, // users go into DESTDIR/etc: still root's job
		} {
			out, err := runErr("/", env, argv[0], argv[1:]...)
			if exitCode(err) != 1 || !strings.Contains(out, "must run as root") {
				t.Errorf("as a user with %q: exit %d, want 1 and \"must run as root\":\n%s", env, exitCode(err), out)
			}
		}
	})
}

// TestInstallScriptUsers runs scripts/install.sh as root into a DESTDIR
// holding its own /etc/passwd and /etc/group: it creates the kelvin user in
// the i2c and gpio groups there (creating the missing ones), owns the state
// directory to it, and a second run changes nothing. The machine's own
// users are not touched.
func TestInstallScriptUsers(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("creating users, even under DESTDIR, needs root")
	}
	for _, p := range []string{"useradd", "groupadd", "usermod"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not found (Debian package passwd)", p)
		}
	}
	root := repoRoot(t)
	dest := t.TempDir()
	for name, content := range map[string]string{
		"passwd":  "root:x:0:0:root:/root:/bin/sh\n",
		"group":   "root:x:0:\ni2c:x:990:\n",
		"shadow":  "root:*:19000:0:99999:7:::\n",
		"gshadow": "root:*::\ni2c:!::\n",
	} {
		writeFile(t, filepath.Join(dest, "etc", name), content, 0o640)
	}
	bin := filepath.Join(t.TempDir(), "kelvin")
	writeFile(t, bin, "#!/bin/sh\n", 0o755)
	env := []string{"DESTDIR=" + dest, "KELVIN_INSTALL_NO_SYSTEMCTL=1"}
	script := filepath.Join(root, "scripts", "install.sh")

	hostPasswd := readFile(t, "/etc/passwd")
	run(t, "/", env, script, bin)
	passwd := readFile(t, filepath.Join(dest, "etc", "passwd"))
	group := readFile(t, filepath.Join(dest, "etc", "group"))
	run(t, "/", env, script, bin)
	if again := readFile(t, filepath.Join(dest, "etc", "passwd")); again != passwd {
		t.Errorf("second run changed passwd:\n%s\nthen:\n%s", passwd, again)
	}
	if again := readFile(t, filepath.Join(dest, "etc", "group")); again != group {
		t.Errorf("second run changed group:\n%s\nthen:\n%s", group, again)
	}

	var uid, gid string
	for _, line := range strings.Split(passwd, "\n") {
		f := strings.Split(line, ":")
		if f[0] == "kelvin" && len(f) == 7 {
			uid, gid = f[2], f[3]
			if f[5] != "/var/lib/kelvin" || f[6] != "/usr/sbin/nologin" {
				t.Errorf("kelvin user = %q, want home /var/lib/kelvin and shell /usr/sbin/nologin", line)
			}
		}
	}
	if uid == "" {
		t.Fatalf("no kelvin user in DESTDIR's passwd:\n%s", passwd)
	}
	groups := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(group), "\n") {
		f := strings.Split(line, ":")
		groups[f[0]] = append([]string{f[2]}, strings.Split(f[3], ",")...)
	}
	for _, g := range []string{"i2c", "gpio"} {
		if m := groups[g]; len(m) < 2 || !contains(m[1:], "kelvin") {
			t.Errorf("group %s = %v, want kelvin in it:\n%s", g, m, group)
		}
	}
	if groups["i2c"][0] != "990" {
		t.Errorf("the existing i2c group was recreated: %v", groups["i2c"])
	}
	if m := groups["kelvin"]; len(m) == 0 || m[0] != gid {
		t.Errorf("group kelvin = %v, want gid %s (the user's primary group)", m, gid)
	}
	out := run(t, "", nil, "stat", "-c", "%u:%g %a", filepath.Join(dest, "var", "lib", "kelvin"))
	if want := uid + ":" + gid + " 750"; strings.TrimSpace(out) != want {
		t.Errorf("var/lib/kelvin = %q, want %q", strings.TrimSpace(out), want)
	}
	if !strings.Contains(hostPasswd, "\nkelvin:") && strings.Contains(readFile(t, "/etc/passwd"), "\nkelvin:") {
		t.Errorf("install.sh with DESTDIR created a kelvin user on this machine")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkFile requires path to have src's content and mode.
func checkFile(t testing.TB, path, src string, mode os.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Error(err)
		return
	}
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s", path, src)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != mode {
		t.Errorf("%s: mode %v, want %v (%v)", path, st.Mode().Perm(), mode, err)
	}
}

// copyTree copies the named files (relative to from) into a new temp
// directory that every user can read, and returns it.
func copyTree(t testing.TB, from string, files ...string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kelvin-install-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, f := range files {
		st, err := os.Stat(filepath.Join(from, f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, f), readFile(t, filepath.Join(from, f)), st.Mode().Perm()|0o444)
	}
	if err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && info.IsDir() {
			err = os.Chmod(path, 0o755)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeFile(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
