package sensors

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// parseW1SlaveTextFields is parseW1SlaveText as it was written first, with
// bytes.Fields and one strconv call per field: the reference the
// allocation-free parser must agree with, input for input and error text
// for error text.
func parseW1SlaveTextFields(data []byte) (sp [9]byte, crc byte, ok bool, err error) {
	text, found := bytes.CutSuffix(data, []byte("\n"))
	if !found {
		return sp, 0, false, errors.New("no final newline (truncated?)")
	}
	line1, line2, found := bytes.Cut(text, []byte("\n"))
	if !found {
		return sp, 0, false, errors.New("want 2 lines, got 1")
	}
	if bytes.IndexByte(line2, '\n') >= 0 {
		return sp, 0, false, errors.New("want 2 lines, got more")
	}
	f1 := bytes.Fields(line1)
	if len(f1) != 12 || string(f1[9]) != ":" || !bytes.HasPrefix(f1[10], []byte("crc=")) {
		return sp, 0, false, fmt.Errorf("line 1 %q: want 9 hex bytes, \": crc=xx YES|NO\"", line1)
	}
	if err := parseHexBytesFields(sp[:], f1[:9]); err != nil {
		return sp, 0, false, fmt.Errorf("line 1: %v", err)
	}
	var c [1]byte
	if err := parseHexBytesFields(c[:], [][]byte{f1[10][len("crc="):]}); err != nil {
		return sp, 0, false, fmt.Errorf("line 1 crc: %v", err)
	}
	switch string(f1[11]) {
	case "YES":
		ok = true
	case "NO":
	default:
		return sp, 0, false, fmt.Errorf("line 1: got %q, want YES or NO", f1[11])
	}
	f2 := bytes.Fields(line2)
	if len(f2) != 10 || !bytes.HasPrefix(f2[9], []byte("t=")) {
		return sp, 0, false, fmt.Errorf("line 2 %q: want 9 hex bytes and t=<millidegrees>", line2)
	}
	var last [9]byte
	if err := parseHexBytesFields(last[:], f2[:9]); err != nil {
		return sp, 0, false, fmt.Errorf("line 2: %v", err)
	}
	if _, err := strconv.ParseInt(string(f2[9][len("t="):]), 10, 32); err != nil {
		return sp, 0, false, fmt.Errorf("line 2: bad t= value %q", f2[9])
	}
	return sp, c[0], ok, nil
}

// parseHexBytesFields is parseHexBytes as parseW1SlaveTextFields used it.
func parseHexBytesFields(dst []byte, fields [][]byte) error {
	for i, f := range fields {
		if len(f) != 2 {
			return fmt.Errorf("byte %d: %q is not 2 hex digits", i, f)
		}
		v, err := strconv.ParseUint(string(f), 16, 8)
		if err != nil {
			return fmt.Errorf("byte %d: %q is not 2 hex digits", i, f)
		}
		dst[i] = byte(v)
	}
	return nil
}

// w1SlaveCorpus returns the w1_slave files of the testdata tree (the seed
// corpus of FuzzParseW1Slave) and the shared good and power-on texts.
func w1SlaveCorpus(t testing.TB) [][]byte {
	t.Helper()
	dirs, err := os.ReadDir(w1Testdata)
	if err != nil {
		t.Fatal(err)
	}
	corpus := [][]byte{[]byte(w1SlaveGood), []byte(w1SlavePOR)}
	for _, d := range dirs {
		if data, err := os.ReadFile(filepath.Join(w1Testdata, d.Name(), "w1_slave")); err == nil {
			corpus = append(corpus, data)
		}
	}
	return corpus
}

