package mcp9808

import (
	"context"
	"errors"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/kelvin-gw/kelvin/reading"
	"github.com/kelvin-gw/kelvin/sensors"
	"github.com/kelvin-gw/kelvin/sensors/internal/i2cplay"
)

// startOps are the constructor's transfers for a running chip at 0.0625 °C.
func startOps(addr uint16) []i2ctest.IO {
	return []i2ctest.IO{
		{Addr: addr, W: []byte{0x08, 0x03}},                  // resolution register ← 0.0625 °C
		{Addr: addr, W: []byte{0x01}, R: []byte{0x00, 0x00}}, // configuration register: running
	}
}

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

// vectors are HARDWARE.md's ambient-register vectors; each checked by hand
// against bits 12–0 as a 13-bit two's-complement number times 0.0625.
var vectors = []struct {
	b [2]byte
	t float64
}{
	{[2]byte{0x00, 0xA0}, 10.0},    // 0x0A0 = 160; 160/16 = 10
	{[2]byte{0x01, 0x94}, 25.25},   // 0x194 = 404; 404/16 = 25.25
	{[2]byte{0xC1, 0x94}, 25.25},   // flags 110 masked off → 0x0194 → 25.25
	{[2]byte{0x1F, 0x60}, -10.0},   // 0x1F60 = 8032 − 8192 = −160; −160/16 = −10
	{[2]byte{0x1E, 0x70}, -25.0},   // 0x1E70 = 7792 − 8192 = −400; −400/16 = −25
	{[2]byte{0x1F, 0xFF}, -0.0625}, // 0x1FFF = 8191 − 8192 = −1; −1/16 = −0.0625
	{[2]byte{0x00, 0x00}, 0},
	{[2]byte{0x07, 0xD0}, 125},  // 0x7D0 = 2000; 2000/16 = 125 (top of range)
	{[2]byte{0x1D, 0x80}, -40},  // 0x1D80 = 7552 − 8192 = −640; −640/16 = −40
	{[2]byte{0xFD, 0x80}, -40},  // same with all three flags set
	{[2]byte{0x20, 0xA0}, 10.0}, // Ta < Tlower flag only
}

func TestDecodeVectors(t *testing.T) {
	for _, v := range vectors {
		got, err := decode(v.b)
		if err != nil || got != v.t {
			t.Errorf("decode(% X) = %v, %v; want %v", v.b, got, err, v.t)
		}
	}
	for _, tc := range []struct {
		b      [2]byte
		reason error
	}{
		{[2]byte{0xFF, 0xFF}, sensors.ErrBadData},
		{[2]byte{0x07, 0xD1}, sensors.ErrOutOfRange}, // 2001/16 = 125.0625
		{[2]byte{0x1D, 0x7F}, sensors.ErrOutOfRange}, // −641/16 = −40.0625
		{[2]byte{0x0F, 0xFF}, sensors.ErrOutOfRange}, // 4095/16 = 255.9375
		{[2]byte{0x10, 0x00}, sensors.ErrOutOfRange}, // −4096/16 = −256
	} {
		if _, err := decode(tc.b); !errors.Is(err, tc.reason) {
			t.Errorf("decode(% X) error = %v, want %v", tc.b, err, tc.reason)
		}
	}
}

func TestRead(t *testing.T) {
	for _, v := range vectors {
		ops := append(startOps(0x18), i2ctest.IO{
			Addr: 0x18, W: []byte{0x05}, R: v.b[:], // ambient temperature register
		})
		bus := &i2ctest.Playback{DontPanic: true, Ops: ops}
		d, w := newDev(t, bus, 0x18, nil)
		got, err := d.Read(context.Background())
		if err != nil {
			t.Fatalf("% X: %v", v.b, err)
		}
		want := reading.Reading{Quantity: reading.Temperature, Unit: "°C", Value: v.t, Raw: v.t, Time: i2cplay.T0}
		if len(got) != 1 || got[0] != want {
			t.Errorf("% X: Read = %+v, want %+v", v.b, got, want)
		}
		if len(*w) != 0 {
			t.Errorf("% X: a running chip waited %v", v.b, *w)
		}
		i2cplay.Close(t, bus)
	}
}

