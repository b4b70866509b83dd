package sensors

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

// w1Testdata is the fake /sys/bus/w1/devices tree: one device per scenario.
const w1Testdata = "testdata/w1/devices"

func readW1Fixture(t *testing.T, address string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(w1Testdata, address, "w1_slave"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCRC8(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		data []byte
		want byte
	}{
		// Real captures (HARDWARE.md): byte 8 is the CRC of bytes 0..7.
		{"capture 25.875 °C", []byte{0x9e, 0x01, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10}, 0x8a},
		{"capture 31.25 °C", []byte{0xf4, 0x01, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10}, 0xc7},
		// DS18B20 power-on scratchpad (HARDWARE.md).
		{"DS18B20 power-on", []byte{0x50, 0x05, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10}, 0x1c},
		// Maxim application note 27's worked example: ROM code
		// 02 1C B8 01 00 00 00 has CRC A2.
		{"AN27 ROM code", []byte{0x02, 0x1c, 0xb8, 0x01, 0x00, 0x00, 0x00}, 0xa2},
		// A full block including its CRC checks to 0.
		{"capture with its crc", []byte{0x9e, 0x01, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10, 0x8a}, 0x00},
		// Why an all-zero scratchpad must be rejected by its content.
		{"zeros", make([]byte, 8), 0x00},
		{"empty", nil, 0x00},
	} {
		if got := CRC8(tc.data); got != tc.want {
			t.Errorf("%s: CRC8(% x) = %#02x, want %#02x", tc.name, tc.data, got, tc.want)
		}
	}
}

// TestParseW1SlaveDatasheet reads one fixture per row of the DS18B20
// datasheet's temperature/data table (and the DS18S20's, and the real
// captures); the expected values are the datasheets' °C.
func TestParseW1SlaveDatasheet(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		address string
		want    float64
		note    string
	}{
		{"28-000000000001", +125, "07D0"},
		{"28-000000000002", +85, "0550 with byte 6 = 0x10: a real 85 °C, not the reset value"},
		{"28-000000000003", +25.0625, "0191"},
		{"28-000000000004", +10.125, "00A2"},
		{"28-000000000005", +0.5, "0008"},
		{"28-000000000006", 0, "0000"},
		{"28-000000000007", -0.5, "FFF8"},
		{"28-000000000008", -10.125, "FF5E"},
		{"28-000000000009", -25.0625, "FE6F"},
		{"28-00000000000a", -55, "FC90"},
		{"28-00000000000b", +25, "0197 at 9 bits (config 0x1F): bits 2..0 are undefined, 0190"},
		{"28-0316a2b8ff01", 25.875, "real capture 019E"},
		{"28-0316a2b8ff02", 31.25, "real capture 01F4"},
		// DS18S20: T = TEMP_READ - 0.25 + (COUNT_PER_C - COUNT_REMAIN) / COUNT_PER_C
		// with TEMP_READ = the register with its 0.5 °C bit truncated.
		// 0032 (+25.0), COUNT_REMAIN 0x0C, COUNT_PER_C 0x10:
		//   25 - 0.25 + (16-12)/16 = 25 - 0.25 + 0.25 = 25.0
		{"10-000000000001", +25, "0032, remain 12"},
		// FFFF (-0.5): TEMP_READ = -1 (truncating bit 0 of a two's
		// complement number rounds down), COUNT_REMAIN 4:
		//   -1 - 0.25 + (16-4)/16 = -1 - 0.25 + 0.75 = -0.5
		{"10-000000000002", -0.5, "FFFF, remain 4"},
		// 0033 (+25.5): TEMP_READ = 25, COUNT_REMAIN 6:
		//   25 - 0.25 + (16-6)/16 = 25 - 0.25 + 0.625 = 25.375
		{"10-000000000003", +25.375, "0033, remain 6"},
		{"22-000000000001", +25.0625, "DS1822, same format as DS18B20"},
		{"3b-000000000001", -10.125, "DS1825, same format as DS18B20"},
		{"42-000000000001", +10.125, "DS28EA00, same format as DS18B20"},
	} {
		family, err := parseW1Address(tc.address)
		if err != nil {
			t.Fatal(err)
		}
		data := readW1Fixture(t, tc.address)
		got, sp, err := ParseW1Slave(family, data)
		if err != nil {
			t.Errorf("%s (%s): %v", tc.address, tc.note, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s (%s): got %v °C, want %v °C", tc.address, tc.note, got, tc.want)
		}
		if want := fmt.Sprintf("% x", sp); !bytes.HasPrefix(data, []byte(want)) {
			t.Errorf("%s: scratchpad % x is not the start of line 1 %q", tc.address, sp, data)
		}
	}
}

// TestParseW1SlaveFaults reads one fixture per fault.
func TestParseW1SlaveFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		address string
		want    error
		msg     string
	}{
		{"28-0000000000f1", ErrCRC, "w1: kernel reported crc=c9 NO, byte 8 is 8a: crc mismatch"},
		{"28-0000000000f2", ErrCRC, "w1: computed crc 8a, byte 8 is 8b (kernel said YES): crc mismatch"},
		{"28-0000000000f3", ErrBadData, "w1: empty read (conversion failed or bulk conversion pending): bad data"},
		{"28-0000000000f4", ErrBadData, "w1: all-zero scratchpad (data line held low?): bad data"},
		{"28-0000000000f5", ErrBadData, "w1: all-0xff scratchpad (no device answering): bad data"},
		{"28-0000000000f6", ErrPowerOnReset, "w1: DS18B20 read 85 °C with byte 6 = 0x0c: power-on reset value"},
		{"28-0000000000f7", ErrBadData, "w1: malformed w1_slave: no final newline (truncated?): bad data"},
		{"28-0000000000f8", ErrOutOfRange, "w1: DS18B20 read 127.9375 °C with byte 6 = 0x0c: conversion starved of power (parasite mode?): out of range"},
		{"10-000000000004", ErrPowerOnReset, "w1: DS18S20 read 85 °C with byte 6 = 0x0c: power-on reset value"},
	} {
		family, err := parseW1Address(tc.address)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := ParseW1Slave(family, readW1Fixture(t, tc.address))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, %v; want error %v", tc.address, got, err, tc.want)
			continue
		}
		if err.Error() != tc.msg {
			t.Errorf("%s: error %q, want %q", tc.address, err, tc.msg)
		}
	}
}

