package dist

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPackagedConfig checks packaging/kelvin.yaml, the config the package
// installs: it documents every key of the full example configs/kelvin.yaml
// (commented out where the service could not start with it), and
// uncommenting its sensor and output sections gives a config `kelvin check`
// accepts, so the edit the guide asks for works.
func TestPackagedConfig(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	pkg := readFile(t, filepath.Join(root, "packaging", "kelvin.yaml"))
	example := readFile(t, filepath.Join(root, "configs", "kelvin.yaml"))

	key := regexp.MustCompile(`^\s*(?:- )?([a-z_]+):`)
	var missing []string
	seen := map[string]bool{}
	for _, line := range strings.Split(example, "\n") {
		m := key.FindStringSubmatch(line)
		if m == nil || seen[m[1]] {
			continue
		}
		seen[m[1]] = true
		if !regexp.MustCompile(`(?m)^[\s#-]*` + m[1] + `:`).MatchString(pkg) {
			missing = append(missing, m[1])
		}
	}
	if len(missing) > 0 {
		t.Errorf("packaging/kelvin.yaml lacks keys of configs/kelvin.yaml (add them, commented out if needed): %s", strings.Join(missing, ", "))
	}

	uncommented := uncommentSections(pkg)
	if uncommented == pkg {
		t.Fatal("found no commented-out sections in packaging/kelvin.yaml")
	}
	tg, _ := hostDeb(t)
	dir := t.TempDir()
	bin := buildKelvin(t, tg, "v0.0.0-config", dir)
	for name, cfg := range map[string]string{"as packaged": pkg, "uncommented": uncommented} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := runErr(dir, nil, bin, "check", "-config", path)
		if err != nil {
			t.Errorf("kelvin check, %s: %v\n%s\n%s", name, err, out, cfg)
			continue
		}
		t.Logf("%s: %s", name, strings.TrimSpace(out))
	}
}

// commentedSection starts a commented-out section of packaging/kelvin.yaml:
// a top-level key alone on its line ("# mqtt:") or a sensor ("  # - id: tank").
var commentedSection = regexp.MustCompile(`^(|  )# (?:[a-z_]+:$|- id: )`)

// uncommentSections removes the comment marker from every line of each
// commented-out section, up to the first line without it.
func uncommentSections(cfg string) string {
	lines := strings.Split(cfg, "\n")
	prefix, indent := "", ""
	for i, l := range lines {
		if prefix == "" {
			m := commentedSection.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			indent, prefix = m[1], m[1]+"# "
		}
		if !strings.HasPrefix(l, prefix) {
			prefix = ""
			continue
		}
		lines[i] = indent + l[len(prefix):]
	}
	return strings.Join(lines, "\n")
}
