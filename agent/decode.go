package agent

import (
	"encoding"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a config file, at a line.
type Problem struct {
	Line int    // 1-based; 0 when the key is absent from the file
	Path string // key path, e.g. "sensors[1].interval"
	Msg  string
}

// ConfigError lists every problem found in one config file. Its message has
// one line per problem: FILE:LINE: key.path: what is wrong.
type ConfigError struct {
	File     string
	Problems []Problem
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
		if p.Path != "" {
			b.WriteString(p.Path)
			b.WriteString(": ")
		}
		b.WriteString(p.Msg)
	}
	return b.String()
}

// decoder turns a yaml.Node tree into Go values strictly: unknown keys,
// duplicate keys and wrong types are problems, all of them collected. It
// records the line of every key path it saw, so later validation can point
// at lines too.
type decoder struct {
	problems []Problem
	lines    map[string]int // key path → line of the key (or of the value for list items)
	getenv   func(string) (string, bool)
}

func newDecoder() *decoder {
	return &decoder{lines: map[string]int{}, getenv: os.LookupEnv}
}

// errorf records a problem at path, at the line recorded for it (or the
// nearest recorded parent).
func (d *decoder) errorf(path, format string, args ...any) {
	d.problems = append(d.problems, Problem{Line: d.lineOf(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) errorAt(n *yaml.Node, path, format string, args ...any) {
	d.problems = append(d.problems, Problem{Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// hasProblem reports whether a problem was already found at path.
func (d *decoder) hasProblem(path string) bool {
	for _, p := range d.problems {
		if p.Path == path {
			return true
		}
	}
	return false
}

// lineOf returns the line of path, or of its closest recorded ancestor.
func (d *decoder) lineOf(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := d.lines[p]; ok {
			return l
		}
	}
	return 0
}

// has reports whether the file set path.
func (d *decoder) has(path string) bool { _, ok := d.lines[path]; return ok }

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlUnmarshaler is implemented by types that decode themselves with the
// decoder (and so report problems with lines).
type yamlUnmarshaler interface {
	decodeYAML(d *decoder, n *yaml.Node, path string)
}

var (
	durationType        = reflect.TypeOf(time.Duration(0))
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
	yamlUnmarshalerType = reflect.TypeOf((*yamlUnmarshaler)(nil)).Elem()
	nodeType            = reflect.TypeOf(yaml.Node{})
)

// reflectValue returns the settable value p points to.
func reflectValue(p any) reflect.Value { return reflect.ValueOf(p).Elem() }

// decode stores n into v (a settable value), recording problems at path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if v.Type() == nodeType {
		v.Set(reflect.ValueOf(*n))
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(yamlUnmarshalerType) {
		v.Addr().Interface().(yamlUnmarshaler).decodeYAML(d, n, path)
		return
	}
	if isNull(n) {
		// An explicit empty value leaves the default in place, except that
		// it makes an optional section (a pointer) present.
		if v.Kind() == reflect.Pointer && v.IsNil() && v.Type().Elem().Kind() == reflect.Struct {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return
	}
	if v.Type() == durationType {
		s, ok := d.scalar(n, path, "a duration like 5s")
		if !ok {
			return
		}
		dur, err := parseDuration(s)
		if err != nil {
			d.errorAt(n, path, "%v", err)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshalerType) {
		s, ok := d.scalar(n, path, "a value")
		if !ok {
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.errorAt(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorAt(n, path, "want a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.lines[p] = item.Line
			d.decode(item, s.Index(i), p)
		}
		v.Set(s)
	case reflect.String:
		s, ok := d.scalar(n, path, "a string")
		if !ok {
			return
		}
		v.SetString(d.expand(n, path, s))
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.errorAt(n, path, "want true or false, got %s", describe(n))
			return
		}
		b, _ := strconv.ParseBool(strings.ToLower(n.Value))
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			d.errorAt(n, path, "want a whole number, got %s", describe(n))
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil || v.OverflowInt(i) {
			d.errorAt(n, path, "number %s is out of range", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			d.errorAt(n, path, "want a whole number, got %s", describe(n))
			return
		}
		i, err := strconv.ParseUint(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil || v.OverflowUint(i) {
			d.errorAt(n, path, "number %s is out of range", n.Value)
			return
		}
		v.SetUint(i)
	case reflect.Float32, reflect.Float64:
		f, ok := d.number(n, path)
		if ok {
			v.SetFloat(f)
		}
	default:
		d.errorAt(n, path, "cannot decode into %s", v.Type())
	}
}

// number decodes an int or float scalar; NaN and infinities are refused.
func (d *decoder) number(n *yaml.Node, path string) (float64, bool) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		d.errorAt(n, path, "want a number, got %s", describe(n))
		return 0, false
	}
	var f float64
	var err error
	if n.Tag == "!!int" {
		var i int64
		i, err = strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		f = float64(i)
	} else {
		f, err = strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
	}
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		d.errorAt(n, path, "want a finite number, got %s", n.Value)
		return 0, false
	}
	return f, true
}

// scalar returns the text of a scalar node.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorAt(n, path, "want %s, got %s", want, describe(n))
		return "", false
	}
	return n.Value, true
}

var envRef = regexp.MustCompile(`\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces ${NAME} with the environment variable NAME; an unset
// variable is a problem (a silently empty password helps nobody). $${ is a
// literal ${.
func (d *decoder) expand(n *yaml.Node, path, s string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	return envRef.ReplaceAllStringFunc(s, func(ref string) string {
		if ref == "$${" {
			return "${"
		}
		name := ref[2 : len(ref)-1]
		val, ok := d.getenv(name)
		if !ok {
			d.errorAt(n, path, "environment variable %s is not set", name)
		}
		return val
	})
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorAt(n, path, "want a mapping of keys, got %s", describe(n))
		return
	}
	fields := structFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		p := join(path, key)
		if seen[key] {
			d.errorAt(k, p, "duplicate key")
			continue
		}
		seen[key] = true
		idx, ok := fields[key]
		if !ok {
			d.errorAt(k, p, "unknown key%s", suggest(key, fields))
			continue
		}
		d.lines[p] = k.Line
		d.decode(val, v.FieldByIndex(idx), p)
	}
}

// structFields maps yaml keys to field indexes, following ",inline".
func structFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			for k, idx := range structFields(f.Type) {
				out[k] = append([]int{i}, idx...)
			}
			continue
		}
		if name == "" {
			continue // fields without a yaml name are not configurable
		}
		out[name] = []int{i}
	}
	return out
}

// suggest returns ` (did you mean "x"?)` for a near miss, else a list of
// the valid keys when there are few.
func suggest(key string, fields map[string][]int) string {
	best, bestDist := "", 3
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
		if dist := levenshtein(key, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	sort.Strings(keys)
	return " (known keys: " + strings.Join(keys, ", ") + ")"
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describe names what a node is, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return strconv.Quote(n.Value)
		case "!!null":
			return "nothing"
		}
		return n.Value
	}
	return "something else"
}

// validUnit reports whether u is a unit of time.ParseDuration.
func validUnit(u string) bool {
	switch u {
	case "ns", "us", "µs", "μs", "ms", "s", "m", "h":
		return true
	}
	return false
}

// parseDuration is time.ParseDuration plus the units d (24h) and w (7d),
// which retention settings need ("7d"). A bare number is refused: "5" could
// mean seconds or minutes.
func parseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("want a duration like 5s, got nothing")
	}
	if _, err := strconv.ParseFloat(t, 64); err == nil && t != "0" {
		return 0, fmt.Errorf("want a duration with a unit like %ss, got %s", t, t)
	}
	var total time.Duration
	rest := t
	for rest != "" {
		// Split off the leading number.
		i := 0
		for i < len(rest) && (rest[i] == '.' || rest[i] == '-' || rest[i] == '+' || (rest[i] >= '0' && rest[i] <= '9')) {
			i++
		}
		j := i
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') && rest[j] != '.' {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		rest = rest[j:]
		var mult time.Duration
		switch unit {
		case "d":
			mult = 24 * time.Hour
		case "w":
			mult = 7 * 24 * time.Hour
		default:
			dd, err := time.ParseDuration(num + unit)
			if err != nil && strings.Contains(err.Error(), "invalid duration") && validUnit(unit) {
				return 0, fmt.Errorf("%q is too long: at most about 292 years", s)
			}
			if err != nil {
				return 0, fmt.Errorf("want a duration like 5s, 1m30s or 7d, got %q", s)
			}
			total += dd
			continue
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, fmt.Errorf("want a duration like 5s, 1m30s or 7d, got %q", s)
		}
		if x := f * float64(mult); math.Abs(x) >= math.MaxInt64 {
			return 0, fmt.Errorf("%q is too long: at most about 292 years", s)
		} else {
			total += time.Duration(x)
		}
	}
	return total, nil
}