// w1SlaveText formats a w1_slave file the way w1-therm does, with a correct
// CRC in byte 8 unless crc is given.
func w1SlaveText(sp8 [8]byte, crc ...byte) string {
	sp := append(sp8[:], CRC8(sp8[:]))
	if len(crc) > 0 {
		sp[8] = crc[0]
	}
	hex := fmt.Sprintf("% x", sp)
	return fmt.Sprintf("%s : crc=%02x YES\n%s t=0\n", hex, CRC8(sp8[:]), hex)
}

// The w1_slave files of a DS18B20 that the 1-Wire tests share: a good
// reading of 25.875 °C, and the power-on reset value, 85 °C.
const (
	w1SlaveGood = "9e 01 4b 46 7f ff 0c 10 8a : crc=8a YES\n9e 01 4b 46 7f ff 0c 10 8a t=25875\n"
	w1SlavePOR  = "50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\n50 05 4b 46 7f ff 0c 10 1c t=85000\n"
)

func TestParseW1SlaveCases(t *testing.T) {
	t.Parallel()
	good := w1SlaveGood
	for _, tc := range []struct {
		name   string
		family byte
		data   string
		want   float64
		err    error
	}{
		{"good", W1FamilyDS18B20, good, 25.875, nil},
		{"uppercase hex", W1FamilyDS18B20, strings.ToUpper(good[:26]) + good[26:], 25.875, nil},
		{"crc line only", W1FamilyDS18B20, good[:40], 0, ErrBadData},
		{"three lines", W1FamilyDS18B20, good + good[:40], 0, ErrBadData},
		{"8 bytes", W1FamilyDS18B20, "9e 01 4b 46 7f ff 0c 10 : crc=8a YES\n9e 01 4b 46 7f ff 0c 10 8a t=25875\n", 0, ErrBadData},
		{"10 bytes", W1FamilyDS18B20, "9e 01 4b 46 7f ff 0c 10 8a 00 : crc=8a YES\n9e 01 4b 46 7f ff 0c 10 8a t=25875\n", 0, ErrBadData},
		{"non-hex byte", W1FamilyDS18B20, "9e 01 4b 46 7f ff 0c 10 8g : crc=8a YES\n9e 01 4b 46 7f ff 0c 10 8a t=25875\n", 0, ErrBadData},
		{"3-digit byte", W1FamilyDS18B20, "9e 01 4b 46 7f ff 0c 10 08a : crc=8a YES\n9e 01 4b 46 7f ff 0c 10 8a t=25875\n", 0, ErrBadData},
		{"signed byte", W1FamilyDS18B20, "9e 01 4b 46 7f ff 0c 10 +a : crc=8a YES\n9e 01 4b 46 7f ff 0c 10 8a t=25875\n", 0, ErrBadData},
		{"no verdict", W1FamilyDS18B20, "9e 01 4b 46 7f ff 0c 10 8a : crc=8a MAYBE\n9e 01 4b 46 7f ff 0c 10 8a t=25875\n", 0, ErrBadData},
		{"bad t=", W1FamilyDS18B20, "9e 01 4b 46 7f ff 0c 10 8a : crc=8a YES\n9e 01 4b 46 7f ff 0c 10 8a t=25.875\n", 0, ErrBadData},
		{"bad line 2 byte", W1FamilyDS18B20, "9e 01 4b 46 7f ff 0c 10 8a : crc=8a YES\n9e 01 4b 46 7f ff 0c 10 zz t=25875\n", 0, ErrBadData},
		{"kernel crc disagrees", W1FamilyDS18B20, "9e 01 4b 46 7f ff 0c 10 8a : crc=8b YES\n9e 01 4b 46 7f ff 0c 10 8a t=25875\n", 0, ErrBadData},
		{"not a thermometer", 0x01, good, 0, ErrBadData},
		{"power-on value, other byte 6", W1FamilyDS18B20, w1SlaveText([8]byte{0x50, 0x05, 0x4b, 0x46, 0x7f, 0xff, 0x0b, 0x10}), 85, nil},
		{"128 °C", W1FamilyDS18B20, w1SlaveText([8]byte{0x00, 0x08, 0x4b, 0x46, 0x7f, 0xff, 0x10, 0x10}), 0, ErrOutOfRange},
		{"-55.0625 °C", W1FamilyDS18B20, w1SlaveText([8]byte{0x8f, 0xfc, 0x4b, 0x46, 0x7f, 0xff, 0x10, 0x10}), 0, ErrOutOfRange},
		// 10 bits (config 0x3F): bits 1..0 undefined, 0x0193 -> 0x0190.
		{"10-bit resolution", W1FamilyDS18B20, w1SlaveText([8]byte{0x93, 0x01, 0x4b, 0x46, 0x3f, 0xff, 0x0c, 0x10}), 25, nil},
		// 11 bits (config 0x5F): bit 0 undefined, FE6F -> FE6E.
		{"11-bit resolution", W1FamilyDS18B20, w1SlaveText([8]byte{0x6f, 0xfe, 0x4b, 0x46, 0x5f, 0xff, 0x0c, 0x10}), -25.125, nil},
		// GX20MH01 clone at 14 bits (config 0xBF; bit 7 set): the kernel
		// reads (0x0191 << 2 | 3) / 64 = 1607 / 64.
		{"GX20MH01 14-bit", W1FamilyDS18B20, w1SlaveText([8]byte{0x91, 0x01, 0x4b, 0x46, 0xbf, 0xff, 0x0c, 0x10}), 25.109375, nil},
		// MAX31850 (family 3b, config bit 7 reads 1): 0x0194 with the
		// fault bit clear is 0x0194/16 = 25.25 °C; bits 1..0 masked.
		{"MAX31850", W1FamilyDS1825, w1SlaveText([8]byte{0x96, 0x01, 0x50, 0x19, 0xf0, 0xff, 0xff, 0xff}), 25.25, nil},
		{"MAX31850 open thermocouple", W1FamilyDS1825, w1SlaveText([8]byte{0x01, 0x00, 0x51, 0x19, 0xf0, 0xff, 0xff, 0xff}), 0, ErrBadData},
		{"DS18S20 COUNT_PER_C 0", W1FamilyDS18S20, w1SlaveText([8]byte{0x32, 0x00, 0x4b, 0x46, 0xff, 0xff, 0x0c, 0x00}), 0, ErrBadData},
		{"DS18S20 COUNT_REMAIN > COUNT_PER_C", W1FamilyDS18S20, w1SlaveText([8]byte{0x32, 0x00, 0x4b, 0x46, 0xff, 0xff, 0x11, 0x10}), 0, ErrBadData},
		// DS18S20 datasheet table: -55 °C is FF92; remain 12 makes it exact.
		{"DS18S20 -55", W1FamilyDS18S20, w1SlaveText([8]byte{0x92, 0xff, 0x4b, 0x46, 0xff, 0xff, 0x0c, 0x10}), -55, nil},
	} {
		got, _, err := ParseW1Slave(tc.family, []byte(tc.data))
		if tc.err == nil && err != nil || tc.err != nil && !errors.Is(err, tc.err) {
			t.Errorf("%s: got error %v, want %v", tc.name, err, tc.err)
			continue
		}
		if err == nil && got != tc.want {
			t.Errorf("%s: got %v °C, want %v °C", tc.name, got, tc.want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "w1: ") {
			t.Errorf("%s: error %q lacks the w1: prefix", tc.name, err)
		}
	}
}

func TestValidW1Address(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in  string
		err string // "" for valid
	}{
		{"28-0316a2b8ff01", ""},
		{"10-000802b4d2a1", ""},
		{"22-000000000001", ""},
		{"3b-000000000001", ""},
		{"42-000000000001", ""},
		{"", `w1: address "": want family-serial like 28-0316a2b8ff01`},
		{"28-0316a2b8ff0", `w1: address "28-0316a2b8ff0": want family-serial like 28-0316a2b8ff01`},
		{"28-0316a2b8ff011", `w1: address "28-0316a2b8ff011": want family-serial like 28-0316a2b8ff01`},
		{"28_0316a2b8ff01", `w1: address "28_0316a2b8ff01": want family-serial like 28-0316a2b8ff01`},
		{"280316a2b8ff01-", `w1: address "280316a2b8ff01-": want family-serial like 28-0316a2b8ff01`},
		{"28-0316a2b8fg01", `w1: address "28-0316a2b8fg01": want family-serial like 28-0316a2b8ff01`},
		{"28-0316A2B8FF01", `w1: address "28-0316A2B8FF01": want family-serial like 28-0316a2b8ff01 (hex digits in lowercase, as in /sys/bus/w1/devices)`},
		{"28-0316a2b8ff01\n", `w1: address "28-0316a2b8ff01\n": want family-serial like 28-0316a2b8ff01`},
		{"29-0316a2b8ff01", `w1: address "29-0316a2b8ff01": family 0x29 is not a temperature sensor (want 10, 22, 28, 3b or 42)`},
		{"01-000012345678", `w1: address "01-000012345678": family 0x01 is not a temperature sensor (want 10, 22, 28, 3b or 42)`},
		{"00-400000000000", `w1: address "00-400000000000": family 0x00 is not a temperature sensor (want 10, 22, 28, 3b or 42)`},
		{"w1_bus_master1", `w1: address "w1_bus_master1": want family-serial like 28-0316a2b8ff01`},
	} {
		err := ValidW1Address(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("ValidW1Address(%q) = %v, want nil", tc.in, err)
		case tc.err != "" && (err == nil || err.Error() != tc.err):
			t.Errorf("ValidW1Address(%q) = %v, want %s", tc.in, err, tc.err)
		}
		if err := (W1Config{Address: tc.in}).Validate(); (err == nil) != (tc.err == "") {
			t.Errorf("W1Config{%q}.Validate() = %v", tc.in, err)
		}
	}
}

