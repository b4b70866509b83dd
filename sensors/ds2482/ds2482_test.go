package ds2482

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/onewire"
	"periph.io/x/conn/v3/onewire/onewiretest"

	"github.com/kelvin-gw/kelvin/internal/ctxsleep"
	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
	"github.com/kelvin-gw/kelvin/sensors"
)

var t0 = time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)

func now() time.Time { return t0 }

// matchROM is Match ROM (0x55), the device's 8 ROM bytes, then cmd.
func matchROM(rom []byte, cmd ...byte) []byte {
	return append(append([]byte{0x55}, rom...), cmd...)
}

// readSP is Match ROM + Read Scratchpad (0xBE) answered with sp.
func readSP(rom, sp []byte) onewiretest.IO {
	return onewiretest.IO{W: matchROM(rom, 0xBE), R: sp, Pull: onewire.WeakPullup}
}

// convertAll is Skip ROM (0xCC) + Convert T (0x44) with the strong pull-up.
var convertAll = onewiretest.IO{W: []byte{0xCC, 0x44}, Pull: onewire.StrongPullup}

// testBus is a Bus on a 1-Wire playback, set up like NewI2C does, whose
// conversion wait records its duration instead of waiting.
type testBus struct {
	*Bus
	pb     *onewiretest.Playback
	opens  int
	waited []time.Duration
}

func newTestBus(t *testing.T, names []string, opts *Opts, ops ...onewiretest.IO) *testBus {
	t.Helper()
	tb := &testBus{pb: &onewiretest.Playback{Ops: ops, DontPanic: true}}
	open := func() (onewire.Bus, error) {
		tb.opens++
		return tb.pb, nil
	}
	b, err := newBus("ds2482: i2c 0x18", open, names, opts, now)
	if err != nil {
		t.Fatal(err)
	}
	b.sleep = func(ctx context.Context, d time.Duration) error {
		tb.waited = append(tb.waited, d)
		return ctx.Err()
	}
	if err := b.setup(); err != nil {
		t.Fatal(err)
	}
	tb.Bus = b
	return tb
}

func (tb *testBus) close(t *testing.T) {
	t.Helper()
	if err := tb.pb.Close(); err != nil {
		t.Fatal(err)
	}
}

type want struct {
	sensor string
	c      float64
}

func checkReadings(t *testing.T, got []reading.Reading, wants ...want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("got %d readings %+v, want %d", len(got), got, len(wants))
	}
	for i, w := range wants {
		r := got[i]
		if r.Sensor != w.sensor || r.Quantity != reading.Temperature || r.Unit != "°C" || r.Value != w.c || r.Raw != r.Value || !r.Time.Equal(t0) || r.Agent != "" || r.Seq != 0 {
			t.Errorf("reading %d = %+v, want %s %v °C at %v", i, r, w.sensor, w.c, t0)
		}
	}
}

func TestReadBulk(t *testing.T) {
	b := newTestBus(t, []string{name1, name2}, nil,
		// NewI2C: resolution check, 12 bits already (config 0x7F).
		readSP(rom1, spPOR), // 28-0316a2b8ff01: Read Scratchpad
		readSP(rom2, spPOR), // 28-34120f1e64ff: Read Scratchpad
		// Read: ONE conversion for the bus, then each scratchpad.
		convertAll,                   // Skip ROM, Convert T, strong pull-up
		readSP(rom1, spCapture25875), // 28-0316a2b8ff01: Read Scratchpad
		readSP(rom2, spCapture3125),  // 28-34120f1e64ff: Read Scratchpad
	)
	rs, err := b.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkReadings(t, rs, want{name1, 25.875}, want{name2, 31.25})
	if !slices.Equal(b.waited, []time.Duration{750 * time.Millisecond}) {
		t.Errorf("waited %v, want one 750ms conversion", b.waited)
	}
	b.close(t)
}

func TestReadDatasheetTable(t *testing.T) {
	b := newTestBus(t, []string{name1, name2, name3}, &Opts{Resolution: 12},
		readSP(rom1, spPOR),  // 28-0316a2b8ff01: Read Scratchpad (config 0x7F)
		readSP(rom2, spPOR),  // 28-34120f1e64ff: Read Scratchpad
		readSP(rom3, spPOR),  // 28-000000000001: Read Scratchpad
		convertAll,           // Skip ROM, Convert T, strong pull-up
		readSP(rom1, sp0191), // 28-0316a2b8ff01: Read Scratchpad, 0x0191
		readSP(rom2, spFF5E), // 28-34120f1e64ff: Read Scratchpad, 0xFF5E
		readSP(rom3, spFC90), // 28-000000000001: Read Scratchpad, 0xFC90
	)
	rs, err := b.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkReadings(t, rs, want{name1, 25.0625}, want{name2, -10.125}, want{name3, -55})
	b.close(t)
}