// sameW1SlaveText fails t when parseW1SlaveText and the reference disagree
// on data: values, verdict or error text.
func sameW1SlaveText(t testing.TB, data []byte) {
	t.Helper()
	sp, crc, ok, err := parseW1SlaveText(data)
	wsp, wcrc, wok, werr := parseW1SlaveTextFields(data)
	if (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() {
		t.Fatalf("parseW1SlaveText(%q): error %v, reference %v", data, err, werr)
	}
	if err == nil && (sp != wsp || crc != wcrc || ok != wok) {
		t.Fatalf("parseW1SlaveText(%q) = % x, %02x, %v; reference % x, %02x, %v", data, sp, crc, ok, wsp, wcrc, wok)
	}
}

// TestParseW1SlaveTextSameAsFields compares the parser with the bytes.Fields
// reference on the corpus and on every single-byte deletion, replacement
// and insertion of it, with the bytes that matter to field splitting and
// hex and number parsing (ASCII and Unicode white space, a lone UTF-8 lead
// byte, signs, separators).
func TestParseW1SlaveTextSameAsFields(t *testing.T) {
	t.Parallel()
	corpus := w1SlaveCorpus(t)
	edits := []string{" ", "\t", "\n", "\v", "\f", "\r", "\x85", "\xc2", "\u0085", "\u00a0", "\u2003", "\u3000",
		"0", "9", "a", "F", "g", "x", ":", "=", "+", "-", "_", "t", "c", "YES", "NO", "t=", "crc=", "\x00", "\xff"}
	var inputs int
	for _, data := range corpus {
		sameW1SlaveText(t, data)
		for i := 0; i <= len(data); i++ {
			if i < len(data) {
				sameW1SlaveText(t, slices.Concat(data[:i], data[i+1:]))
				inputs++
			}
			for _, e := range edits {
				sameW1SlaveText(t, slices.Concat(data[:i], []byte(e), data[i:]))
				if i < len(data) {
					sameW1SlaveText(t, slices.Concat(data[:i], []byte(e), data[i+1:]))
				}
				inputs += 2
			}
		}
	}
	for _, data := range []string{"", "\n", "\n\n", " \n \n", "a\nb\n", "9e 01 4b 46 7f ff 0c 10 8a : crc=8a YES\n\n",
		"9e 01 4b 46 7f ff 0c 10 8a : crc=8a YES\n9e 01 4b 46 7f ff 0c 10 8a t=2147483647\n",
		"9e 01 4b 46 7f ff 0c 10 8a : crc=8a YES\n9e 01 4b 46 7f ff 0c 10 8a t=2147483648\n",
		"9e 01 4b 46 7f ff 0c 10 8a : crc=8a YES\n9e 01 4b 46 7f ff 0c 10 8a t=-2147483648\n",
		"9e 01 4b 46 7f ff 0c 10 8a : crc=8a YES\n9e 01 4b 46 7f ff 0c 10 8a t=-2147483649\n",
		"9e 01 4b 46 7f ff 0c 10 8a : crc=8a YES\n9e 01 4b 46 7f ff 0c 10 8a t=+0\n",
		"9e 01 4b 46 7f ff 0c 10 8a : crc=8a YES\n9e 01 4b 46 7f ff 0c 10 8a t=\n",
		"9e 01 4b 46 7f ff 0c 10 8a : crc= YES\n9e 01 4b 46 7f ff 0c 10 8a t=1\n",
		"9e 01 4b 46 7f ff 0c 10 8a : crc=8a8a YES\n9e 01 4b 46 7f ff 0c 10 8a t=1\n",
		"9e 01 4b 46 7f ff 0c 10 8a : crc=8a YES extra\n9e 01 4b 46 7f ff 0c 10 8a t=1\n",
		"\u00a09e 01 4b 46 7f ff 0c 10 8a : crc=8a YES\u2003\n9e 01 4b 46 7f ff 0c 10 8a\u3000t=1\u0085\n",
	} {
		sameW1SlaveText(t, []byte(data))
		inputs++
	}
	t.Logf("%d inputs compared", inputs)
}

// FuzzParseW1SlaveText compares the parser with the bytes.Fields reference
// on any input.
func FuzzParseW1SlaveText(f *testing.F) {
	for _, data := range w1SlaveCorpus(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) { sameW1SlaveText(t, data) })
}

// TestParseW1SlaveAllocatesNothing: a good w1_slave (parsed once per device
// per round) costs no allocation.
func TestParseW1SlaveAllocatesNothing(t *testing.T) {
	data := []byte(w1SlaveGood)
	if n := testing.AllocsPerRun(100, func() {
		if _, _, err := parseW1Slave(W1FamilyDS18B20, data); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per parse of a good w1_slave, want 0", n)
	}
}

// BenchmarkParseW1SlaveText parses a good w1_slave (once per device per
// round): with parseW1SlaveText, and with the bytes.Fields reference.
func BenchmarkParseW1SlaveText(b *testing.B) {
	data := []byte(w1SlaveGood)
	for _, p := range []struct {
		name  string
		parse func([]byte) ([9]byte, byte, bool, error)
	}{{"parser", parseW1SlaveText}, {"fields", parseW1SlaveTextFields}} {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, _, err := p.parse(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
