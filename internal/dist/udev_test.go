package dist

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// kernelW1Facts reads testdata/kernel-w1-sysfs.txt, the w1 sysfs names the
// kernel documents, as kind → names.
func kernelW1Facts(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "kernel-w1-sysfs.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	facts := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		facts[fields[0]] = append(facts[fields[0]], fields[1])
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return facts
}

// udevToken is one KEY{attr}OP"value" of a udev rule.
type udevToken struct{ key, attr, op, value string }

// udevRule is one rule line.
type udevRule struct {
	line   int
	tokens []udevToken
}

var udevTokenRE = regexp.MustCompile(`^\s*([A-Z_]+)(?:\{([^}]*)\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(,|$)`)

// udevKeys are the keys the rule may use, with the operators udev accepts
// for them (udev(7)).
var udevKeys = map[string][]string{
	"ACTION": {"==", "!="}, "SUBSYSTEM": {"==", "!="}, "KERNEL": {"==", "!="}, "DRIVER": {"==", "!="},
	"ENV": {"==", "!=", "="}, "ATTR": {"==", "!=", "="}, "TEST": {"==", "!="},
	"RUN": {"=", "+=", ":="}, "GOTO": {"="}, "LABEL": {"="},
}

// parseUdevRules parses a rules file as udev(7) describes it: one rule per
// line of comma-separated KEY{attr}OP"value", comments and blank lines
// skipped. Every problem is a test error.
func parseUdevRules(t *testing.T, path string) []udevRule {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rules []udevRule
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			t.Errorf("%s:%d: a continued line; keep each rule on one line", path, n)
		}
		r := udevRule{line: n}
		rest := line
		for strings.TrimSpace(rest) != "" {
			m := udevTokenRE.FindStringSubmatch(rest)
			if m == nil {
				t.Errorf("%s:%d: not KEY==\"value\" at %q", path, n, rest)
				break
			}
			tok := udevToken{key: m[1], attr: m[2], op: m[3], value: m[4]}
			if ops, ok := udevKeys[tok.key]; !ok {
				t.Errorf("%s:%d: key %s is not one this rule should need", path, n, tok.key)
			} else if !slices.Contains(ops, tok.op) {
				t.Errorf("%s:%d: %s%s: udev takes %v", path, n, tok.key, tok.op, ops)
			}
			r.tokens = append(r.tokens, tok)
			rest = rest[len(m[0]):]
			if m[5] == "" && strings.TrimSpace(rest) != "" {
				t.Errorf("%s:%d: tokens not separated by a comma", path, n)
				break
			}
		}
		rules = append(rules, r)
	}
	return rules
}

