package tmp102

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/kelvin-gw/kelvin/reading"
	"github.com/kelvin-gw/kelvin/sensors"
	"github.com/kelvin-gw/kelvin/sensors/internal/i2cplay"
)

func newDev(t *testing.T, b i2c.Bus, addr uint16, opts *Opts) (*Dev, *i2cplay.Waits) {
	t.Helper()
	d, err := NewI2C(b, addr, opts, i2cplay.Now)
	if err != nil {
		t.Fatal(err)
	}
	w := &i2cplay.Waits{}
	d.sleep = w.Sleep
	return d, w
}

// configPowerOn is the TMP102's power-on configuration 0x60A0: R1 R0 = 11
// (12-bit), conversion rate 4 Hz, AL = 1, EM = 0, SD = 0.
var configPowerOn = []byte{0x60, 0xA0}

// vectors: register bytes → °C. bits 0 is the TMP102: normal mode, bits
// 15–4 as a 12-bit two's complement number times 0.0625; extended mode, bits
// 15–3, 13 bits. bits 9, 11, 12 are the LM75 class at that resolution, with
// the datasheets' tables.
var vectors = []struct {
	bits int
	b    [2]byte
	t    float64
}{
	{0, [2]byte{0x19, 0x00}, 25},       // 0x190 = 400; 400/16 = 25
	{0, [2]byte{0xE7, 0x00}, -25},      // 0xE70 = 3696 − 4096 = −400; −400/16 = −25
	{0, [2]byte{0xC9, 0x00}, -55},      // 0xC90 = 3216 − 4096 = −880; −880/16 = −55
	{0, [2]byte{0x50, 0x00}, 80},       // 0x500 = 1280; 1280/16 = 80
	{0, [2]byte{0x7F, 0xF0}, 127.9375}, // 0x7FF = 2047; 2047/16 = 127.9375, top of normal mode
	{0, [2]byte{0xFF, 0xF0}, -0.0625},  // 0xFFF = 4095 − 4096 = −1
	{0, [2]byte{0x00, 0x00}, 0},
	{0, [2]byte{0x0C, 0x81}, 25},      // EM: 0x0C81 >> 3 = 0x190 = 400 → 25
	{0, [2]byte{0x4B, 0x01}, 150},     // EM: 0x4B01 >> 3 = 0x960 = 2400 → 150
	{0, [2]byte{0x28, 0x01}, 80},      // EM: 0x2801 >> 3 = 0x500 = 1280 → 80
	{0, [2]byte{0xE4, 0x81}, -55},     // EM: 0xE481 >> 3 = 0x1C90 = 7312 − 8192 = −880 → −55
	{0, [2]byte{0xFF, 0xF9}, -0.0625}, // EM: 0x1FFF = 8191 − 8192 = −1

	// TMP75/TMP175 datasheet table 7-1 (12 bit, 0.0625 °C).
	{12, [2]byte{0x7F, 0xF0}, 127.9375}, // 7FF
	{12, [2]byte{0x64, 0x00}, 100},      // 640
	{12, [2]byte{0x4B, 0x00}, 75},       // 4B0
	{12, [2]byte{0x19, 0x00}, 25},       // 190
	{12, [2]byte{0x00, 0x40}, 0.25},     // 004
	{12, [2]byte{0x00, 0x00}, 0},        // 000
	{12, [2]byte{0xFF, 0xC0}, -0.25},    // FFC
	{12, [2]byte{0xE7, 0x00}, -25},      // E70
	{12, [2]byte{0xC9, 0x00}, -55},      // C90
	{12, [2]byte{0xF5, 0xE0}, -10.125},  // F5E = −162; −162/16
	{12, [2]byte{0x24, 0xA0}, 36.625},   // 24A = 586; 586/16
	{12, [2]byte{0x19, 0x0F}, 25},       // the four low bits are ignored

	// NXP LM75B datasheet table 10 (11 bit, 0.125 °C; bits 4–0 zero).
	{11, [2]byte{0x7F, 0x00}, 127},     // 3F8
	{11, [2]byte{0x7E, 0xE0}, 126.875}, // 3F7
	{11, [2]byte{0x7E, 0x20}, 126.125}, // 3F1
	{11, [2]byte{0x7D, 0x00}, 125},     // 3E8
	{11, [2]byte{0x19, 0x00}, 25},      // 0C8
	{11, [2]byte{0x00, 0x20}, 0.125},   // 001
	{11, [2]byte{0x00, 0x00}, 0},       // 000
	{11, [2]byte{0xFF, 0xE0}, -0.125},  // 7FF
	{11, [2]byte{0xE7, 0x00}, -25},     // 738
	{11, [2]byte{0xC9, 0x20}, -54.875}, // 649
	{11, [2]byte{0xC9, 0x00}, -55},     // 648
	{11, [2]byte{0x19, 0x1F}, 25},      // bits 4–0 are ignored

	// LM75 (TI LM75B/LM75C) temperature data format (9 bit, 0.5 °C).
	{9, [2]byte{0x7D, 0x00}, 125},   // 0FA
	{9, [2]byte{0x19, 0x00}, 25},    // 032
	{9, [2]byte{0x00, 0x80}, 0.5},   // 001
	{9, [2]byte{0x00, 0x00}, 0},     // 000
	{9, [2]byte{0xFF, 0x80}, -0.5},  // 1FF
	{9, [2]byte{0xE7, 0x00}, -25},   // 1CE
	{9, [2]byte{0xC9, 0x00}, -55},   // 192
	{9, [2]byte{0x19, 0x7F}, 25},    // bits 6–0 are undefined: ignored
	{9, [2]byte{0xF5, 0xE0}, -10.5}, // a 12-bit −10.125 read at 9 bits: the step below
}

