package tmp102

import (
	"context"
	"errors"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/kelvin-gw/kelvin/reading"
	"github.com/kelvin-gw/kelvin/sensors"
)

var t0 = time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return t0 }

// errNACK is what periph's Linux bus returns when the device NACKs
// (EREMOTEIO formatted with %v).
var errNACK = errors.New("sysfs-i2c: remote I/O error")

// nackBus passes transfers to a playback, except those whose 1-based number
// is in nack: they fail like a NACK, without consuming a playback op.
type nackBus struct {
	i2ctest.Playback
	nack map[int]bool
	n    int
}

func (b *nackBus) Tx(addr uint16, w, r []byte) error {
	b.n++
	if b.nack[b.n] {
		return errNACK
	}
	return b.Playback.Tx(addr, w, r)
}

// waits records the waits a Dev asks for and returns at once.
type waits []time.Duration

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	*w = append(*w, d)
	return ctx.Err()
}

func closeBus(t *testing.T, b interface{ Close() error }) {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func newDev(t *testing.T, b i2c.Bus, addr uint16, opts *Opts) (*Dev, *waits) {
	t.Helper()
	d, err := NewI2C(b, addr, opts, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	w := &waits{}
	d.sleep = w.sleep
	return d, w
}

// configPowerOn is the TMP102's power-on configuration 0x60A0: R1 R0 = 11
// (12-bit), conversion rate 4 Hz, AL = 1, EM = 0, SD = 0.
var configPowerOn = []byte{0x60, 0xA0}

// vectors: register bytes → °C. Normal mode: bits 15–4 as a 12-bit two's
// complement number times 0.0625. Extended mode: bits 15–3, 13 bits.
var vectors = []struct {
	lm75 bool
	b    [2]byte
	t    float64
}{
	{false, [2]byte{0x19, 0x00}, 25},       // 0x190 = 400; 400/16 = 25
	{false, [2]byte{0xE7, 0x00}, -25},      // 0xE70 = 3696 − 4096 = −400; −400/16 = −25
	{false, [2]byte{0xC9, 0x00}, -55},      // 0xC90 = 3216 − 4096 = −880; −880/16 = −55
	{false, [2]byte{0x50, 0x00}, 80},       // 0x500 = 1280; 1280/16 = 80
	{false, [2]byte{0x7F, 0xF0}, 127.9375}, // 0x7FF = 2047; 2047/16 = 127.9375, top of normal mode
	{false, [2]byte{0xFF, 0xF0}, -0.0625},  // 0xFFF = 4095 − 4096 = −1
	{false, [2]byte{0x00, 0x00}, 0},
	{false, [2]byte{0x0C, 0x81}, 25},      // EM: 0x0C81 >> 3 = 0x190 = 400 → 25
	{false, [2]byte{0x4B, 0x01}, 150},     // EM: 0x4B01 >> 3 = 0x960 = 2400 → 150
	{false, [2]byte{0x28, 0x01}, 80},      // EM: 0x2801 >> 3 = 0x500 = 1280 → 80
	{false, [2]byte{0xE4, 0x81}, -55},     // EM: 0xE481 >> 3 = 0x1C90 = 7312 − 8192 = −880 → −55
	{false, [2]byte{0xFF, 0xF9}, -0.0625}, // EM: 0x1FFF = 8191 − 8192 = −1
	{true, [2]byte{0x19, 0x00}, 25},
	{true, [2]byte{0xE7, 0x00}, -25},
	{true, [2]byte{0x19, 0x80}, 25.5}, // 0x198 = 408; 408/16 = 25.5, an LM75's 9-bit step
	{true, [2]byte{0x19, 0x0F}, 25},   // the four low bits are ignored
	{true, [2]byte{0xC9, 0x00}, -55},
}

func TestDecodeVectors(t *testing.T) {
	for _, v := range vectors {
		got, err := decode(v.lm75, v.b)
		if err != nil || got != v.t {
			t.Errorf("decode(lm75=%v, % X) = %v, %v; want %v", v.lm75, v.b, got, err, v.t)
		}
	}
	for _, tc := range []struct {
		lm75   bool
		b      [2]byte
		reason error
	}{
		{false, [2]byte{0xFF, 0xFF}, sensors.ErrBadData}, // EM flag with bits 2–1 set
		{false, [2]byte{0x19, 0x08}, sensors.ErrBadData}, // 12-bit mode with bit 3 set
		{false, [2]byte{0x19, 0x03}, sensors.ErrBadData}, // 13-bit mode with bit 1 set
		{true, [2]byte{0xFF, 0xFF}, sensors.ErrBadData},
		{false, [2]byte{0x4B, 0x09}, sensors.ErrOutOfRange}, // EM: 2401/16 = 150.0625
		{false, [2]byte{0xC8, 0xF0}, sensors.ErrOutOfRange}, // 0xC8F = −881 → −55.0625
		{true, [2]byte{0x80, 0x00}, sensors.ErrOutOfRange},  // −2048/16 = −128
	} {
		if _, err := decode(tc.lm75, tc.b); !errors.Is(err, tc.reason) {
			t.Errorf("decode(lm75=%v, % X) error = %v, want %v", tc.lm75, tc.b, err, tc.reason)
		}
	}
}

func TestRead(t *testing.T) {
	for _, v := range vectors {
		var ops []i2ctest.IO
		opts := &Opts{}
		if v.lm75 {
			opts.Model = "lm75"
			ops = append(ops, i2ctest.IO{Addr: 0x4F, W: []byte{0x01}, R: []byte{0x00}}) // 8-bit configuration: running
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
		want := reading.Reading{Quantity: reading.Temperature, Unit: "°C", Value: v.t, Raw: v.t, Time: t0}
		if len(got) != 1 || got[0] != want {
			t.Errorf("% X: Read = %+v, want %+v", v.b, got, want)
		}
		if len(*w) != 0 {
			t.Errorf("% X: nothing was written, yet the Read waited %v", v.b, *w)
		}
		closeBus(t, bus)
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
			name: "tmp75 one-shot bit is written as 0", opts: &Opts{Model: "lm75"},
			ops: []i2ctest.IO{
				{Addr: 0x48, W: []byte{0x01}, R: []byte{0xE1}}, // OS, R1 R0 = 11, SD
				{Addr: 0x48, W: []byte{0x01, 0x60}},            // configuration ← OS and SD cleared
			},
			wait: 300 * time.Millisecond,
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
			closeBus(t, bus)
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
			bus := &nackBus{Playback: i2ctest.Playback{DontPanic: true, Ops: tc.ops}, nack: tc.nack}
			d, _ := newDev(t, bus, 0x49, nil)
			got, err := d.Read(context.Background())
			if got != nil {
				t.Errorf("a failed Read returned readings: %+v", got)
			}
			if !errors.Is(err, tc.reason) || err.Error() != tc.message {
				t.Fatalf("error = %v, want %q", err, tc.message)
			}
			closeBus(t, bus)
		})
	}
}

func TestRecoveryAfterFailure(t *testing.T) {
	bus := &nackBus{Playback: i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x48, W: []byte{0x01}, R: configPowerOn}, // configuration: power-on
		// first Read: the temperature read (transfer 2) is NACKed
		// second Read: check the configuration again, the chip came back shut down
		{Addr: 0x48, W: []byte{0x01}, R: []byte{0x61, 0xA0}}, // configuration: SD set
		{Addr: 0x48, W: []byte{0x01, 0x60, 0xA0}},            // configuration ← SD cleared
		{Addr: 0x48, W: []byte{0x00}, R: []byte{0x19, 0x00}}, // temperature: 25 °C
		// third Read: nothing to recover from
		{Addr: 0x48, W: []byte{0x00}, R: []byte{0xE7, 0x00}}, // temperature: −25 °C
	}}, nack: map[int]bool{2: true}}
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
	closeBus(t, bus)
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
	closeBus(t, bus)
}

