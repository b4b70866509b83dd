//go:build linux

package hil

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// metapackage always depends on the current armmp kernel package, whose name
// (linux-image-6.1.0-NN-armmp) changes with every ABI bump; old ones leave
// the archive, so the name is resolved on every run, never written down.
const metapackage = "linux-image-armmp:armhf"

// wantModules are the modules the guest loads (with their dependencies, read
// from each module's depends=): the LAN9118 network driver and the I²C
// adapter driver and character device. All are =m in Debian's armmp config;
// I2C_ALGOBIT, the bit-banging core i2c-versatile uses, is built in.
// libphy, smsc911x's dependency, is named too so that one pass over the
// package finds everything; a dependency a later kernel adds costs one more.
var wantModules = []string{"smsc911x", "libphy", "i2c-versatile", "i2c-dev"}

// kernel is a guest kernel from the cache.
type kernel struct {
	Package string   // linux-image-6.1.0-57-armmp_6.1.192-3
	Vmlinuz string   // path of the compressed kernel
	DTB     string   // path of vexpress-v2p-ca9.dtb
	Modules []string // paths of the modules, in load order
}

// cacheDir is where downloaded kernels are kept: $XDG_CACHE_HOME/kelvin-hil,
// or ~/.cache/kelvin-hil. Never in the repository.
func cacheDir(t *testing.T) string {
	t.Helper()
	base, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no cache directory for the guest kernel: %v", err)
	}
	return filepath.Join(base, "kelvin-hil")
}