func TestDecodeVectors(t *testing.T) {
	for _, v := range vectors {
		got, err := decode(v.bits, v.b)
		if err != nil || got != v.t {
			t.Errorf("decode(%d bits, % X) = %v, %v; want %v", v.bits, v.b, got, err, v.t)
		}
	}
	for _, tc := range []struct {
		bits   int
		b      [2]byte
		reason error
	}{
		{0, [2]byte{0xFF, 0xFF}, sensors.ErrBadData}, // EM flag with bits 2–1 set
		{0, [2]byte{0x19, 0x08}, sensors.ErrBadData}, // 12-bit mode with bit 3 set
		{0, [2]byte{0x19, 0x03}, sensors.ErrBadData}, // 13-bit mode with bit 1 set
		{9, [2]byte{0xFF, 0xFF}, sensors.ErrBadData},
		{11, [2]byte{0xFF, 0xFF}, sensors.ErrBadData},
		{12, [2]byte{0xFF, 0xFF}, sensors.ErrBadData},
		{0, [2]byte{0x4B, 0x09}, sensors.ErrOutOfRange},  // EM: 2401/16 = 150.0625
		{0, [2]byte{0xC8, 0xF0}, sensors.ErrOutOfRange},  // 0xC8F = −881 → −55.0625
		{12, [2]byte{0x80, 0x00}, sensors.ErrOutOfRange}, // −2048/16 = −128
		{11, [2]byte{0xC8, 0xE0}, sensors.ErrOutOfRange}, // 0x647 = −441 → −55.125
		{9, [2]byte{0xC8, 0x80}, sensors.ErrOutOfRange},  // 0x191 = −111 → −55.5
	} {
		if _, err := decode(tc.bits, tc.b); !errors.Is(err, tc.reason) {
			t.Errorf("decode(%d bits, % X) error = %v, want %v", tc.bits, tc.b, err, tc.reason)
		}
	}
}

// modelAt names a model read at each resolution, and its configuration
// register when it needs no write: TMP75 class already at 12 bits (R1 R0 =
// 11), LM75A/B and LM75 running.
var modelAt = map[int]struct {
	model  string
	config byte
}{12: {"tmp75", 0x60}, 11: {"lm75b", 0x00}, 9: {"lm75", 0x00}}

