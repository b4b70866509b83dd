package ds2482

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/kelvin-gw/kelvin/sensors"
)

// DS2482 status register bits (DS2482-100 datasheet, "Status Register").
const (
	st1WB = 0x01 // 1-Wire busy
	stPPD = 0x02 // presence pulse detected
	stLL  = 0x08 // 1-Wire line level
	stRST = 0x10 // device reset
)

// initDS2482 is what periph's ds248x.New sends a DS2482-100 (or -800 when
// channels) at addr.
func initDS2482(addr uint16, channels bool) []i2ctest.IO {
	ops := []i2ctest.IO{
		{Addr: addr, W: []byte{0xF0}},                                // Device Reset
		{Addr: addr, W: []byte{0xE1, 0xF0}, R: []byte{stRST | stLL}}, // Set Read Pointer: status → RST, line high
		{Addr: addr, W: []byte{0xD2, 0xE1}, R: []byte{0x01}},         // Write Configuration: APU (upper nibble its complement); reads back 0x01
		// Set Read Pointer 0xB4 (DS2483 port configuration) is NACKed: it
		// is no expected operation, so the playback fails it.
	}
	if channels {
		ops = append(ops,
			i2ctest.IO{Addr: addr, W: []byte{0xE1, 0xD2}}, // Set Read Pointer: channel selection (DS2482-800 only)
			i2ctest.IO{Addr: addr, W: []byte{0xC3, 0xF0}}, // Channel Select: IO0
		)
	}
	// Without channels, Set Read Pointer 0xD2 is NACKed too.
	return ops
}

// owTx is what periph's ds248x sends for one 1-Wire transaction: a 1-Wire
// reset, the bytes of w, the bytes of r, each followed by a status poll;
// with strong, the strong pull-up is switched on before the last byte.
func owTx(addr uint16, w, r []byte, strong bool) []i2ctest.IO {
	ops := []i2ctest.IO{
		{Addr: addr, W: []byte{0xB4}},         // 1-Wire Reset
		{Addr: addr, R: []byte{stPPD | stLL}}, // status: presence pulse, idle
	}
	for i, b := range w {
		if strong && i == len(w)-1 && len(r) == 0 {
			ops = append(ops, i2ctest.IO{Addr: addr, W: []byte{0xD2, 0xA5}}) // Write Configuration: APU, SPU (strong pull-up after the next byte)
		}
		ops = append(ops,
			i2ctest.IO{Addr: addr, W: []byte{0xA5, b}}, // 1-Wire Write Byte
			i2ctest.IO{Addr: addr, R: []byte{stLL}},    // status: idle
		)
	}
	for _, b := range r {
		ops = append(ops,
			i2ctest.IO{Addr: addr, W: []byte{0x96}, R: []byte{stLL | st1WB}}, // 1-Wire Read Byte (status read back: busy)
			i2ctest.IO{Addr: addr, R: []byte{stLL}},                          // status: idle
			i2ctest.IO{Addr: addr, W: []byte{0xE1, 0xE1}, R: []byte{b}},      // Set Read Pointer: read data register → the byte
		)
	}
	return ops
}