func TestReadPerDeviceFaults(t *testing.T) {
	b := newTestBus(t, []string{name1, name2, name3, name4}, nil,
		readSP(rom1, spPOR),          // 28-0316a2b8ff01: Read Scratchpad
		readSP(rom2, spPOR),          // 28-34120f1e64ff: Read Scratchpad
		readSP(rom3, spPOR),          // 28-000000000001: Read Scratchpad
		readSP(rom4, spPOR),          // 28-000000000002: Read Scratchpad
		convertAll,                   // Skip ROM, Convert T, strong pull-up
		readSP(rom1, spCapture25875), // 28-0316a2b8ff01: good
		readSP(rom2, spBadCRC),       // 28-34120f1e64ff: CRC mismatch
		readSP(rom3, spPOR),          // 28-000000000001: did not convert (power-on value)
		readSP(rom4, spCapture3125),  // 28-000000000002: good
	)
	rs, err := b.Read(context.Background())
	checkReadings(t, rs, want{name1, 25.875}, want{name4, 31.25})
	if !errors.Is(err, sensors.ErrCRC) || !errors.Is(err, sensors.ErrPowerOnReset) {
		t.Fatalf("error %v, want ErrCRC and ErrPowerOnReset", err)
	}
	parts := err.(interface{ Unwrap() []error }).Unwrap()
	if len(parts) != 2 ||
		parts[0].Error() != "ds2482: i2c 0x18: 28-34120f1e64ff: crc mismatch: scratchpad 9e 01 4b 46 7f ff 0c 10 8b, computed crc 8a" ||
		parts[1].Error() != "ds2482: i2c 0x18: 28-000000000001: 85 °C with byte 6 0x0c: power-on reset value" ||
		sensors.Reason(parts[0]) != "crc" || sensors.Reason(parts[1]) != "power_on_reset" {
		t.Fatalf("error parts %q", parts)
	}
	b.close(t)
}

func TestReadReal85(t *testing.T) {
	b := newTestBus(t, []string{name1}, nil,
		readSP(rom1, spPOR),    // 28-0316a2b8ff01: Read Scratchpad
		convertAll,             // Skip ROM, Convert T, strong pull-up
		readSP(rom1, spReal85), // 28-0316a2b8ff01: 85 °C, byte 6 0x10: a measurement
	)
	rs, err := b.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkReadings(t, rs, want{name1, 85})
	b.close(t)
}

func TestResolutionWrittenNotCopied(t *testing.T) {
	b := newTestBus(t, []string{name1, nameS20}, &Opts{Resolution: 9},
		// NewI2C: the device is at 12 bits (0x7F); write 9 bits (0x1F),
		// keeping TH 0x4B and TL 0x46, read back. No Copy Scratchpad
		// (0x48): the playback would fail on it.
		readSP(rom1, spPOR), // 28-0316a2b8ff01: Read Scratchpad, config 0x7F
		onewiretest.IO{W: matchROM(rom1, 0x4E, 0x4B, 0x46, 0x1F)}, // 28-0316a2b8ff01: Write Scratchpad TH, TL, config 0x1F
		readSP(rom1, spPOR9),     // 28-0316a2b8ff01: Read Scratchpad, config 0x1F
		readSP(romS20, spS20POR), // 10-000801b5c3a2: Read Scratchpad (no configuration register)
		convertAll,               // Skip ROM, Convert T, strong pull-up
		readSP(rom1, sp9bit0197), // 28-0316a2b8ff01: 9 bits, undefined bits set
		readSP(romS20, spS20_25), // 10-000801b5c3a2: 25 °C
	)
	rs, err := b.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkReadings(t, rs, want{name1, 25}, want{nameS20, 25})
	// The DS18S20 converts in 750 ms whatever the resolution.
	if !slices.Equal(b.waited, []time.Duration{750 * time.Millisecond}) {
		t.Errorf("waited %v", b.waited)
	}
	b.close(t)
}