func TestRead(t *testing.T) {
	for _, v := range vectors {
		var ops []i2ctest.IO
		opts := &Opts{}
		if m, ok := modelAt[v.bits]; ok {
			opts.Model = m.model
			ops = append(ops, i2ctest.IO{Addr: 0x4F, W: []byte{0x01}, R: []byte{m.config}}) // 8-bit configuration: nothing to change
		} else if v.b[1]&1 == 1 {
			opts.Extended = true
			ops = append(ops, i2ctest.IO{Addr: 0x4B, W: []byte{0x01}, R: []byte{0x60, 0xB0}}) // configuration: EM already set
		} else {
			ops = append(ops, i2ctest.IO{Addr: 0x4B, W: []byte{0x01}, R: configPowerOn}) // configuration: power-on
		}
		addr := ops[0].Addr
		ops = append(ops, i2ctest.IO{Addr: addr, W: []byte{0x00}, R: v.b[:]}) // temperature register
		bus := &i2ctest.Playback{DontPanic: true, Ops: ops}
		d, w := newDev(t, bus, addr, opts)
		got, err := d.Read(context.Background())
		if err != nil {
			t.Fatalf("% X: %v", v.b, err)
		}
		want := reading.Reading{Quantity: reading.Temperature, Unit: "°C", Value: v.t, Raw: v.t, Time: i2cplay.T0}
		if len(got) != 1 || got[0] != want {
			t.Errorf("% X: Read = %+v, want %+v", v.b, got, want)
		}
		if len(*w) != 0 {
			t.Errorf("% X: nothing was written, yet the Read waited %v", v.b, *w)
		}
		i2cplay.Close(t, bus)
	}
}

func TestConfigure(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts *Opts
		ops  []i2ctest.IO
		wait time.Duration
	}{
		{
			name: "tmp102 shut down", opts: nil,
			ops: []i2ctest.IO{
				// configuration 0x75A0: OS 0, R1 R0 11, fault queue 4 (F1 F0 = 10), POL 1, TM 0, SD 1, 4 Hz, AL 1
				{Addr: 0x48, W: []byte{0x01}, R: []byte{0x75, 0xA0}}, // configuration register: shut down
				{Addr: 0x48, W: []byte{0x01, 0x74, 0xA0}},            // configuration ← SD cleared, the rest kept
			},
			wait: 35 * time.Millisecond,
		},
		{
			name: "tmp102 extended wanted", opts: &Opts{Extended: true},
			ops: []i2ctest.IO{
				{Addr: 0x48, W: []byte{0x01}, R: configPowerOn}, // configuration: power-on
				{Addr: 0x48, W: []byte{0x01, 0x60, 0xB0}},       // configuration ← EM set
			},
			wait: 35 * time.Millisecond,
		},
		{
			name: "tmp102 extended left on by someone else", opts: &Opts{Model: "tmp102"},
			ops: []i2ctest.IO{
				{Addr: 0x48, W: []byte{0x01}, R: []byte{0x60, 0xB0}}, // configuration: EM set
				{Addr: 0x48, W: []byte{0x01, 0x60, 0xA0}},            // configuration ← EM cleared
			},
			wait: 35 * time.Millisecond,
		},
		{
			name: "tmp102 one-shot bit read back is not a change", opts: nil,
			ops: []i2ctest.IO{
				{Addr: 0x48, W: []byte{0x01}, R: []byte{0xE0, 0xA0}}, // configuration: OS reads 1
			},
		},
		{
			name: "lm75 shut down", opts: &Opts{Model: "lm75"},
			ops: []i2ctest.IO{
				{Addr: 0x48, W: []byte{0x01}, R: []byte{0x1F}}, // 8-bit configuration: fault queue 6, POL, INT, SD
				{Addr: 0x48, W: []byte{0x01, 0x1E}},            // configuration ← SD cleared
			},
			wait: 300 * time.Millisecond,
		},
		{
			name: "tmp75 one-shot bit is written as 0", opts: &Opts{Model: "tmp75"},
			ops: []i2ctest.IO{
				{Addr: 0x48, W: []byte{0x01}, R: []byte{0xE1}}, // OS, R1 R0 = 11, SD
				{Addr: 0x48, W: []byte{0x01, 0x60}},            // configuration ← OS and SD cleared
			},
			wait: 300 * time.Millisecond, // shut down: no conversion under way
		},
		{
			name: "tmp175 at 10 bits, fault queue and polarity kept", opts: &Opts{Model: "tmp175"},
			ops: []i2ctest.IO{
				{Addr: 0x48, W: []byte{0x01}, R: []byte{0x3C}}, // R1 R0 = 01 (10 bit), F1 F0 = 11, POL
				{Addr: 0x48, W: []byte{0x01, 0x7C}},            // configuration ← R1 R0 = 11
			},
			wait: 75*time.Millisecond + 300*time.Millisecond, // the 10-bit conversion under way, then one at 12
		},
		{
			name: "lm75 reserved bits kept", opts: &Opts{Model: "lm75"},
			ops: []i2ctest.IO{
				{Addr: 0x48, W: []byte{0x01}, R: []byte{0x18}}, // fault queue 6, running: nothing to write
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops := append(tc.ops, i2ctest.IO{Addr: 0x48, W: []byte{0x00}, R: []byte{0x19, 0x00}}) // temperature: 25 °C
			bus := &i2ctest.Playback{DontPanic: true, Ops: ops}
			d, w := newDev(t, bus, 0x48, tc.opts)
			got, err := d.Read(context.Background())
			if err != nil || got[0].Value != 25 {
				t.Fatalf("Read = %+v, %v", got, err)
			}
			var want []time.Duration
			if tc.wait > 0 {
				want = []time.Duration{tc.wait}
			}
			if len(*w) != len(want) || (len(want) == 1 && (*w)[0] != want[0]) {
				t.Errorf("waits = %v, want %v", *w, want)
			}
			i2cplay.Close(t, bus)
		})
	}
}