// guestKernel resolves the current armmp kernel package through the
// metapackage and returns it from the cache, downloading (apt-get download,
// which needs no root) and extracting it first when the cache does not
// hold that version. Older versions are removed once a newer one is in.
func guestKernel(t *testing.T, ctx context.Context) kernel {
	t.Helper()
	testenv.Require(t, "apt-cache", "apt")
	testenv.Require(t, "apt-get", "apt")
	testenv.Require(t, "dpkg-deb", "dpkg")
	pkg, version, err := resolveKernel(ctx)
	if err != nil {
		msg := fmt.Sprintf("no armhf kernel package known to apt (%v): as root run dpkg --add-architecture armhf && apt-get update (scripts/test.sh does this)", err)
		if testenv.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	root := cacheDir(t)
	name := pkg + "_" + version
	dir := filepath.Join(root, name)
	if k, err := loadKernel(dir, name); err == nil {
		return k
	}
	t.Logf("downloading %s=%s:armhf into %s", pkg, version, root)
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(root, "download-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	// apt's download sandbox user must be able to write here.
	if err := os.Chmod(tmp, 0o777); err != nil {
		t.Fatal(err)
	}
	download := func() ([]byte, error) {
		dl := exec.CommandContext(ctx, "apt-get", "download", "-q", pkg+":armhf="+version)
		dl.Dir = tmp
		return dl.CombinedOutput()
	}
	out, err := download()
	if err != nil && os.Geteuid() == 0 {
		// Old kernel packages leave the archive with every ABI bump:
		// lists older than that name one no longer there. As root,
		// refresh them (as scripts/test.sh would) and resolve again.
		t.Logf("apt-get download %s=%s: %v: updating apt's lists", pkg, version, err)
		if b, uerr := exec.CommandContext(ctx, "apt-get", "update", "-qq").CombinedOutput(); uerr != nil {
			t.Fatalf("apt-get update: %v\n%s", uerr, b)
		}
		if pkg, version, err = resolveKernel(ctx); err != nil {
			t.Fatal(err)
		}
		name = pkg + "_" + version
		dir = filepath.Join(root, name)
		out, err = download()
	}
	if err != nil {
		t.Fatalf("apt-get download %s=%s: %v\n%s\n(the package lists may be out of date: as root run apt-get update)", pkg, version, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("apt-get download left %v", debs)
	}
	extracted := filepath.Join(tmp, name)
	if err := extractKernel(ctx, debs[0], extracted); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(extracted, dir); err != nil {
		// Another run may have put the same version in first.
		if _, statErr := os.Stat(filepath.Join(dir, "order")); statErr != nil {
			t.Fatal(err)
		}
	}
	old, _ := filepath.Glob(filepath.Join(root, "linux-image-*"))
	for _, o := range old {
		if o != dir {
			os.RemoveAll(o)
		}
	}
	// Downloads of runs that were killed.
	stale, _ := filepath.Glob(filepath.Join(root, "download-*"))
	for _, d := range stale {
		if st, err := os.Stat(d); err == nil && d != tmp && time.Since(st.ModTime()) > time.Hour {
			os.RemoveAll(d)
		}
	}
	k, err := loadKernel(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// resolveKernel asks apt which package the metapackage depends on now, and
// its version.
func resolveKernel(ctx context.Context) (pkg, version string, err error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", metapackage).CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("apt-cache depends %s: %v: %s", metapackage, err, bytes.TrimSpace(out))
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			pkg = strings.TrimSuffix(f[1], ":armhf")
			break
		}
	}
	if pkg == "" {
		return "", "", fmt.Errorf("apt-cache depends %s names no linux-image package: %s", metapackage, bytes.TrimSpace(out))
	}
	out, err = exec.CommandContext(ctx, "apt-cache", "show", "--no-all-versions", pkg+":armhf").CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("apt-cache show %s: %v: %s", pkg, err, bytes.TrimSpace(out))
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "Version: "); ok {
			return pkg, strings.TrimSpace(v), nil
		}
	}
	return "", "", fmt.Errorf("apt-cache show %s: no Version", pkg)
}

// The cache directory of one kernel holds vmlinuz, vexpress-v2p-ca9.dtb,
// the modules and "order", their names in load order.
func loadKernel(dir, name string) (kernel, error) {
	order, err := os.ReadFile(filepath.Join(dir, "order"))
	if err != nil {
		return kernel{}, err
	}
	k := kernel{Package: name, Vmlinuz: filepath.Join(dir, "vmlinuz"), DTB: filepath.Join(dir, "vexpress-v2p-ca9.dtb")}
	for _, m := range strings.Fields(string(order)) {
		k.Modules = append(k.Modules, filepath.Join(dir, m))
	}
	for _, f := range append([]string{k.Vmlinuz, k.DTB}, k.Modules...) {
		if _, err := os.Stat(f); err != nil {
			return kernel{}, err
		}
	}
	return k, nil
}

// extractKernel writes into dir what the guest needs from the .deb: the
// kernel, the board's device tree and the wanted modules with the modules
// they depend on, and "order" last (a directory without it is incomplete).
// dpkg-deb decompresses the data archive (Debian's is xz, which Go's
// library does not read); the tar stream is read here.
func extractKernel(ctx context.Context, deb, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	need := slices.Clone(wantModules)
	have := map[string]bool{}
	for pass := 0; len(need) > 0; pass++ {
		if pass > 3 {
			return fmt.Errorf("%s: module dependencies of %v not resolved", deb, need)
		}
		found, err := extractPass(ctx, deb, dir, pass == 0, need)
		if err != nil {
			return err
		}
		var next []string
		for _, m := range need {
			image, ok := found[m]
			if !ok {
				return fmt.Errorf("%s: no module %s.ko", deb, m)
			}
			have[m] = true
			for _, dep := range moduleDepends(image) {
				if !have[dep] && !slices.Contains(need, dep) && !slices.Contains(next, dep) {
					next = append(next, dep)
				}
			}
		}
		need = next
	}
	order := loadOrder(dir, slices.Sorted(maps.Keys(have)))
	for _, f := range []string{"vmlinuz", "vexpress-v2p-ca9.dtb"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return fmt.Errorf("%s: no %s", deb, f)
		}
	}
	var b strings.Builder
	for _, m := range order {
		b.WriteString(m + ".ko\n")
	}
	return os.WriteFile(filepath.Join(dir, "order"), []byte(b.String()), 0o644)
}