func TestResolution(t *testing.T) {
	for _, tc := range []struct {
		res  float64
		code byte
		conv time.Duration
	}{
		{0.5, 0x00, 30 * time.Millisecond},
		{0.25, 0x01, 65 * time.Millisecond},
		{0.125, 0x02, 130 * time.Millisecond},
		{0.0625, 0x03, 250 * time.Millisecond},
		{0, 0x03, 250 * time.Millisecond},
	} {
		bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
			{Addr: 0x1F, W: []byte{0x08, tc.code}},               // resolution register
			{Addr: 0x1F, W: []byte{0x01}, R: []byte{0x03, 0x08}}, // config: hysteresis 1.5 °C (bits 10–9), SHDN (bit 8), alert output on (bit 3)
			{Addr: 0x1F, W: []byte{0x01, 0x02, 0x08}},            // config ← SHDN cleared, every other bit kept
			{Addr: 0x1F, W: []byte{0x05}, R: []byte{0x01, 0x94}}, // ambient: 25.25 °C
		}}
		d, w := newDev(t, bus, 0x1F, &Opts{Resolution: tc.res})
		got, err := d.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got[0].Value != 25.25 {
			t.Errorf("T = %v, want 25.25", got[0].Value)
		}
		// Woken from shutdown: the first Read waits one conversion time.
		if len(*w) != 1 || (*w)[0] != tc.conv {
			t.Errorf("resolution %v: waits = %v, want [%v]", tc.res, *w, tc.conv)
		}
		i2cplay.Close(t, bus)
	}
}

func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ops     []i2ctest.IO
		nack    map[int]bool
		reason  error
		message string
	}{
		{
			name:    "NACK",
			ops:     startOps(0x18),
			nack:    map[int]bool{3: true}, // the ambient register read
			reason:  sensors.ErrNoDevice,
			message: "mcp9808: i2c 0x18: read ambient temperature: no device: sysfs-i2c: remote I/O error",
		},
		{
			name:    "all-FF",
			ops:     append(startOps(0x18), i2ctest.IO{Addr: 0x18, W: []byte{0x05}, R: []byte{0xFF, 0xFF}}), // ambient temperature register: all-FF
			reason:  sensors.ErrBadData,
			message: "mcp9808: i2c 0x18: bad data: ambient register reads 0xFFFF",
		},
		{
			name:    "out of range",
			ops:     append(startOps(0x18), i2ctest.IO{Addr: 0x18, W: []byte{0x05}, R: []byte{0x07, 0xD1}}), // ambient temperature register: 125.0625 °C
			reason:  sensors.ErrOutOfRange,
			message: "mcp9808: i2c 0x18: out of range: 125.0625 °C outside -40…125 °C",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bus := &i2cplay.NACKBus{Playback: i2ctest.Playback{DontPanic: true, Ops: tc.ops}, NACK: tc.nack}
			d, _ := newDev(t, bus, 0x18, nil)
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
	ops := append(startOps(0x18),
		i2ctest.IO{Addr: 0x18, W: []byte{0x05}, R: []byte{0xFF, 0xFF}}, // ambient: all-FF
		// second Read: the resolution write (transfer 4) is NACKed
		// third Read: reconfigure, the chip was power-cycled (config 0x0000)
		i2ctest.IO{Addr: 0x18, W: []byte{0x08, 0x03}},                  // resolution register
		i2ctest.IO{Addr: 0x18, W: []byte{0x01}, R: []byte{0x00, 0x00}}, // config: running
		i2ctest.IO{Addr: 0x18, W: []byte{0x05}, R: []byte{0x00, 0xA0}}, // ambient: 10 °C
		// fourth Read: nothing to recover from
		i2ctest.IO{Addr: 0x18, W: []byte{0x05}, R: []byte{0x01, 0x94}}, // ambient: 25.25 °C
	)
	bus := &i2cplay.NACKBus{Playback: i2ctest.Playback{DontPanic: true, Ops: ops}, NACK: map[int]bool{4: true}}
	d, w := newDev(t, bus, 0x18, nil)
	if _, err := d.Read(context.Background()); !errors.Is(err, sensors.ErrBadData) {
		t.Fatalf("first Read: %v, want ErrBadData", err)
	}
	if _, err := d.Read(context.Background()); !errors.Is(err, sensors.ErrNoDevice) {
		t.Fatalf("second Read: %v, want ErrNoDevice", err)
	}
	got, err := d.Read(context.Background())
	if err != nil || got[0].Value != 10 {
		t.Fatalf("third Read = %+v, %v; want 10 °C", got, err)
	}
	if len(*w) != 1 || (*w)[0] != 250*time.Millisecond {
		t.Errorf("waits = %v, want [250ms] (one conversion after reconfiguring)", *w)
	}
	got, err = d.Read(context.Background())
	if err != nil || got[0].Value != 25.25 {
		t.Fatalf("fourth Read = %+v, %v; want 25.25 °C", got, err)
	}
	i2cplay.Close(t, bus)
}

func TestOutOfRangeDoesNotReconfigure(t *testing.T) {
	ops := append(startOps(0x18),
		i2ctest.IO{Addr: 0x18, W: []byte{0x05}, R: []byte{0x0F, 0xFF}}, // 255.9375 °C
		i2ctest.IO{Addr: 0x18, W: []byte{0x05}, R: []byte{0x01, 0x94}}, // 25.25 °C
	)
	bus := &i2ctest.Playback{DontPanic: true, Ops: ops}
	d, w := newDev(t, bus, 0x18, nil)
	if _, err := d.Read(context.Background()); !errors.Is(err, sensors.ErrOutOfRange) {
		t.Fatalf("first Read: %v, want ErrOutOfRange", err)
	}
	if _, err := d.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(*w) != 0 {
		t.Errorf("waits = %v, want none", *w)
	}
	i2cplay.Close(t, bus)
}

func TestReadCancelled(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x18, W: []byte{0x08, 0x03}},                  // resolution register
		{Addr: 0x18, W: []byte{0x01}, R: []byte{0x01, 0x00}}, // config: SHDN set
		{Addr: 0x18, W: []byte{0x01, 0x00, 0x00}},            // config ← running
		// After the cancelled Read, the next one still waits, then reads.
		{Addr: 0x18, W: []byte{0x05}, R: []byte{0x00, 0xA0}}, // ambient: 10 °C
	}}
	d, err := NewI2C(bus, 0x18, nil, i2cplay.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The real timer-and-ctx wait.
	if got, err := d.Read(ctx); !errors.Is(err, context.Canceled) || got != nil {
		t.Fatalf("Read = %v, %v; want context.Canceled", got, err)
	}
	w := &i2cplay.Waits{}
	d.sleep = w.Sleep
	got, err := d.Read(context.Background())
	if err != nil || got[0].Value != 10 {
		t.Fatalf("Read = %+v, %v", got, err)
	}
	if len(*w) != 1 || (*w)[0] != 250*time.Millisecond {
		t.Errorf("waits = %v, want [250ms]", *w)
	}
	i2cplay.Close(t, bus)
}