func TestConversionTime(t *testing.T) {
	for bits, ms := range map[int]time.Duration{9: 93750, 10: 187500, 11: 375000, 12: 750000} {
		b, err := newBus("ds2482: i2c 0x18", nil, []string{name1}, &Opts{Resolution: bits}, now)
		if err != nil {
			t.Fatal(err)
		}
		if b.conv != ms*time.Microsecond || b.cfg != byte(bits-9)<<5|0x1F {
			t.Errorf("%d bits: conversion %v, config 0x%02x", bits, b.conv, b.cfg)
		}
	}
}

func TestResolutionReverted(t *testing.T) {
	b := newTestBus(t, []string{name1}, &Opts{Resolution: 9},
		readSP(rom1, spPOR9), // 28-0316a2b8ff01: Read Scratchpad, 9 bits already
		// Read 1: the device lost power: 12 bits from EEPROM and the
		// power-on value.
		convertAll,          // Skip ROM, Convert T, strong pull-up
		readSP(rom1, spPOR), // 28-0316a2b8ff01: 85 °C, byte 6 0x0C, config 0x7F
		// Read 2: configure again first.
		readSP(rom1, spPOR), // 28-0316a2b8ff01: Read Scratchpad, config 0x7F
		onewiretest.IO{W: matchROM(rom1, 0x4E, 0x4B, 0x46, 0x1F)}, // 28-0316a2b8ff01: Write Scratchpad, config 0x1F
		readSP(rom1, spPOR9), // 28-0316a2b8ff01: read back
		convertAll,           // Skip ROM, Convert T, strong pull-up
		readSP(rom1, sp0191), // 28-0316a2b8ff01: config 0x7F again, a real value: not trusted
		// Read 3: configure again, then a good read.
		readSP(rom1, sp0191), // 28-0316a2b8ff01: Read Scratchpad, config 0x7F
		onewiretest.IO{W: matchROM(rom1, 0x4E, 0x4B, 0x46, 0x1F)}, // 28-0316a2b8ff01: Write Scratchpad, config 0x1F
		readSP(rom1, sp9bit0190),                                  // 28-0316a2b8ff01: read back
		convertAll,                                                // Skip ROM, Convert T, strong pull-up
		readSP(rom1, sp9bit0190),                                  // 28-0316a2b8ff01: 25 °C
	)
	ctx := context.Background()
	if rs, err := b.Read(ctx); rs != nil || !errors.Is(err, sensors.ErrPowerOnReset) {
		t.Fatalf("read 1: %v, %v", rs, err)
	}
	rs, err := b.Read(ctx)
	if rs != nil || !errors.Is(err, sensors.ErrBadData) || !strings.Contains(err.Error(), "28-0316a2b8ff01: configuration 0x7f, want 0x1f: converted at a higher resolution than waited for: bad data") {
		t.Fatalf("read 2: %v, %v", rs, err)
	}
	rs, err = b.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkReadings(t, rs, want{name1, 25})
	b.close(t)
}

func TestResolutionLowerIsRead(t *testing.T) {
	b := newTestBus(t, []string{name1}, nil,
		readSP(rom1, spPOR),      // 28-0316a2b8ff01: Read Scratchpad, 12 bits
		convertAll,               // Skip ROM, Convert T, strong pull-up
		readSP(rom1, sp9bit0190), // 28-0316a2b8ff01: 9 bits: converted faster than waited for, good
		readSP(rom1, sp9bit0190), // next Read: Read Scratchpad, config 0x1F
		onewiretest.IO{W: matchROM(rom1, 0x4E, 0x4B, 0x46, 0x7F)}, // 28-0316a2b8ff01: Write Scratchpad, config 0x7F
		readSP(rom1, spCapture25875),                              // 28-0316a2b8ff01: read back
		convertAll,                                                // Skip ROM, Convert T, strong pull-up
		readSP(rom1, spCapture25875),                              // 28-0316a2b8ff01: 25.875 °C
	)
	for _, w := range []float64{25, 25.875} {
		rs, err := b.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		checkReadings(t, rs, want{name1, w})
	}
	b.close(t)
}

