package hw

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/kelvin-gw/kelvin/sensors"
	"github.com/kelvin-gw/kelvin/sensors/tmp102"
)

func TestParseBusAndAddress(t *testing.T) {
	for in, want := range map[string]int{"1": 1, "/dev/i2c-1": 1, " 3 ": 3, "0": 0} {
		if got, err := ParseBus(in); err != nil || got != want {
			t.Errorf("ParseBus(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "i2c-1", "-1", "one"} {
		if _, err := ParseBus(in); err == nil {
			t.Errorf("ParseBus(%q) succeeded", in)
		}
	}
	for in, want := range map[string]uint16{"0x76": 0x76, "118": 118, "0x03": 3, "0x77": 0x77} {
		if got, err := ParseAddress(in); err != nil || got != want {
			t.Errorf("ParseAddress(%q) = %#x, %v", in, got, err)
		}
	}
	for _, in := range []string{"0x78", "0x02", "x", "0x1ff"} {
		if _, err := ParseAddress(in); err == nil {
			t.Errorf("ParseAddress(%q) succeeded", in)
		}
	}
}

func TestBusErrorsSayWhatToDo(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("open: %w", fs.ErrPermission), "add the user to group i2c"},
		{fmt.Errorf("open: %w", fs.ErrNotExist), "dtparam=i2c_arm=on"},
	} {
		err := busError(1, tc.err)
		if !strings.Contains(err.Error(), tc.want) || !errors.Is(err, sensors.ErrNoDevice) {
			t.Errorf("busError(%v) = %v, want it to mention %q and wrap ErrNoDevice", tc.err, err, tc.want)
		}
	}
}

type closer struct{ i2c.Bus }

func (closer) Close() error { return nil }

// TestOpenChipSharesTheBus opens an SHT4x through the bus set and reads it
// over a recorded bus: T word 0x6666 → −45 + 175·0x6666/65535 = 25.0 °C;
// RH word 0x8000 → −6 + 125·32768/65535 = 56.50095 %RH.
func TestOpenChipSharesTheBus(t *testing.T) {
	pb := &i2ctest.Playback{Ops: []i2ctest.IO{
		{Addr: 0x44, W: []byte{0xfd}},                               // measure T and RH, high precision
		{Addr: 0x44, R: []byte{0x66, 0x66, 0x93, 0x80, 0x00, 0xa2}}, // T msb, lsb, crc, RH msb, lsb, crc
	}, DontPanic: true}
	opened := 0
	b := &Buses{buses: map[int]i2c.BusCloser{}, open: func(n int) (i2c.BusCloser, error) {
		opened++
		return closer{pb}, nil
	}}
	now := func() time.Time { return time.Unix(0, 0) }
	s, err := b.OpenChip("sht4x", 1, 0x44, Options{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(1); err != nil || opened != 1 {
		t.Fatalf("bus opened %d times, err %v", opened, err)
	}
	rs, err := s.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Raw != 25.0 || fmt.Sprintf("%.4f", rs[1].Raw) != "56.5010" {
		t.Errorf("readings = %+v", rs)
	}
	if err := pb.Close(); err != nil {
		t.Error(err)
	}
	if _, err := b.OpenChip("thermocouple", 1, 0x44, Options{}, now); err == nil {
		t.Error("unknown chip type opened")
	}
}

// TestTMP102ModelsAreChips: every model the tmp102 driver knows is a chip
// type here, opens through OpenChip, and takes the addresses the driver
// accepts. A TMP105 opened fresh is set to 12 bits.
func TestTMP102ModelsAreChips(t *testing.T) {
	chips := map[string]Chip{}
	for _, c := range Chips() {
		chips[c.Type] = c
	}
	for _, m := range tmp102.Models() {
		c, ok := chips[m]
		if !ok || c.Type != m || c.Identified {
			t.Errorf("tmp102 model %s: not in Chips", m)
			continue
		}
		for _, a := range c.Addresses {
			pb := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
				{Addr: a, W: []byte{0x01}, R: []byte{0x60, 0xA0}}, // configuration (8-bit parts read the first byte): running, 12 bit
			}}
			if m != "tmp102" {
				pb.Ops[0].R = pb.Ops[0].R[:1]
			}
			b := &Buses{buses: map[int]i2c.BusCloser{}, open: func(int) (i2c.BusCloser, error) { return closer{pb}, nil }}
			if _, err := b.OpenChip(m, 1, a, Options{}, nil); err != nil {
				t.Errorf("OpenChip(%s, 0x%02x): %v", m, a, err)
			}
			if err := pb.Close(); err != nil {
				t.Errorf("%s 0x%02x: %v", m, a, err)
			}
		}
	}
	pb := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x48, W: []byte{0x01}, R: []byte{0x00}}, // configuration: power-on, 9 bit
		{Addr: 0x48, W: []byte{0x01, 0x60}},            // configuration ← 12 bit
	}}
	b := &Buses{buses: map[int]i2c.BusCloser{}, open: func(int) (i2c.BusCloser, error) { return closer{pb}, nil }}
	if _, err := b.OpenChip("tmp105", 0, 0x48, Options{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := pb.Close(); err != nil {
		t.Error(err)
	}
}

func TestUnknownHint(t *testing.T) {
	for addr, want := range map[uint16]string{
		0x48: " (no ID register: set type to the part number printed on the chip, one of lm75, lm75a, lm75b, tmp102, tmp105, tmp175, tmp275, tmp75)",
		0x4c: " (no ID register: set type to the part number printed on the chip, one of lm75, lm75a, lm75b, tmp105, tmp175, tmp275, tmp75)",
		0x50: "",
	} {
		if got := UnknownHint(addr); got != want {
			t.Errorf("UnknownHint(0x%02x) = %q, want %q", addr, got, want)
		}
	}
}

// TestChipsTable: each chip type is in the table once, with a default
// address, and opens through OpenChip by its type alone.
func TestChipsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Chips() {
		if seen[c.Type] || len(c.Addresses) == 0 || len(c.Quantities) == 0 || c.MinInterval <= 0 {
			t.Errorf("chip %+v: a duplicate, or without addresses, quantities or interval", c)
		}
		seen[c.Type] = true
		b := &Buses{buses: map[int]i2c.BusCloser{}, open: func(int) (i2c.BusCloser, error) {
			return closer{&i2ctest.Playback{DontPanic: true}}, nil
		}}
		if _, err := b.OpenChip(c.Type, 1, c.Addresses[0], Options{}, nil); err != nil && strings.Contains(err.Error(), "unknown chip type") {
			t.Errorf("OpenChip(%s): %v", c.Type, err)
		}
	}
}