// TestUdevRule checks packaging/60-kelvin-w1.rules: its syntax (udev(7)),
// its GOTOs, and that every name it matches or touches is one the kernel
// documents for w1 (testdata/kernel-w1-sysfs.txt, quoted with links): the
// subsystem, the w1_therm families, the writable attributes of a
// thermometer and of its bus master, each chgrp'd to the unit's group and
// made group-writable, each only after a TEST that it exists.
func TestUdevRule(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	path := filepath.Join(root, "packaging", "60-kelvin-w1.rules")
	facts := kernelW1Facts(t)
	rules := parseUdevRules(t, path)
	group := unitSetting(t, filepath.Join(root, "packaging", "kelvin.service"), "Group")
	if len(group) != 1 {
		t.Fatalf("kelvin.service: Group= %q, want one", group)
	}

	labels, gotos := map[string]bool{}, map[string]int{}
	var families []string
	touched := map[string][]string{} // attribute path → commands run on it
	for _, r := range rules {
		var tested []string
		for _, tok := range r.tokens {
			alternatives := strings.Split(tok.value, "|")
			switch tok.key {
			case "LABEL":
				labels[tok.value] = true
			case "GOTO":
				gotos[tok.value] = r.line
			case "SUBSYSTEM":
				for _, v := range alternatives {
					if !slices.Contains(facts["subsystem"], v) {
						t.Errorf("line %d: SUBSYSTEM %q is not the kernel's w1 subsystem %q", r.line, v, facts["subsystem"])
					}
				}
			case "KERNEL":
				for _, v := range alternatives {
					fam, ok := strings.CutSuffix(v, "-*")
					if !ok || !slices.Contains(facts["family"], fam) {
						t.Errorf("line %d: KERNEL %q is not <family>-* of a w1_therm family %q", r.line, v, facts["family"])
					}
					families = append(families, fam)
				}
			case "TEST":
				if !knownW1Attr(facts, tok.value) {
					t.Errorf("line %d: TEST %q is not a documented writable w1_therm attribute", r.line, tok.value)
				}
				tested = append(tested, tok.value)
			case "RUN":
				f := strings.Fields(tok.value)
				if len(f) != 3 || !strings.HasPrefix(f[2], "%S%p/") {
					t.Errorf("line %d: RUN %q: want /bin/chgrp GROUP or /bin/chmod g+w on %%S%%p/ATTRIBUTE", r.line, tok.value)
					continue
				}
				attr := strings.TrimPrefix(f[2], "%S%p/")
				if !knownW1Attr(facts, attr) {
					t.Errorf("line %d: RUN %q touches %q, not a documented writable w1_therm attribute", r.line, tok.value, attr)
				}
				if !slices.Contains(tested, attr) {
					t.Errorf("line %d: RUN %q without a TEST that %s exists first", r.line, tok.value, attr)
				}
				switch cmd := f[0] + " " + f[1]; cmd {
				case "/bin/chgrp " + group[0], "/bin/chmod g+w":
					touched[attr] = append(touched[attr], cmd)
				default:
					t.Errorf("line %d: RUN %q: want /bin/chgrp %s or /bin/chmod g+w", r.line, tok.value, group[0])
				}
				if _, err := os.Stat(f[0]); err != nil {
					t.Errorf("line %d: %v", r.line, err)
				}
			}
		}
	}
	for label, line := range gotos {
		if !labels[label] {
			t.Errorf("line %d: GOTO %q has no LABEL", line, label)
		}
	}
	slices.Sort(families)
	if !slices.Equal(families, facts["family"]) {
		t.Errorf("the rule matches families %q, want every w1_therm family %q", families, facts["family"])
	}
	want := []string{"/bin/chgrp " + group[0], "/bin/chmod g+w"}
	for _, attr := range append(slices.Clone(facts["slave"]), prefixed("../", facts["masterattr"])...) {
		if !slices.Equal(touched[attr], want) {
			t.Errorf("%s: the rule runs %q on it, want %q", attr, touched[attr], want)
		}
	}

	// udevadm verify (systemd 254 and later) checks the syntax too.
	if udevadm, err := exec.LookPath("udevadm"); err == nil {
		out, err := runErr("", nil, udevadm, "verify", path)
		switch {
		case err != nil && strings.Contains(strings.ToLower(out), "unknown command"):
			t.Logf("udevadm has no verify (systemd < 254): checked by the parser above only")
		case err != nil:
			t.Errorf("udevadm verify %s: %v\n%s", path, err, out)
		}
	}
}

// knownW1Attr reports whether path is a documented writable attribute of a
// w1_therm device ("resolution") or, through "../", of its bus master.
func knownW1Attr(facts map[string][]string, path string) bool {
	if a, ok := strings.CutPrefix(path, "../"); ok {
		return slices.Contains(facts["masterattr"], a)
	}
	return slices.Contains(facts["slave"], path)
}

func prefixed(p string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = p + n
	}
	return out
}

// unitSetting returns every value of key in a unit file, each line's
// whitespace-separated values in order.
func unitSetting(t *testing.T, path, key string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+"="); ok {
			out = append(out, strings.Fields(v)...)
		}
	}
	return out
}

// TestUnitOpensOnlyW1Masters: the unit makes writable, under its
// read-only /sys, only bus master directories named as the kernel names
// them, each optional ("-": a master that is not there is skipped), from
// w1_bus_master1 on.
func TestUnitOpensOnlyW1Masters(t *testing.T) {
	t.Parallel()
	facts := kernelW1Facts(t)
	unit := filepath.Join(repoRoot(t), "packaging", "kelvin.service")
	if got := unitSetting(t, unit, "ProtectKernelTunables"); !slices.Equal(got, []string{"yes"}) {
		t.Errorf("ProtectKernelTunables= %q, want yes", got)
	}
	paths := unitSetting(t, unit, "ReadWritePaths")
	master := regexp.MustCompile(`^-/sys/devices/` + regexp.QuoteMeta(facts["master"][0]) + `[1-9][0-9]*$`)
	for _, p := range paths {
		if !master.MatchString(p) {
			t.Errorf("ReadWritePaths= %q is not -/sys/devices/%sN", p, facts["master"][0])
		}
	}
	if !slices.Contains(paths, "-/sys/devices/w1_bus_master1") {
		t.Errorf("ReadWritePaths= %q lacks the first bus master", paths)
	}
}