func TestReadCancelled(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x48, W: []byte{0x01}, R: []byte{0x61, 0xA0}}, // configuration: SD set
		{Addr: 0x48, W: []byte{0x01, 0x60, 0xA0}},            // configuration ← SD cleared
		{Addr: 0x48, W: []byte{0x00}, R: []byte{0x19, 0x00}}, // temperature (second Read)
	}}
	d, err := NewI2C(bus, 0x48, nil, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got, err := d.Read(ctx); !errors.Is(err, context.Canceled) || got != nil {
		t.Fatalf("Read = %v, %v; want context.Canceled", got, err)
	}
	w := &waits{}
	d.sleep = w.sleep
	if _, err := d.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(*w) != 1 || (*w)[0] != 35*time.Millisecond {
		t.Errorf("waits = %v, want [35ms]: the wait is still owed", *w)
	}
	closeBus(t, bus)
}

func TestSleepCtx(t *testing.T) {
	if err := sleepCtx(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("sleepCtx(1ms) = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sleepCtx(ctx, time.Hour) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("sleepCtx(1h) after cancel = %v, want context.Canceled", err)
	}
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
	closeBus(t, bus)
}

func TestNewI2C(t *testing.T) {
	bus := &nackBus{nack: map[int]bool{1: true}}
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
		{0x48, &Opts{Model: "lm75", Extended: true}, "tmp102: extended mode is a TMP102 feature, not available on model lm75"},
		{0x48, &Opts{Model: "tmp117"}, `tmp102: unknown model "tmp117" (want "tmp102" or "lm75")`},
	} {
		if _, err := NewI2C(bus, tc.addr, tc.opts, nil); err == nil || err.Error() != tc.want {
			t.Errorf("NewI2C(0x%02x, %+v) = %v, want %q", tc.addr, tc.opts, err, tc.want)
		}
	}
	if _, err := NewI2C(nil, 0x48, nil, nil); err == nil {
		t.Error("NewI2C(nil bus) succeeded")
	}
	closeBus(t, bus)
}

func TestIdentify(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true}
	if chip, ok := Identify(bus, 0x48); ok || chip != "" {
		t.Errorf("Identify = %q, %v; want \"\", false", chip, ok)
	}
	closeBus(t, bus) // no bus traffic
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
	closeBus(t, bus)
}

func FuzzDecode(f *testing.F) {
	for _, v := range vectors {
		f.Add(v.lm75, v.b[0], v.b[1])
	}
	f.Add(false, byte(0xFF), byte(0xFF))
	f.Fuzz(func(t *testing.T, lm75 bool, hi, lo byte) {
		got, err := decode(lm75, [2]byte{hi, lo})
		if err != nil {
			if sensors.Reason(err) == "other" {
				t.Fatalf("decode(%02X %02X): unclassified error %v", hi, lo, err)
			}
			return
		}
		if got < minTemp || got > maxTemp {
			t.Fatalf("decode(%02X %02X) = %v outside the range", hi, lo, got)
		}
		if got*16 != float64(int(got*16)) {
			t.Fatalf("decode(%02X %02X) = %v is not a multiple of 0.0625", hi, lo, got)
		}
		if !lm75 && lo&1 == 0 && got > 127.9375 {
			t.Fatalf("decode(%02X %02X) = %v: above the 12-bit maximum", hi, lo, got)
		}
	})
}