func TestFaults(t *testing.T) {
	start := i2ctest.IO{Addr: 0x49, W: []byte{0x01}, R: configPowerOn} // configuration: power-on
	for _, tc := range []struct {
		name    string
		ops     []i2ctest.IO
		nack    map[int]bool
		reason  error
		message string
	}{
		{
			name:    "NACK",
			ops:     []i2ctest.IO{start},
			nack:    map[int]bool{2: true}, // the temperature read
			reason:  sensors.ErrNoDevice,
			message: "tmp102: i2c 0x49: read temperature: no device: sysfs-i2c: remote I/O error",
		},
		{
			name:    "all-FF",
			ops:     []i2ctest.IO{start, {Addr: 0x49, W: []byte{0x00}, R: []byte{0xFF, 0xFF}}}, // temperature register: all-FF
			reason:  sensors.ErrBadData,
			message: "tmp102: i2c 0x49: bad data: temperature register 0xFFFF has low bits set in 13-bit mode",
		},
		{
			name:    "out of range",
			ops:     []i2ctest.IO{start, {Addr: 0x49, W: []byte{0x00}, R: []byte{0x4B, 0x09}}}, // temperature register: 150.0625 °C (EM)
			reason:  sensors.ErrOutOfRange,
			message: "tmp102: i2c 0x49: out of range: 150.0625 °C outside -55…150 °C",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bus := &i2cplay.NACKBus{Playback: i2ctest.Playback{DontPanic: true, Ops: tc.ops}, NACK: tc.nack}
			d, _ := newDev(t, bus, 0x49, nil)
			got, err := d.Read(context.Background())
			if got != nil {
				t.Errorf("a failed Read returned readings: %+v", got)
			}
			if !errors.Is(err, tc.reason) || err.Error() != tc.message {
				t.Fatalf("error = %v, want %q", err, tc.message)
			}
			i2cplay.Close(t, bus)
		})
	}
}

func TestRecoveryAfterFailure(t *testing.T) {
	bus := &i2cplay.NACKBus{Playback: i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x48, W: []byte{0x01}, R: configPowerOn}, // configuration: power-on
		// first Read: the temperature read (transfer 2) is NACKed
		// second Read: check the configuration again, the chip came back shut down
		{Addr: 0x48, W: []byte{0x01}, R: []byte{0x61, 0xA0}}, // configuration: SD set
		{Addr: 0x48, W: []byte{0x01, 0x60, 0xA0}},            // configuration ← SD cleared
		{Addr: 0x48, W: []byte{0x00}, R: []byte{0x19, 0x00}}, // temperature: 25 °C
		// third Read: nothing to recover from
		{Addr: 0x48, W: []byte{0x00}, R: []byte{0xE7, 0x00}}, // temperature: −25 °C
	}}, NACK: map[int]bool{2: true}}
	d, w := newDev(t, bus, 0x48, nil)
	if _, err := d.Read(context.Background()); !errors.Is(err, sensors.ErrNoDevice) {
		t.Fatalf("first Read: %v, want ErrNoDevice", err)
	}
	got, err := d.Read(context.Background())
	if err != nil || got[0].Value != 25 {
		t.Fatalf("second Read = %+v, %v", got, err)
	}
	if len(*w) != 1 || (*w)[0] != 35*time.Millisecond {
		t.Errorf("waits = %v, want [35ms]", *w)
	}
	got, err = d.Read(context.Background())
	if err != nil || got[0].Value != -25 {
		t.Fatalf("third Read = %+v, %v", got, err)
	}
	i2cplay.Close(t, bus)
}