func TestNewI2CThroughBridge(t *testing.T) {
	// A DS2482-100 at 0x1B, which periph's ds248x.New alone rejects.
	const a = 0x1B
	var ops []i2ctest.IO
	ops = append(ops, initDS2482(a, false)...)
	ops = append(ops, owTx(a, matchROM(rom1, 0xBE), spPOR, false)...)          // NewI2C: Match ROM 28-0316a2b8ff01, Read Scratchpad
	ops = append(ops, owTx(a, []byte{0xCC, 0x44}, nil, true)...)               // Read: Skip ROM, Convert T, strong pull-up
	ops = append(ops, owTx(a, matchROM(rom1, 0xBE), spCapture25875, false)...) // Read: Match ROM, Read Scratchpad
	bus := &i2ctest.Playback{Ops: ops, DontPanic: true}

	b, err := NewI2C(bus, a, []string{name1}, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	var waited time.Duration
	b.sleep = func(ctx context.Context, d time.Duration) error { waited = d; return nil }
	rs, err := b.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkReadings(t, rs, want{name1, 25.875})
	if waited != 750*time.Millisecond {
		t.Errorf("waited %v", waited)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNewI2CDS2482800(t *testing.T) {
	const a = 0x1F
	bus := &i2ctest.Playback{Ops: initDS2482(a, true), DontPanic: true}
	b, err := NewI2C(bus, a, nil, &Opts{Resolution: 10}, now)
	if err != nil {
		t.Fatal(err)
	}
	if b.conv != 187500*time.Microsecond {
		t.Errorf("conversion time %v", b.conv)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNewI2CErrors(t *testing.T) {
	for _, a := range []uint16{0x17, 0x20, 0x21} {
		bus := &i2ctest.Playback{DontPanic: true}
		if _, err := NewI2C(bus, a, nil, nil, now); err == nil || !strings.HasSuffix(err.Error(), "address must be 0x18..0x1f") {
			t.Errorf("address 0x%02x: %v", a, err)
		}
	}
	// Nothing at the address.
	bus := &i2ctest.Playback{DontPanic: true}
	_, err := NewI2C(bus, 0x18, []string{name1}, nil, now)
	if !errors.Is(err, sensors.ErrNoDevice) || !strings.HasPrefix(err.Error(), "ds2482: i2c 0x18: no device: ds248x: error while resetting: ") {
		t.Fatalf("NewI2C on an empty bus: %v", err)
	}
	// A chip whose status is not a DS2482's after a reset.
	bus = &i2ctest.Playback{Ops: []i2ctest.IO{
		{Addr: 0x18, W: []byte{0xF0}},                        // Device Reset
		{Addr: 0x18, W: []byte{0xE1, 0xF0}, R: []byte{0x00}}, // Set Read Pointer: status → 0x00
	}, DontPanic: true}
	if _, err := NewI2C(bus, 0x18, nil, nil, now); !errors.Is(err, sensors.ErrNoDevice) || !strings.Contains(err.Error(), "invalid status register value: 0x0") {
		t.Fatalf("NewI2C on another chip: %v", err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
	// Names are checked before the bus is touched.
	bus = &i2ctest.Playback{DontPanic: true}
	if _, err := NewI2C(bus, 0x18, []string{"28-x"}, nil, now); err == nil || !strings.Contains(err.Error(), `device "28-x"`) {
		t.Fatalf("bad name: %v", err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestIdentify(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr uint16
		ops  []i2ctest.IO
		chip string
	}{
		{"ds2482-100", 0x1B, []i2ctest.IO{
			{Addr: 0x1B, W: []byte{0xF0}, R: []byte{stRST | stLL}}, // Device Reset → status RST, line high
			// Set Read Pointer 0xB4 and 0xD2: NACKed (no operations left)
		}, "ds2482-100"},
		{"ds2482-800", 0x1C, []i2ctest.IO{
			{Addr: 0x1C, W: []byte{0xF0}, R: []byte{stRST}}, // Device Reset → status RST, line low
			// Set Read Pointer 0xB4: NACKed (not the expected operation)
			{Addr: 0x1C, W: []byte{0xE1, 0xD2}}, // Set Read Pointer: channel selection register
		}, "ds2482-800"},
		{"ds2483", 0x18, []i2ctest.IO{
			{Addr: 0x18, W: []byte{0xF0}, R: []byte{stRST | stLL}}, // Device Reset → status RST, line high
			{Addr: 0x18, W: []byte{0xE1, 0xB4}},                    // Set Read Pointer: port configuration register
		}, "ds2483"},
		{"mcp9808", 0x18, []i2ctest.IO{
			{Addr: 0x18, W: []byte{0xF0}, R: []byte{0x00}}, // register pointer 0x0 (RFU) → 0x00: no RST bit
		}, ""},
		{"status busy", 0x18, []i2ctest.IO{
			{Addr: 0x18, W: []byte{0xF0}, R: []byte{stRST | st1WB}}, // RST but 1-Wire busy: not after a reset
		}, ""},
		{"nack", 0x19, nil, ""},
		{"not a DS2482 address", 0x20, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bus := &i2ctest.Playback{Ops: tc.ops, DontPanic: true}
			chip, ok := Identify(bus, tc.addr)
			if chip != tc.chip || ok != (tc.chip != "") {
				t.Errorf("Identify(0x%02x) = %q, %v; want %q", tc.addr, chip, ok, tc.chip)
			}
			if err := bus.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