func TestDeviceAbsentAtStart(t *testing.T) {
	b := newTestBus(t, []string{name1, name2}, nil,
		readSP(rom1, spFF),  // 28-0316a2b8ff01: nobody answers
		readSP(rom2, spPOR), // 28-34120f1e64ff: Read Scratchpad
		// Read 1: 28-0316a2b8ff01 still absent, not converted or read.
		readSP(rom1, spFF),          // 28-0316a2b8ff01: Read Scratchpad
		convertAll,                  // Skip ROM, Convert T, strong pull-up
		readSP(rom2, spCapture3125), // 28-34120f1e64ff: 31.25 °C
		// Read 2: plugged in.
		readSP(rom1, spPOR),          // 28-0316a2b8ff01: Read Scratchpad, 12 bits
		convertAll,                   // Skip ROM, Convert T, strong pull-up
		readSP(rom1, spCapture25875), // 28-0316a2b8ff01: 25.875 °C
		readSP(rom2, spCapture3125),  // 28-34120f1e64ff: 31.25 °C
	)
	rs, err := b.Read(context.Background())
	checkReadings(t, rs, want{name2, 31.25})
	if !errors.Is(err, sensors.ErrNoDevice) || sensors.Reason(err) != "no_device" ||
		err.Error() != "ds2482: i2c 0x18: 28-0316a2b8ff01: scratchpad all 0xff (device not answering): no device (bad data)" {
		t.Fatalf("read 1 error %v", err)
	}
	rs, err = b.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkReadings(t, rs, want{name1, 25.875}, want{name2, 31.25})
	b.close(t)
}

func TestAllDevicesUnconfigurable(t *testing.T) {
	b := newTestBus(t, []string{name1}, nil,
		readSP(rom1, spZero), // 28-0316a2b8ff01: data line held low
		readSP(rom1, spZero), // Read: configure again, fails: no conversion
	)
	rs, err := b.Read(context.Background())
	if rs != nil || !errors.Is(err, sensors.ErrBadData) || err.Error() != "ds2482: i2c 0x18: 28-0316a2b8ff01: scratchpad all 0x00 (data line held low): bad data" {
		t.Fatalf("Read = %v, %v", rs, err)
	}
	if len(b.waited) != 0 {
		t.Fatalf("waited %v without a conversion", b.waited)
	}
	b.close(t)
}

// busErrorBus is a 1-Wire bus with no device: every transaction fails with
// a 1-Wire bus error, as periph's ds248x reports a missing presence pulse.
type busErrorBus struct{}

type busError string

func (e busError) Error() string  { return string(e) }
func (e busError) BusError() bool { return true }

func (busErrorBus) String() string { return "no devices" }

func (busErrorBus) Tx(w, r []byte, _ onewire.Pullup) error {
	return busError("ds248x: no device present")
}

func (busErrorBus) Search(bool) ([]onewire.Address, error) {
	return nil, busError("ds248x: no device present")
}