func TestOutOfRangeDoesNotReconfigure(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x48, W: []byte{0x01}, R: configPowerOn},      // configuration: power-on
		{Addr: 0x48, W: []byte{0x00}, R: []byte{0xC8, 0xF0}}, // temperature: −55.0625 °C
		{Addr: 0x48, W: []byte{0x00}, R: []byte{0x19, 0x00}}, // temperature: 25 °C
	}}
	d, _ := newDev(t, bus, 0x48, nil)
	if _, err := d.Read(context.Background()); !errors.Is(err, sensors.ErrOutOfRange) {
		t.Fatalf("first Read: %v, want ErrOutOfRange", err)
	}
	if _, err := d.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	i2cplay.Close(t, bus)
}

func TestReadCancelled(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x48, W: []byte{0x01}, R: []byte{0x61, 0xA0}}, // configuration: SD set
		{Addr: 0x48, W: []byte{0x01, 0x60, 0xA0}},            // configuration ← SD cleared
		{Addr: 0x48, W: []byte{0x00}, R: []byte{0x19, 0x00}}, // temperature (second Read)
	}}
	d, err := NewI2C(bus, 0x48, nil, i2cplay.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got, err := d.Read(ctx); !errors.Is(err, context.Canceled) || got != nil {
		t.Fatalf("Read = %v, %v; want context.Canceled", got, err)
	}
	w := &i2cplay.Waits{}
	d.sleep = w.Sleep
	if _, err := d.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(*w) != 1 || (*w)[0] != 35*time.Millisecond {
		t.Errorf("waits = %v, want [35ms]: the wait is still owed", *w)
	}
	i2cplay.Close(t, bus)
}

func TestReadRealWait(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x4B, W: []byte{0x01}, R: []byte{0x61, 0xA0}}, // configuration: SD set
		{Addr: 0x4B, W: []byte{0x01, 0x60, 0xA0}},            // configuration ← SD cleared
		{Addr: 0x4B, W: []byte{0x00}, R: []byte{0x50, 0x00}}, // temperature: 80 °C, after a real 35 ms wait
	}}
	d, err := NewI2C(bus, 0x4B, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Read(context.Background())
	if err != nil || got[0].Value != 80 || got[0].Time.IsZero() {
		t.Fatalf("Read = %+v, %v", got, err)
	}
	i2cplay.Close(t, bus)
}

func TestNewI2C(t *testing.T) {
	bus := &i2cplay.NACKBus{NACK: map[int]bool{1: true}}
	if _, err := NewI2C(bus, 0x48, nil, nil); !errors.Is(err, sensors.ErrNoDevice) ||
		err.Error() != "tmp102: i2c 0x48: read config: no device: sysfs-i2c: remote I/O error" {
		t.Errorf("missing chip: %v", err)
	}
	for _, tc := range []struct {
		addr uint16
		opts *Opts
		want string
	}{
		{0x4C, nil, "tmp102: address 0x4c outside 0x48–0x4b"},
		{0x47, &Opts{Model: "lm75"}, "tmp102: address 0x47 outside 0x48–0x4f"},
		{0x50, &Opts{Model: "tmp75"}, "tmp102: address 0x50 outside 0x48–0x4f"},
		{0x48, &Opts{Model: "lm75", Extended: true}, "tmp102: extended mode is a TMP102 feature, not available on model lm75"},
		{0x48, &Opts{Model: "tmp105", Extended: true}, "tmp102: extended mode is a TMP102 feature, not available on model tmp105"},
		{0x48, &Opts{Model: "tmp117"}, `tmp102: unknown model "tmp117" (want one of lm75, lm75a, lm75b, tmp102, tmp105, tmp175, tmp275, tmp75)`},
	} {
		if _, err := NewI2C(bus, tc.addr, tc.opts, nil); err == nil || err.Error() != tc.want {
			t.Errorf("NewI2C(0x%02x, %+v) = %v, want %q", tc.addr, tc.opts, err, tc.want)
		}
	}
	if _, err := NewI2C(nil, 0x48, nil, nil); err == nil {
		t.Error("NewI2C(nil bus) succeeded")
	}
	i2cplay.Close(t, bus)
}