func TestReadRealWait(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x18, W: []byte{0x08, 0x00}},                  // resolution register ← 0.5 °C
		{Addr: 0x18, W: []byte{0x01}, R: []byte{0x01, 0x00}}, // config: SHDN set
		{Addr: 0x18, W: []byte{0x01, 0x00, 0x00}},            // config ← running
		{Addr: 0x18, W: []byte{0x05}, R: []byte{0x01, 0x90}}, // ambient: 25.0 °C, after a real 30 ms wait
	}}
	d, err := NewI2C(bus, 0x18, &Opts{Resolution: 0.5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Read(context.Background())
	if err != nil || got[0].Value != 25 || got[0].Time.IsZero() {
		t.Fatalf("Read = %+v, %v", got, err)
	}
	i2cplay.Close(t, bus)
}

func TestNewI2C(t *testing.T) {
	bus := &i2cplay.NACKBus{NACK: map[int]bool{1: true}}
	if _, err := NewI2C(bus, 0x18, nil, nil); !errors.Is(err, sensors.ErrNoDevice) ||
		err.Error() != "mcp9808: i2c 0x18: write resolution: no device: sysfs-i2c: remote I/O error" {
		t.Errorf("missing chip: %v", err)
	}
	for _, tc := range []struct {
		addr uint16
		opts *Opts
		want string
	}{
		{0x17, nil, "mcp9808: address 0x17 outside 0x18–0x1f"},
		{0x20, nil, "mcp9808: address 0x20 outside 0x18–0x1f"},
		{0x18, &Opts{Resolution: 0.1}, "mcp9808: resolution 0.1 °C not one of 0.5, 0.25, 0.125, 0.0625"},
	} {
		if _, err := NewI2C(bus, tc.addr, tc.opts, nil); err == nil || err.Error() != tc.want {
			t.Errorf("NewI2C(0x%02x, %+v) = %v, want %q", tc.addr, tc.opts, err, tc.want)
		}
	}
	if _, err := NewI2C(nil, 0x18, nil, nil); err == nil {
		t.Error("NewI2C(nil bus) succeeded")
	}
	i2cplay.Close(t, bus)
}

func TestIdentify(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr uint16
		ops  []i2ctest.IO
		nack map[int]bool
		ok   bool
	}{
		{"mcp9808", 0x18, []i2ctest.IO{
			{Addr: 0x18, W: []byte{0x06}, R: []byte{0x00, 0x54}}, // manufacturer ID
			{Addr: 0x18, W: []byte{0x07}, R: []byte{0x04, 0x00}}, // device ID, revision 0
		}, nil, true},
		{"other revision", 0x1C, []i2ctest.IO{
			{Addr: 0x1C, W: []byte{0x06}, R: []byte{0x00, 0x54}}, // manufacturer ID
			{Addr: 0x1C, W: []byte{0x07}, R: []byte{0x04, 0x01}}, // device ID, revision 1
		}, nil, true},
		{"other manufacturer", 0x18, []i2ctest.IO{
			{Addr: 0x18, W: []byte{0x06}, R: []byte{0x00, 0x55}}, // manufacturer ID: not Microchip
		}, nil, false},
		{"other device", 0x18, []i2ctest.IO{
			{Addr: 0x18, W: []byte{0x06}, R: []byte{0x00, 0x54}}, // manufacturer ID
			{Addr: 0x18, W: []byte{0x07}, R: []byte{0x05, 0x00}}, // device ID: not 0x04
		}, nil, false},
		{"all-FF", 0x18, []i2ctest.IO{
			{Addr: 0x18, W: []byte{0x06}, R: []byte{0xFF, 0xFF}}, // manufacturer ID: all-FF
		}, nil, false},
		{"nothing there", 0x18, nil, map[int]bool{1: true}, false},
		{"not an MCP9808 address", 0x48, nil, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bus := &i2cplay.NACKBus{Playback: i2ctest.Playback{DontPanic: true, Ops: tc.ops}, NACK: tc.nack}
			chip, ok := Identify(bus, tc.addr)
			if ok != tc.ok || (ok && chip != "mcp9808") || (!ok && chip != "") {
				t.Errorf("Identify = %q, %v; want ok %v", chip, ok, tc.ok)
			}
			i2cplay.Close(t, bus)
		})
	}
}