// loadOrder sorts modules so that each comes after what it depends on.
func loadOrder(dir string, mods []string) []string {
	deps := map[string][]string{}
	for _, m := range mods {
		image, _ := os.ReadFile(filepath.Join(dir, m+".ko"))
		deps[m] = moduleDepends(image)
	}
	var out []string
	done := map[string]bool{}
	var visit func(m string)
	visit = func(m string) {
		if done[m] {
			return
		}
		done[m] = true
		for _, d := range deps[m] {
			visit(d)
		}
		out = append(out, m)
	}
	for _, m := range mods {
		visit(m)
	}
	return out
}

// extractPass reads the package's files once, writing the modules named in
// need (and, when boot is set, the kernel and device tree) into dir. It
// returns the modules' contents by name.
func extractPass(ctx context.Context, deb, dir string, boot bool, need []string) (map[string][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	found := map[string][]byte{}
	tr := tar.NewReader(stdout)
	var readErr error
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		base := path.Base(h.Name)
		var out string
		switch {
		case boot && strings.HasPrefix(h.Name, "./boot/vmlinuz-"):
			out = "vmlinuz"
		case boot && base == "vexpress-v2p-ca9.dtb":
			out = base
		case strings.Contains(h.Name, "/kernel/") && slices.Contains(need, moduleName(base)):
			out = moduleName(base) + ".ko"
		default:
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			readErr = err
			break
		}
		if err := os.WriteFile(filepath.Join(dir, out), b, 0o644); err != nil {
			readErr = err
			break
		}
		if strings.HasSuffix(out, ".ko") {
			found[strings.TrimSuffix(out, ".ko")] = b
		}
	}
	io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("dpkg-deb --fsys-tarfile %s: %v: %s", deb, err, stderr.Bytes())
	}
	if readErr != nil {
		return nil, fmt.Errorf("%s: %w", deb, readErr)
	}
	return found, nil
}

// moduleName is the kernel's name for a module file: i2c-dev.ko → i2c-dev.
// (The kernel treats - and _ alike; depends= lists use the file's spelling
// with _ for -, so both are compared normalised.)
func moduleName(file string) string {
	return strings.ReplaceAll(strings.TrimSuffix(file, ".ko"), "_", "-")
}

// moduleDepends reads the depends= entry of a module's .modinfo section.
func moduleDepends(image []byte) []string {
	i := bytes.Index(image, []byte("\x00depends="))
	if i < 0 {
		return nil
	}
	rest := image[i+len("\x00depends="):]
	if j := bytes.IndexByte(rest, 0); j >= 0 {
		rest = rest[:j]
	}
	var out []string
	for _, d := range strings.Split(string(rest), ",") {
		if d != "" {
			out = append(out, moduleName(d))
		}
	}
	return out
}

// TestModuleOrder reads depends= from .modinfo-like images and orders the
// modules after what they depend on.
func TestModuleOrder(t *testing.T) {
	dir := t.TempDir()
	for name, image := range map[string]string{
		"smsc911x":      "\x00license=GPL\x00depends=libphy\x00intree=Y\x00",
		"libphy":        "\x00depends=\x00",
		"i2c-dev":       "\x00depends=\x00",
		"i2c-versatile": "\x00depends=i2c_algo_bit\x00",
		"i2c-algo-bit":  "\x00name=i2c_algo_bit\x00",
	} {
		if err := os.WriteFile(filepath.Join(dir, name+".ko"), []byte(image), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := loadOrder(dir, []string{"i2c-dev", "i2c-versatile", "smsc911x", "libphy", "i2c-algo-bit"})
	want := []string{"i2c-dev", "i2c-algo-bit", "i2c-versatile", "libphy", "smsc911x"}
	if !slices.Equal(got, want) {
		t.Errorf("loadOrder = %v, want %v", got, want)
	}
}