var w1TestTime = time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return w1TestTime }

func TestNewW1(t *testing.T) {
	t.Parallel()
	if _, err := NewW1("", "29-0316a2b8ff01", nil); err == nil || !strings.Contains(err.Error(), "not a temperature sensor") {
		t.Errorf("NewW1 with family 29: %v", err)
	}
	// No filesystem access: a sysfs tree that does not exist is fine.
	w, err := NewW1(filepath.Join(t.TempDir(), "nowhere"), "28-0316a2b8ff01", nil)
	if err != nil {
		t.Fatal(err)
	}
	if w.Address() != "28-0316a2b8ff01" {
		t.Errorf("Address() = %q", w.Address())
	}
	w, err = NewW1("", "28-0316a2b8ff01", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "/sys/bus/w1/devices/28-0316a2b8ff01/w1_slave"; w.path != want {
		t.Errorf("default path %q, want %q", w.path, want)
	}
}

func TestW1Read(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		address string
		want    float64
	}{
		{"28-0316a2b8ff01", 25.875},
		{"28-0316a2b8ff02", 31.25},
		{"28-00000000000a", -55},
		{"10-000000000001", 25},
	} {
		w, err := NewW1(w1Testdata, tc.address, fixedClock)
		if err != nil {
			t.Fatal(err)
		}
		got, err := w.Read(ctx)
		if err != nil {
			t.Errorf("%s: %v", tc.address, err)
			continue
		}
		want := []reading.Reading{{Quantity: "temperature", Value: tc.want, Raw: tc.want, Unit: "°C", Time: w1TestTime}}
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %+v, want %+v", tc.address, got, want)
		}
	}
}

