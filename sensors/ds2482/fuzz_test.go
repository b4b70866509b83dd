package ds2482

import (
	"testing"

	"github.com/kelvin-gw/kelvin/sensors"
)

// FuzzDecode feeds arbitrary scratchpads to decode: it must never panic,
// every error must wrap a sentinel, and what it accepts must have a good
// CRC, not be blank, and be in the DS18B20's range.
func FuzzDecode(f *testing.F) {
	for _, sp := range [][]byte{spCapture25875, spCapture3125, spPOR, spReal85, sp0191, spFF5E, spFC90, sp07FF, sp9bit0197, spS20_25, spS20POR, spBadCRC, spZero, spFF} {
		f.Add(byte(0x28), sp)
		f.Add(byte(0x10), sp)
	}
	f.Fuzz(func(t *testing.T, family byte, sp []byte) {
		c, err := decode(family, sp)
		if err != nil {
			if sensors.Reason(err) == "other" {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if len(sp) != 9 || sensors.CRC8(sp) != 0 || c < minC || c > maxC {
			t.Fatalf("accepted % x as %v °C", sp, c)
		}
		if judge(sp) != nil {
			t.Fatalf("accepted % x", sp)
		}
	})
}

// FuzzParseName checks that every accepted device name formats back to
// itself.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{name1, name2, nameS20, "28-0316A2B8FF01", "3b-0316a2b8ff01", "", "28-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseName(s)
		if err != nil {
			return
		}
		if formatName(a) != s {
			t.Fatalf("parseName(%q) formats as %q", s, formatName(a))
		}
		if rom := [8]byte{byte(a), byte(a >> 8), byte(a >> 16), byte(a >> 24), byte(a >> 32), byte(a >> 40), byte(a >> 48), byte(a >> 56)}; sensors.CRC8(rom[:]) != 0 {
			t.Fatalf("parseName(%q) = %#016x: bad ROM CRC", s, uint64(a))
		}
	})
}
