package ds2482

import (
	"errors"
	"testing"

	"periph.io/x/conn/v3/onewire"

	"github.com/kelvin-gw/kelvin/sensors"
)

// Scratchpads: bytes 0-1 temperature (LSB first), 2 TH, 3 TL, 4 config,
// 5 0xFF, 6 reserved, 7 0x10, 8 CRC. The CRCs were computed with a bitwise
// CRC-8 and are checked again by TestFixtureCRCs against two independent
// implementations.
var (
	spCapture25875 = []byte{0x9e, 0x01, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10, 0x8a} // real capture, 25.875 °C
	spCapture3125  = []byte{0xf4, 0x01, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10, 0xc7} // real capture, 31.25 °C
	spPOR          = []byte{0x50, 0x05, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10, 0x1c} // power-on reset: 85 °C, byte 6 0x0C
	spReal85       = []byte{0x50, 0x05, 0x4b, 0x46, 0x7f, 0xff, 0x10, 0x10, 0xbd} // 85 °C measured (byte 6 0x10)
	sp0191         = []byte{0x91, 0x01, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10, 0x70} // datasheet 0x0191: +25.0625 °C
	spFF5E         = []byte{0x5e, 0xff, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10, 0x6a} // datasheet 0xFF5E: -10.125 °C
	spFC90         = []byte{0x90, 0xfc, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10, 0x4f} // datasheet 0xFC90: -55 °C
	sp07D0         = []byte{0xd0, 0x07, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10, 0xf4} // datasheet 0x07D0: +125 °C
	sp07FF         = []byte{0xff, 0x07, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10, 0xa6} // 127.9375 °C: out of range
	spPOR9         = []byte{0x50, 0x05, 0x4b, 0x46, 0x1f, 0xff, 0x0c, 0x10, 0x8c} // power-on reset, 9-bit config
	sp9bit0197     = []byte{0x97, 0x01, 0x4b, 0x46, 0x1f, 0xff, 0x0c, 0x10, 0x73} // 9 bits: undefined bits 2..0 set → 25.0 °C
	sp9bit0190     = []byte{0x90, 0x01, 0x4b, 0x46, 0x1f, 0xff, 0x0c, 0x10, 0xa3} // 9 bits: 25.0 °C
	spS20_25       = []byte{0x32, 0x00, 0x4b, 0x46, 0xff, 0xff, 0x0c, 0x10, 0x6b} // DS18S20 0x0032, COUNT_REMAIN 12: 25.0 °C
	spS20POR       = []byte{0xaa, 0x00, 0x4b, 0x46, 0xff, 0xff, 0x0c, 0x10, 0x87} // DS18S20 power-on reset 0x00AA
	spBadCRC       = []byte{0x9e, 0x01, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10, 0x8b} // capture with byte 8 off by one
	spZero         = make([]byte, 9)
	spFF           = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

// ROMs (family, serial LSB first, CRC) of the devices in the tests.
var (
	rom1   = []byte{0x28, 0x01, 0xff, 0xb8, 0xa2, 0x16, 0x03, 0x70} // 28-0316a2b8ff01
	rom2   = []byte{0x28, 0xff, 0x64, 0x1e, 0x0f, 0x12, 0x34, 0x96} // 28-34120f1e64ff
	rom3   = []byte{0x28, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x29} // 28-000000000001
	rom4   = []byte{0x28, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x70} // 28-000000000002
	romS20 = []byte{0x10, 0xa2, 0xc3, 0xb5, 0x01, 0x08, 0x00, 0x68} // 10-000801b5c3a2
	romID  = []byte{0x01, 0x5a, 0x3c, 0x0b, 0x12, 0x00, 0x00, 0xe8} // 01-0000120b3c5a (DS2401 serial number)
)

const (
	name1   = "28-0316a2b8ff01"
	name2   = "28-34120f1e64ff"
	name3   = "28-000000000001"
	name4   = "28-000000000002"
	nameS20 = "10-000801b5c3a2"
)

// crcBitwise is the Dallas/Maxim CRC-8 (x⁸+x⁵+x⁴+1, reflected) bit by bit,
// written from Maxim application note 27 independently of sensors.CRC8.
func crcBitwise(b []byte) byte {
	var crc byte
	for _, v := range b {
		for i := 0; i < 8; i++ {
			if (crc^v)&1 != 0 {
				crc = crc>>1 ^ 0x8C
			} else {
				crc >>= 1
			}
			v >>= 1
		}
	}
	return crc
}

func TestFixtureCRCs(t *testing.T) {
	// Maxim application note 27's example ROM: 02 1C B8 01 00 00 00, CRC A2.
	if c := crcBitwise([]byte{0x02, 0x1c, 0xb8, 0x01, 0x00, 0x00, 0x00}); c != 0xA2 {
		t.Fatalf("AN27 example: crc %02x", c)
	}
	for _, b := range [][]byte{
		spCapture25875, spCapture3125, spPOR, spReal85, sp0191, spFF5E, spFC90, sp07D0, sp07FF,
		spPOR9, sp9bit0197, sp9bit0190, spS20_25, spS20POR,
		rom1, rom2, rom3, rom4, romS20, romID,
	} {
		n := len(b) - 1
		if a, p, s := crcBitwise(b[:n]), onewire.CalcCRC(b[:n]), sensors.CRC8(b[:n]); a != b[n] || p != b[n] || s != b[n] {
			t.Errorf("% x: crc %02x, bitwise %02x, periph %02x, sensors %02x", b[:n], b[n], a, p, s)
		}
	}
	if onewire.CheckCRC(spBadCRC) {
		t.Error("spBadCRC has a good CRC")
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name     string
		family   byte
		sp       []byte
		want     float64
		sentinel error
	}{
		{"capture 25.875", 0x28, spCapture25875, 25.875, nil},
		{"capture 31.25", 0x28, spCapture3125, 31.25, nil},
		{"datasheet 0191", 0x28, sp0191, 25.0625, nil},
		{"datasheet FF5E", 0x28, spFF5E, -10.125, nil},
		{"datasheet FC90", 0x28, spFC90, -55, nil},
		{"datasheet 07D0", 0x28, sp07D0, 125, nil},
		{"DS1822", 0x22, sp0191, 25.0625, nil},
		{"DS28EA00", 0x42, spFF5E, -10.125, nil},
		{"real 85", 0x28, spReal85, 85, nil},
		{"9 bits undefined bits cleared", 0x28, sp9bit0197, 25, nil},
		{"9 bits", 0x28, sp9bit0190, 25, nil},
		{"DS18S20 25", 0x10, spS20_25, 25, nil},
		{"power-on reset", 0x28, spPOR, 0, sensors.ErrPowerOnReset},
		{"power-on reset 9 bits", 0x28, spPOR9, 0, sensors.ErrPowerOnReset},
		{"DS18S20 power-on reset", 0x10, spS20POR, 0, sensors.ErrPowerOnReset},
		{"crc", 0x28, spBadCRC, 0, sensors.ErrCRC},
		{"all zero", 0x28, spZero, 0, sensors.ErrBadData},
		{"all 0xff", 0x28, spFF, 0, sensors.ErrNoDevice},
		{"all 0xff is bad data too", 0x28, spFF, 0, sensors.ErrBadData},
		{"127.9375", 0x28, sp07FF, 0, sensors.ErrOutOfRange},
		{"short", 0x28, spCapture25875[:8], 0, sensors.ErrBadData},
	} {
		got, err := decode(tc.family, tc.sp)
		if tc.sentinel != nil {
			if !errors.Is(err, tc.sentinel) {
				t.Errorf("%s: decode = %v, %v; want %v", tc.name, got, err, tc.sentinel)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: decode = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if _, err := decode(0x28, spBadCRC); err == nil || err.Error() != "crc mismatch: scratchpad 9e 01 4b 46 7f ff 0c 10 8b, computed crc 8a" {
		t.Errorf("crc error: %v", err)
	}
	if _, err := decode(0x28, spPOR); err == nil || err.Error() != "85 °C with byte 6 0x0c: power-on reset value" {
		t.Errorf("power-on reset error: %v", err)
	}
	if _, err := decode(0x28, sp07FF); err == nil || err.Error() != "127.9375 °C outside -55..125 °C: out of range" {
		t.Errorf("range error: %v", err)
	}
}

func TestParseName(t *testing.T) {
	for _, tc := range []struct {
		name string
		rom  []byte
	}{
		{name1, rom1}, {name2, rom2}, {name3, rom3}, {name4, rom4}, {nameS20, romS20},
	} {
		a, err := parseName(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		var want onewire.Address
		for i := 7; i >= 0; i-- {
			want = want<<8 | onewire.Address(tc.rom[i])
		}
		if a != want || formatName(a) != tc.name {
			t.Errorf("parseName(%q) = %#016x (%s), want %#016x", tc.name, uint64(a), formatName(a), uint64(want))
		}
	}
	for _, tc := range []struct{ in, msg string }{
		{"28-0316A2B8FF01", `device "28-0316A2B8FF01": want family-serial in lowercase hex like 28-0316a2b8ff01`},
		{"28-0316a2b8ff0", `device "28-0316a2b8ff0": want family-serial in lowercase hex like 28-0316a2b8ff01`},
		{"28_0316a2b8ff01", `device "28_0316a2b8ff01": want family-serial in lowercase hex like 28-0316a2b8ff01`},
		{"3b-0316a2b8ff01", `device "3b-0316a2b8ff01": family 3b is not supported (want 10 DS18S20, 22 DS1822, 28 DS18B20 or 42 DS28EA00)`},
		{"01-0000120b3c5a", `device "01-0000120b3c5a": family 01 is not supported (want 10 DS18S20, 22 DS1822, 28 DS18B20 or 42 DS28EA00)`},
	} {
		if _, err := parseName(tc.in); err == nil || err.Error() != tc.msg {
			t.Errorf("parseName(%q) = %v, want %q", tc.in, err, tc.msg)
		}
	}
}