func TestW1ReadFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		address string
		want    error
		reason  string
		msg     string // prefix of the error
	}{
		{"28-0000000000fa", ErrNoDevice, "no_device", "w1: 28-0000000000fa: not on the bus: no device (open testdata/w1/devices/28-0000000000fa/w1_slave: no such file or directory)"},
		{"28-0000000000f9", ErrNoDevice, "no_device", "w1: 28-0000000000f9: not on the bus: no device"},
		{"28-0000000000f1", ErrCRC, "crc", "w1: 28-0000000000f1: kernel reported crc=c9 NO"},
		{"28-0000000000f2", ErrCRC, "crc", "w1: 28-0000000000f2: computed crc 8a"},
		{"28-0000000000f3", ErrBadData, "bad_data", "w1: 28-0000000000f3: empty read"},
		{"28-0000000000f4", ErrBadData, "bad_data", "w1: 28-0000000000f4: all-zero"},
		{"28-0000000000f5", ErrBadData, "bad_data", "w1: 28-0000000000f5: all-0xff"},
		{"28-0000000000f6", ErrPowerOnReset, "power_on_reset", "w1: 28-0000000000f6: DS18B20 read 85 °C"},
		{"28-0000000000f7", ErrBadData, "bad_data", "w1: 28-0000000000f7: malformed w1_slave"},
		{"28-0000000000f8", ErrOutOfRange, "out_of_range", "w1: 28-0000000000f8: DS18B20 read 127.9375 °C"},
	} {
		w, err := NewW1(w1Testdata, tc.address, fixedClock)
		if err != nil {
			t.Fatal(err)
		}
		got, err := w.Read(context.Background())
		if !errors.Is(err, tc.want) || got != nil {
			t.Errorf("%s: got %v, %v; want error %v", tc.address, got, err, tc.want)
			continue
		}
		if r := Reason(err); r != tc.reason {
			t.Errorf("%s: Reason = %q, want %q", tc.address, r, tc.reason)
		}
		if !strings.HasPrefix(err.Error(), tc.msg) {
			t.Errorf("%s: error %q, want prefix %q", tc.address, err, tc.msg)
		}
	}
	w, _ := NewW1(w1Testdata, "28-0000000000fa", fixedClock)
	if _, err := w.Read(context.Background()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing device: %v does not wrap fs.ErrNotExist", err)
	}
}