func TestBusFaults(t *testing.T) {
	// A 1-Wire bus error keeps the bridge.
	ow := busErrorBus{}
	opens := 0
	b, err := newBus("ds2482: i2c 0x18", func() (onewire.Bus, error) { opens++; return ow, nil }, []string{name1}, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.setup(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		rs, err := b.Read(context.Background())
		if rs != nil || !errors.Is(err, sensors.ErrNoDevice) || err.Error() != "ds2482: i2c 0x18: 28-0316a2b8ff01: read scratchpad (0xbe): no device: ds248x: no device present" {
			t.Fatalf("Read = %v, %v", rs, err)
		}
	}
	if opens != 1 {
		t.Fatalf("bridge opened %d times after 1-Wire errors, want 1", opens)
	}

	// Any other error is the bridge's: it is opened again by the next call.
	tb := newTestBus(t, []string{name1}, nil,
		readSP(rom1, spPOR), // 28-0316a2b8ff01: Read Scratchpad
		// Read 1: Convert T fails (the playback has no more operations
		// for it at first, it errs like an I²C failure).
	)
	rs, err := tb.Read(context.Background())
	if rs != nil || !errors.Is(err, sensors.ErrNoDevice) || !strings.HasPrefix(err.Error(), "ds2482: i2c 0x18: convert t (skip rom 0xcc, 0x44): no device: onewiretest: unexpected Tx()") {
		t.Fatalf("Read = %v, %v", rs, err)
	}
	tb.pb.Ops = append(tb.pb.Ops,
		convertAll,                   // Skip ROM, Convert T, strong pull-up
		readSP(rom1, spCapture25875), // 28-0316a2b8ff01: 25.875 °C
	)
	rs, err = tb.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkReadings(t, rs, want{name1, 25.875})
	if tb.opens != 2 {
		t.Fatalf("bridge opened %d times, want 2", tb.opens)
	}
	tb.close(t)

	// A bridge that does not open fails NewI2C-like setup and every Read.
	b, err = newBus("ds2482: i2c 0x18", func() (onewire.Bus, error) { return nil, errors.New("ds248x: error while resetting: nack") }, []string{name1}, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.setup(); !errors.Is(err, sensors.ErrNoDevice) || err.Error() != "ds2482: i2c 0x18: no device: ds248x: error while resetting: nack" {
		t.Fatalf("setup: %v", err)
	}
	if _, err := b.Read(context.Background()); !errors.Is(err, sensors.ErrNoDevice) {
		t.Fatalf("Read: %v", err)
	}
}

func TestReadContext(t *testing.T) {
	b := newTestBus(t, []string{name1}, nil,
		readSP(rom1, spPOR), // 28-0316a2b8ff01: Read Scratchpad
		convertAll,          // Skip ROM, Convert T: the wait for it is cut short
	)
	// Done before Read: no bus operation.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if rs, err := b.Read(ctx); rs != nil || err != context.Canceled {
		t.Fatalf("Read(canceled) = %v, %v", rs, err)
	}
	// Done during the conversion wait, made to last an hour.
	b.sleep = ctxsleep.Sleep
	b.conv = time.Hour
	ctx, cancel = context.WithCancel(context.Background())
	waitCancel := testenv.CancelWhen(func() bool {
		b.pb.Lock()
		defer b.pb.Unlock()
		return b.pb.Count == len(b.pb.Ops)
	}, cancel)
	if rs, err := b.Read(ctx); rs != nil || err != context.Canceled {
		t.Fatalf("Read(canceled while converting) = %v, %v", rs, err)
	}
	waitCancel()
	b.close(t)
}

func TestNoDevices(t *testing.T) {
	b := newTestBus(t, nil, nil)
	if rs, err := b.Read(context.Background()); rs != nil || err != nil {
		t.Fatalf("Read = %v, %v", rs, err)
	}
	b.close(t)
}

func TestScan(t *testing.T) {
	addr := func(rom []byte) onewire.Address {
		var a onewire.Address
		for i := 7; i >= 0; i-- {
			a = a<<8 | onewire.Address(rom[i])
		}
		return a
	}
	b := newTestBus(t, nil, nil,
		onewiretest.IO{W: []byte{0xF0}}, // Search ROM, pass 1
		onewiretest.IO{W: []byte{0xF0}}, // Search ROM, pass 2
		onewiretest.IO{W: []byte{0xF0}}, // Search ROM, pass 3
	)
	b.pb.Devices = []onewire.Address{addr(rom2), addr(romID), addr(rom1)}
	names, err := b.Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"01-0000120b3c5a", name1, name2}; !slices.Equal(names, want) {
		t.Fatalf("Scan = %v, want %v", names, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if names, err := b.Scan(ctx); names != nil || err != context.Canceled {
		t.Fatalf("Scan(canceled) = %v, %v", names, err)
	}
	b.close(t)
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		names []string
		opts  *Opts
		msg   string
	}{
		{[]string{"28-0316A2B8FF01"}, nil, `ds2482: i2c 0x18: device "28-0316A2B8FF01": want family-serial in lowercase hex like 28-0316a2b8ff01`},
		{[]string{"3b-0316a2b8ff01"}, nil, `ds2482: i2c 0x18: device "3b-0316a2b8ff01": family 3b is not supported`},
		{[]string{name1, name2, name1}, nil, `ds2482: i2c 0x18: device "28-0316a2b8ff01" listed twice`},
		{nil, &Opts{Resolution: 8}, "ds2482: i2c 0x18: resolution 8 bits: want 9..12"},
		{nil, &Opts{Resolution: 13}, "ds2482: i2c 0x18: resolution 13 bits: want 9..12"},
	} {
		if _, err := newBus("ds2482: i2c 0x18", nil, tc.names, tc.opts, now); err == nil || !strings.HasPrefix(err.Error(), tc.msg) {
			t.Errorf("%v %+v: %v, want %q", tc.names, tc.opts, err, tc.msg)
		}
	}
}