func TestQuantitiesAndString(t *testing.T) {
	if q := Quantities(); len(q) != 1 || q[0] != reading.Temperature {
		t.Errorf("Quantities() = %v", q)
	}
	bus := &i2ctest.Playback{DontPanic: true, Ops: startOps(0x19)}
	d, _ := newDev(t, bus, 0x19, nil)
	if got := d.String(); got != "mcp9808 i2c 0x19" {
		t.Errorf("String() = %q", got)
	}
	i2cplay.Close(t, bus)
}

func FuzzDecode(f *testing.F) {
	for _, v := range vectors {
		f.Add(v.b[0], v.b[1])
	}
	f.Add(byte(0xFF), byte(0xFF))
	f.Fuzz(func(t *testing.T, hi, lo byte) {
		got, err := decode([2]byte{hi, lo})
		if err != nil {
			if sensors.Reason(err) == "other" {
				t.Fatalf("decode(%02X %02X): unclassified error %v", hi, lo, err)
			}
			return
		}
		if got < minTemp || got > maxTemp {
			t.Fatalf("decode(%02X %02X) = %v outside the range", hi, lo, got)
		}
		// Flags never change the value.
		if again, err := decode([2]byte{hi & 0x1F, lo}); err != nil || again != got {
			t.Fatalf("decode(%02X %02X) = %v, but without flags %v, %v", hi, lo, got, again, err)
		}
		// One LSB is 1/16 °C: the value times 16 is an integer.
		if got*16 != float64(int(got*16)) {
			t.Fatalf("decode(%02X %02X) = %v is not a multiple of 0.0625", hi, lo, got)
		}
	})
}