// fakeW1Files replaces w's file reader with one returning files in turn and
// counting the reads.
func fakeW1Files(w *W1, files ...string) *atomic.Int32 {
	var n atomic.Int32
	w.readFile = func(string) ([]byte, error) {
		i := int(n.Add(1)) - 1
		if i >= len(files) {
			return nil, fmt.Errorf("unexpected read %d", i+1)
		}
		return []byte(files[i]), nil
	}
	return &n
}

func TestW1ReadPowerOnResetRereads(t *testing.T) {
	t.Parallel()
	por := w1SlavePOR
	good := w1SlaveGood
	crcNO := "9f 01 4b 46 7f ff 0c 10 8a : crc=c9 NO\n9e 01 4b 46 7f ff 0c 10 8a t=25937\n"
	for _, tc := range []struct {
		name  string
		files []string
		want  float64
		err   error
		reads int32
	}{
		{"reset then good", []string{por, good}, 25.875, nil, 2},
		{"reset twice", []string{por, por}, 0, ErrPowerOnReset, 2},
		{"reset then crc", []string{por, crcNO}, 0, ErrCRC, 2},
		{"good", []string{good}, 25.875, nil, 1},
		{"crc is not re-read", []string{crcNO}, 0, ErrCRC, 1},
	} {
		w, err := NewW1(w1Testdata, "28-0316a2b8ff01", fixedClock)
		if err != nil {
			t.Fatal(err)
		}
		n := fakeW1Files(w, tc.files...)
		got, err := w.Read(context.Background())
		switch {
		case tc.err != nil && !errors.Is(err, tc.err), tc.err == nil && err != nil:
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.err)
		case err == nil && got[0].Value != tc.want:
			t.Errorf("%s: got %v °C, want %v °C", tc.name, got[0].Value, tc.want)
		}
		if n.Load() != tc.reads {
			t.Errorf("%s: %d reads of w1_slave, want %d", tc.name, n.Load(), tc.reads)
		}
	}
}