func TestIdentify(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true}
	if chip, ok := Identify(bus, 0x48); ok || chip != "" {
		t.Errorf("Identify = %q, %v; want \"\", false", chip, ok)
	}
	i2cplay.Close(t, bus) // no bus traffic
}

func TestQuantitiesAndString(t *testing.T) {
	if q := Quantities(); len(q) != 1 || q[0] != reading.Temperature {
		t.Errorf("Quantities() = %v", q)
	}
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x4D, W: []byte{0x01}, R: []byte{0x00}}, // 8-bit configuration: running
	}}
	d, _ := newDev(t, bus, 0x4D, &Opts{Model: "lm75"})
	if got := d.String(); got != "lm75 i2c 0x4d" {
		t.Errorf("String() = %q", got)
	}
	i2cplay.Close(t, bus)
}

func FuzzDecode(f *testing.F) {
	for _, v := range vectors {
		f.Add(uint8(v.bits), v.b[0], v.b[1])
	}
	f.Add(uint8(0), byte(0xFF), byte(0xFF))
	f.Fuzz(func(t *testing.T, b uint8, hi, lo byte) {
		bits := []int{0, 9, 11, 12}[b%4]
		got, err := decode(bits, [2]byte{hi, lo})
		if err != nil {
			if sensors.Reason(err) == "other" {
				t.Fatalf("decode(%02X %02X): unclassified error %v", hi, lo, err)
			}
			return
		}
		if got < minTemp || got > maxTemp {
			t.Fatalf("decode(%02X %02X) = %v outside the range", hi, lo, got)
		}
		step := 0.0625
		if bits > 0 {
			step = 1 / float64(int(1)<<(bits-8))
		}
		if got/step != float64(int(got/step)) {
			t.Fatalf("decode(%d bits, %02X %02X) = %v is not a multiple of %v", bits, hi, lo, got, step)
		}
		if (bits > 0 || lo&1 == 0) && got > 127.9375 {
			t.Fatalf("decode(%02X %02X) = %v: above the 12-bit maximum", hi, lo, got)
		}
	})
}

