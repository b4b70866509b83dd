package buffer

import (
	"strings"
	"testing"
)

func TestCursorNames(t *testing.T) {
	for name, want := range map[string]bool{
		"mqtt": true, "kafka-1": true, "a.b_c": true, strings.Repeat("x", 64): true,
		"": false, strings.Repeat("x", 65): false, "a b": false, "a/b": false, "é": false,
	} {
		if got := validCursorName(name); got != want {
			t.Errorf("validCursorName(%q) = %v, want %v", name, got, want)
		}
	}
	l, err := Open(t.TempDir(), Config{HotDir: HotDirOff}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Cursor("a/b"); err == nil || !strings.Contains(err.Error(), `cursor name "a/b"`) {
		t.Errorf("Cursor(%q): %v, want the name refused", "a/b", err)
	}
}

func TestSegmentNames(t *testing.T) {
	for name, want := range map[string]int64{
		"00000000000000000000.seg": 0, "00000000000000004096.seg": 4096,
		"0000000000000004096.seg": -1, "000000000000000004096.seg": -1, "00000000000000004096.seg.tmp": -1,
		"0000000000000000409x.seg": -1, "00000000000000004096.sex": -1, "99999999999999999999.seg": -1, "SEQ": -1,
	} {
		b, ok := segBase(name)
		if !ok {
			b = -1
		}
		if b != want {
			t.Errorf("segBase(%q) = %d, %v; want %d", name, b, ok, want)
		}
	}
}