func TestW1ReadDoneContext(t *testing.T) {
	t.Parallel()
	w, err := NewW1(w1Testdata, "28-0316a2b8ff01", fixedClock)
	if err != nil {
		t.Fatal(err)
	}
	n := fakeW1Files(w)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.Read(ctx); err != context.Canceled {
		t.Errorf("Read with a cancelled context: %v, want context.Canceled", err)
	}
	if n.Load() != 0 {
		t.Errorf("Read with a cancelled context read w1_slave %d times", n.Load())
	}
}

// TestW1ReadBlocked blocks the file read (a stand-in for the kernel's
// conversion) with a channel; TestW1ReadBlockedFIFO does the same with a
// real blocking file on Linux.
func TestW1ReadBlocked(t *testing.T) {
	t.Parallel()
	w, err := NewW1(w1Testdata, "28-0316a2b8ff01", fixedClock)
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	release := make(chan struct{})
	var reads atomic.Int32
	w.readFile = func(name string) ([]byte, error) {
		if reads.Add(1) == 1 {
			close(entered)
			<-release
		}
		return os.ReadFile(name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := w.Read(ctx)
		errc <- err
	}()
	<-entered
	// While the first read is stuck, another Read does not start a second.
	if _, err := w.Read(context.Background()); !errors.Is(err, ErrBusy) {
		t.Errorf("Read during a blocked read: %v, want ErrBusy", err)
	} else if want := "w1: 28-0316a2b8ff01: the previous read is still blocked in the kernel: previous read still pending"; err.Error() != want {
		t.Errorf("busy error %q, want %q", err, want)
	}
	cancel()
	if err := <-errc; err != context.Canceled {
		t.Errorf("Read after cancel: %v, want context.Canceled", err)
	}
	close(release)
	// The abandoned read finishes on its own; then reads work again.
	got := pollRead(t, w)
	if got != 25.875 {
		t.Errorf("Read after the blocked read finished: %v °C, want 25.875", got)
	}
	if reads.Load() != 2 {
		t.Errorf("%d reads of w1_slave, want 2", reads.Load())
	}
}

// pollRead calls w.Read until it stops failing with ErrBusy (see
// testenv.WaitFor) and returns the value read.
func pollRead(t *testing.T, w *W1) float64 {
	t.Helper()
	var got float64
	testenv.WaitFor(t, "a read not refused as busy", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rs, err := w.Read(ctx)
		if err != nil && !errors.Is(err, ErrBusy) {
			t.Fatalf("Read: %v", err)
		}
		if err == nil {
			got = rs[0].Value
		}
		return err == nil
	})
	return got
}