// TestModels starts each model from its power-on state and reads it: the
// exact transfers, the waits and the datasheet values. A TMP75-class part
// powers on at 9 bits (configuration 0x00, TMP75 datasheet: "all bits equal
// to 0") and is set to 12 (R1 R0 = 11); it then reads −10.125 °C, which at
// 9 bits would read −10.5. LM75 and NXP's LM75A/B have no resolution to set.
func TestModels(t *testing.T) {
	tmp75 := []i2ctest.IO{
		{Addr: 0x48, W: []byte{0x01}, R: []byte{0x00}},       // 8-bit configuration: power-on, 9 bit
		{Addr: 0x48, W: []byte{0x01, 0x60}},                  // configuration ← R1 R0 = 11, 12 bit
		{Addr: 0x48, W: []byte{0x00}, R: []byte{0xF5, 0xE0}}, // temperature: 0xF5E = −162 → −10.125 °C
		{Addr: 0x48, W: []byte{0x00}, R: []byte{0x24, 0xA0}}, // temperature: 0x24A = 586 → 36.625 °C
	}
	for _, tc := range []struct {
		model string
		ops   []i2ctest.IO
		wait  []time.Duration
		want  []float64
	}{
		{"tmp102", []i2ctest.IO{
			{Addr: 0x48, W: []byte{0x01}, R: configPowerOn},      // 16-bit configuration: power-on, 12 bit, EM 0
			{Addr: 0x48, W: []byte{0x00}, R: []byte{0xF5, 0xE0}}, // temperature: −10.125 °C
			{Addr: 0x48, W: []byte{0x00}, R: []byte{0x24, 0xA0}}, // temperature: 36.625 °C
		}, nil, []float64{-10.125, 36.625}},
		// 37.5 ms: the 9-bit conversion under way; 300 ms: one at 12 bits.
		{"tmp75", tmp75, []time.Duration{337500 * time.Microsecond}, []float64{-10.125, 36.625}},
		{"tmp175", tmp75, []time.Duration{337500 * time.Microsecond}, []float64{-10.125, 36.625}},
		{"tmp275", tmp75, []time.Duration{337500 * time.Microsecond}, []float64{-10.125, 36.625}},
		{"tmp105", tmp75, []time.Duration{337500 * time.Microsecond}, []float64{-10.125, 36.625}},
		{"lm75", []i2ctest.IO{
			{Addr: 0x48, W: []byte{0x01}, R: []byte{0x00}},       // 8-bit configuration: power-on
			{Addr: 0x48, W: []byte{0x00}, R: []byte{0xFF, 0x80}}, // temperature: 1FF → −0.5 °C
			{Addr: 0x48, W: []byte{0x00}, R: []byte{0x7D, 0x00}}, // temperature: 0FA → 125 °C
		}, nil, []float64{-0.5, 125}},
		{"lm75a", []i2ctest.IO{
			{Addr: 0x48, W: []byte{0x01}, R: []byte{0x00}},       // 8-bit configuration: power-on
			{Addr: 0x48, W: []byte{0x00}, R: []byte{0xC9, 0x20}}, // temperature: 649 → −54.875 °C
			{Addr: 0x48, W: []byte{0x00}, R: []byte{0x7E, 0xE0}}, // temperature: 3F7 → 126.875 °C
		}, nil, []float64{-54.875, 126.875}},
		{"lm75b", []i2ctest.IO{
			{Addr: 0x48, W: []byte{0x01}, R: []byte{0x00}},       // 8-bit configuration: power-on
			{Addr: 0x48, W: []byte{0x00}, R: []byte{0xFF, 0xE0}}, // temperature: 7FF → −0.125 °C
			{Addr: 0x48, W: []byte{0x00}, R: []byte{0x00, 0x20}}, // temperature: 001 → 0.125 °C
		}, nil, []float64{-0.125, 0.125}},
	} {
		t.Run(tc.model, func(t *testing.T) {
			bus := &i2ctest.Playback{DontPanic: true, Ops: tc.ops}
			d, w := newDev(t, bus, 0x48, &Opts{Model: tc.model})
			for _, want := range tc.want {
				got, err := d.Read(context.Background())
				if err != nil || len(got) != 1 || got[0].Value != want || got[0].Raw != want {
					t.Fatalf("Read = %+v, %v; want %v °C", got, err, want)
				}
			}
			if fmt.Sprint(*w) != fmt.Sprint(tc.wait) {
				t.Errorf("waits = %v, want %v", *w, tc.wait)
			}
			if got, want := d.String(), tc.model+" i2c 0x48"; got != want {
				t.Errorf("String() = %q, want %q", got, want)
			}
			i2cplay.Close(t, bus)
		})
	}
	if got := Models(); fmt.Sprint(got) != "[lm75 lm75a lm75b tmp102 tmp105 tmp175 tmp275 tmp75]" {
		t.Errorf("Models() = %v", got)
	}
}

// TestPowerCycledTMP75 is a TMP75 that lost power between two reads: the
// failed read makes the next one check the configuration, find the power-on
// 9 bits and set 12 again before reading.
func TestPowerCycledTMP75(t *testing.T) {
	bus := &i2cplay.NACKBus{Playback: i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x49, W: []byte{0x01}, R: []byte{0x60}}, // 8-bit configuration: 12 bit already
		// first Read: the temperature read (transfer 2) is NACKed
		{Addr: 0x49, W: []byte{0x01}, R: []byte{0x00}},       // configuration: back at power-on, 9 bit
		{Addr: 0x49, W: []byte{0x01, 0x60}},                  // configuration ← 12 bit
		{Addr: 0x49, W: []byte{0x00}, R: []byte{0x00, 0x10}}, // temperature: 0x001 → 0.0625 °C
	}}, NACK: map[int]bool{2: true}}
	d, w := newDev(t, bus, 0x49, &Opts{Model: "tmp75"})
	if _, err := d.Read(context.Background()); !errors.Is(err, sensors.ErrNoDevice) {
		t.Fatalf("first Read: %v, want ErrNoDevice", err)
	}
	got, err := d.Read(context.Background())
	if err != nil || got[0].Value != 0.0625 {
		t.Fatalf("second Read = %+v, %v", got, err)
	}
	if fmt.Sprint(*w) != "[337.5ms]" {
		t.Errorf("waits = %v, want [337.5ms]", *w)
	}
	i2cplay.Close(t, bus)
}