func TestListW1(t *testing.T) {
	t.Parallel()
	got, err := ListW1(w1Testdata)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"10-000000000001", "10-000000000002", "10-000000000003", "10-000000000004",
		"22-000000000001",
		"28-000000000001", "28-000000000002", "28-000000000003", "28-000000000004",
		"28-000000000005", "28-000000000006", "28-000000000007", "28-000000000008",
		"28-000000000009", "28-00000000000a", "28-00000000000b",
		"28-0000000000f1", "28-0000000000f2", "28-0000000000f3", "28-0000000000f4",
		"28-0000000000f5", "28-0000000000f6", "28-0000000000f7", "28-0000000000f8",
		"28-0000000000f9",
		"28-0316a2b8ff01", "28-0316a2b8ff02",
		"3b-000000000001", "42-000000000001",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListW1 = %q\nwant %q", got, want)
	}

	// The master's own list holds the same thermometers (plus the
	// DS2401 and a ghost), in bus order.
	f, err := os.Open(filepath.Join(w1Testdata, "w1_bus_master1", "w1_master_slaves"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var slaves []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if ValidW1Address(sc.Text()) == nil {
			slaves = append(slaves, sc.Text())
		}
	}
	slices.Sort(slaves)
	if !slices.Equal(slaves, want) {
		t.Errorf("w1_master_slaves thermometers = %q\nwant %q", slaves, want)
	}

	empty, err := ListW1(t.TempDir())
	if err != nil || empty == nil || len(empty) != 0 {
		t.Errorf("ListW1(empty dir) = %#v, %v; want [], nil", empty, err)
	}
	_, err = ListW1(filepath.Join(t.TempDir(), "w1"))
	if !errors.Is(err, ErrNoDevice) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ListW1(missing dir) = %v, want ErrNoDevice and fs.ErrNotExist", err)
	}
}

func FuzzParseW1Slave(f *testing.F) {
	dirs, err := os.ReadDir(w1Testdata)
	if err != nil {
		f.Fatal(err)
	}
	for _, d := range dirs {
		family, err := parseW1Address(d.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(w1Testdata, d.Name(), "w1_slave"))
		if err != nil {
			continue
		}
		f.Add(family, data)
	}
	f.Fuzz(func(t *testing.T, family byte, data []byte) {
		c, sp, err := ParseW1Slave(family, data)
		if err != nil {
			if Reason(err) == "other" {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if !(c >= -55 && c <= 125) {
			t.Fatalf("%v °C returned without error", c)
		}
		if CRC8(sp[:8]) != sp[8] {
			t.Fatalf("scratchpad % x with a bad CRC returned without error", sp)
		}
		if c == 85 && sp[6] == 0x0c {
			t.Fatalf("power-on value % x returned without error", sp)
		}
	})
}
