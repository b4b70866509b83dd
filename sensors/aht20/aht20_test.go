package aht20

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/kelvin-gw/kelvin/reading"
	"github.com/kelvin-gw/kelvin/sensors"
	"github.com/kelvin-gw/kelvin/sensors/internal/crc8"
	"github.com/kelvin-gw/kelvin/sensors/internal/i2cplay"
)

func newDev(t *testing.T, b i2c.Bus) (*Dev, *i2cplay.Waits) {
	t.Helper()
	d, err := NewI2C(b, 0x38, nil, i2cplay.Now)
	if err != nil {
		t.Fatal(err)
	}
	w := &i2cplay.Waits{}
	d.sleep = w.Sleep
	return d, w
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// Frames: status 0x1C (calibrated, idle), S_RH, S_T, CRC.
var (
	// S_RH 0x80000 = 2¹⁹ → 2¹⁹/2²⁰·100 = 50 %RH exactly.
	// S_T 0x66666 = 419430 → 419430/2²⁰·200 − 50 = 83886000/1048576 − 50
	//   = (80 − 80/1048576) − 50 = 29.9999237060546875 °C: 0x66666 is just
	//   under 0.4·2²⁰ (419430.4), so not quite 30.
	frame30 = []byte{0x1C, 0x80, 0x00, 0x06, 0x66, 0x66, 0x5C}
	// S_RH 0x40000 → 25 %RH; S_T 0x60000 = 0.375·2²⁰ → 75 − 50 = 25 °C.
	frame25 = []byte{0x1C, 0x40, 0x00, 0x06, 0x00, 0x00, 0x3C}
)

func checkReadings(t *testing.T, got []reading.Reading, wantT, wantRH float64) {
	t.Helper()
	if len(got) != 2 {
		t.Fatalf("got %d readings, want 2: %+v", len(got), got)
	}
	want := []reading.Reading{
		{Quantity: reading.Temperature, Unit: "°C", Value: wantT, Raw: wantT, Time: i2cplay.T0},
		{Quantity: reading.Humidity, Unit: "%RH", Value: wantRH, Raw: wantRH, Time: i2cplay.T0},
	}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("reading %d = %+v, want %+v", i, got[i], w)
		}
	}
}

func TestDecodeVectors(t *testing.T) {
	for _, tc := range []struct {
		b      [7]byte
		t, rh  float64
		reason error
	}{
		{[7]byte(frame30), 29.9999237060546875, 50, nil},
		{[7]byte(frame25), 25, 25, nil},
		// S_RH 0xC0000 → 75 %RH; S_T 0x30000 = 0.1875·2²⁰ → 37.5 − 50 = −12.5 °C.
		{[7]byte{0x1C, 0xC0, 0x00, 0x03, 0x00, 0x00, 0xE0}, -12.5, 75, nil},
		// S_T 0x48000 = 0.28125·2²⁰ → 56.25 − 50 = 6.25 °C.
		{[7]byte{0x1C, 0x80, 0x00, 0x04, 0x80, 0x00, 0xE1}, 6.25, 50, nil},
		// Status 0x18 (bit 2 clear) is calibrated too.
		{[7]byte{0x18, 0x80, 0x00, 0x06, 0x00, 0x00, 0x23}, 25, 50, nil},
		// S_RH 0 → 0 %RH; S_RH 0xFFFFF → 1048575/1048576·100 = 99.99990463256836.
		{[7]byte{0x1C, 0x00, 0x00, 0x06, 0x00, 0x00, 0xFD}, 25, 0, nil},
		{[7]byte{0x1C, 0xFF, 0xFF, 0xF6, 0x00, 0x00, 0x43}, 25, 99.99990463256836, nil},
		// Range edges: S_T 0xACCCC → 84.99985 °C, 0xACCCD → 85.00004 °C.
		{[7]byte{0x1C, 0x80, 0x00, 0x0A, 0xCC, 0xCC, 0x11}, 84.99984741210938, 50, nil},
		{[7]byte{0x1C, 0x80, 0x00, 0x0A, 0xCC, 0xCD, 0x20}, 0, 0, sensors.ErrOutOfRange},
		// S_T 0x0CCCD → −39.99996 °C, 0x0CCCC → −40.00015 °C.
		{[7]byte{0x1C, 0x80, 0x00, 0x00, 0xCC, 0xCD, 0xFE}, -39.999961853027344, 50, nil},
		{[7]byte{0x1C, 0x80, 0x00, 0x00, 0xCC, 0xCC, 0xCF}, 0, 0, sensors.ErrOutOfRange},
		// Faults.
		{[7]byte{0x1C, 0x80, 0x00, 0x06, 0x66, 0x66, 0x5D}, 0, 0, sensors.ErrCRC},
		{[7]byte{0x1C, 0x80, 0x00, 0x06, 0x66, 0x67, 0x5C}, 0, 0, sensors.ErrCRC},
		{[7]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, 0, 0, sensors.ErrBadData},
		{[7]byte{}, 0, 0, sensors.ErrBadData},
		{[7]byte{0x9C, 0x80, 0x00, 0x06, 0x66, 0x66, 0xB0}, 0, 0, sensors.ErrBadData}, // busy
		{[7]byte{0x14, 0x80, 0x00, 0x06, 0x66, 0x66, 0x86}, 0, 0, sensors.ErrBadData}, // not calibrated, CRC valid
	} {
		gt, grh, err := decode(tc.b)
		if tc.reason != nil {
			if !errors.Is(err, tc.reason) {
				t.Errorf("decode(% X) error = %v, want %v", tc.b, err, tc.reason)
			}
			continue
		}
		if err != nil || !near(gt, tc.t) || !near(grh, tc.rh) {
			t.Errorf("decode(% X) = %v °C, %v %%RH, %v; want %v, %v", tc.b, gt, grh, err, tc.t, tc.rh)
		}
	}
}

func TestRead(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x38, W: []byte{0x71}, R: []byte{0x18}}, // status: calibrated
		{Addr: 0x38, W: []byte{0xAC, 0x33, 0x00}},      // trigger measurement
		{Addr: 0x38, R: frame30},                       // measurement frame
		// second Read: no status check
		{Addr: 0x38, W: []byte{0xAC, 0x33, 0x00}}, // trigger measurement
		{Addr: 0x38, R: frame25},                  // measurement frame
	}}
	d, w := newDev(t, bus)
	got, err := d.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkReadings(t, got, 29.9999237060546875, 50)
	got, err = d.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkReadings(t, got, 25, 25)
	if !w.Equal(80*time.Millisecond, 80*time.Millisecond) {
		t.Errorf("waits = %v, want [80ms 80ms]", *w)
	}
	i2cplay.Close(t, bus)
}

func TestReadInitialisesUncalibrated(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x38, W: []byte{0x71}, R: []byte{0x10}}, // status: calibration bit clear
		{Addr: 0x38, W: []byte{0xBE, 0x08, 0x00}},      // initialise
		{Addr: 0x38, W: []byte{0xAC, 0x33, 0x00}},      // trigger measurement
		{Addr: 0x38, R: frame25},                       // measurement frame
	}}
	d, w := newDev(t, bus)
	got, err := d.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkReadings(t, got, 25, 25)
	if !w.Equal(10*time.Millisecond, 80*time.Millisecond) {
		t.Errorf("waits = %v, want [10ms 80ms]", *w)
	}
	i2cplay.Close(t, bus)
}

func TestReadBusy(t *testing.T) {
	busy := []byte{0x9C, 0x80, 0x00, 0x06, 0x66, 0x66, 0xB0}
	t.Run("then ready", func(t *testing.T) {
		bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
			{Addr: 0x38, W: []byte{0x71}, R: []byte{0x18}}, // status: calibrated
			{Addr: 0x38, W: []byte{0xAC, 0x33, 0x00}},      // trigger measurement
			{Addr: 0x38, R: busy},                          // busy
			{Addr: 0x38, R: busy},                          // busy
			{Addr: 0x38, R: frame25},                       // ready
		}}
		d, w := newDev(t, bus)
		got, err := d.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		checkReadings(t, got, 25, 25)
		if !w.Equal(80*time.Millisecond, 10*time.Millisecond, 10*time.Millisecond) {
			t.Errorf("waits = %v", *w)
		}
		i2cplay.Close(t, bus)
	})
	t.Run("forever", func(t *testing.T) {
		ops := []i2ctest.IO{
			{Addr: 0x38, W: []byte{0x71}, R: []byte{0x18}}, // status: calibrated
			{Addr: 0x38, W: []byte{0xAC, 0x33, 0x00}},      // trigger measurement
		}
		for range 6 { // the first read and 5 polls
			ops = append(ops, i2ctest.IO{Addr: 0x38, R: busy}) // measurement frame: busy (status 0x9C)
		}
		bus := &i2ctest.Playback{DontPanic: true, Ops: ops}
		d, w := newDev(t, bus)
		got, err := d.Read(context.Background())
		if got != nil || !errors.Is(err, sensors.ErrBadData) ||
			err.Error() != "aht20: i2c 0x38: bad data: still busy (status 0x9C)" {
			t.Fatalf("Read = %v, %v", got, err)
		}
		if !w.Equal(80*time.Millisecond, 10*time.Millisecond, 10*time.Millisecond, 10*time.Millisecond, 10*time.Millisecond, 10*time.Millisecond) {
			t.Errorf("waits = %v", *w)
		}
		i2cplay.Close(t, bus)
	})
}

func TestFaults(t *testing.T) {
	start := []i2ctest.IO{
		{Addr: 0x38, W: []byte{0x71}, R: []byte{0x18}}, // status: calibrated
		{Addr: 0x38, W: []byte{0xAC, 0x33, 0x00}},      // trigger measurement
	}
	with := func(frame ...byte) []i2ctest.IO {
		return append(append([]i2ctest.IO{}, start...), i2ctest.IO{Addr: 0x38, R: frame}) // measurement frame
	}
	for _, tc := range []struct {
		name    string
		ops     []i2ctest.IO
		nack    map[int]bool
		reason  error
		message string
	}{
		{
			name:    "crc",
			ops:     with(0x1C, 0x80, 0x00, 0x06, 0x66, 0x66, 0x00),
			reason:  sensors.ErrCRC,
			message: "aht20: i2c 0x38: crc mismatch: got 0x00, want 0x5C",
		},
		{
			name:    "all-FF",
			ops:     with(0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF),
			reason:  sensors.ErrBadData,
			message: "aht20: i2c 0x38: bad data: frame is all 0xFF",
		},
		{
			name:    "all-00",
			ops:     with(0, 0, 0, 0, 0, 0, 0),
			reason:  sensors.ErrBadData,
			message: "aht20: i2c 0x38: bad data: frame is all 0x00",
		},
		{
			name:    "calibration lost",
			ops:     with(0x14, 0x80, 0x00, 0x06, 0x66, 0x66, 0x86),
			reason:  sensors.ErrBadData,
			message: "aht20: i2c 0x38: bad data: not calibrated (status 0x14)",
		},
		{
			name:    "out of range",
			ops:     with(0x1C, 0x80, 0x00, 0x0A, 0xCC, 0xCD, 0x20),
			reason:  sensors.ErrOutOfRange,
			message: "aht20: i2c 0x38: out of range: temperature 85.00 °C outside -40…85 °C",
		},
		{
			name:    "NACK on status",
			nack:    map[int]bool{1: true},
			reason:  sensors.ErrNoDevice,
			message: "aht20: i2c 0x38: read status: no device: sysfs-i2c: remote I/O error",
		},
		{
			name:    "status all-FF",
			ops:     []i2ctest.IO{{Addr: 0x38, W: []byte{0x71}, R: []byte{0xFF}}}, // status: all-FF
			reason:  sensors.ErrBadData,
			message: "aht20: i2c 0x38: bad data: status byte is 0xFF",
		},
		{
			name:    "NACK on trigger",
			ops:     start[:1],
			nack:    map[int]bool{2: true},
			reason:  sensors.ErrNoDevice,
			message: "aht20: i2c 0x38: trigger measurement: no device: sysfs-i2c: remote I/O error",
		},
		{
			name:    "NACK on read",
			ops:     start,
			nack:    map[int]bool{3: true},
			reason:  sensors.ErrNoDevice,
			message: "aht20: i2c 0x38: read measurement: no device: sysfs-i2c: remote I/O error",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bus := &i2cplay.NACKBus{Playback: i2ctest.Playback{DontPanic: true, Ops: tc.ops}, NACK: tc.nack}
			d, _ := newDev(t, bus)
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

func TestSoftResetOnNextRead(t *testing.T) {
	bus := &i2cplay.NACKBus{Playback: i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x38, W: []byte{0x71}, R: []byte{0x18}},                    // status: calibrated
		{Addr: 0x38, W: []byte{0xAC, 0x33, 0x00}},                         // trigger measurement
		{Addr: 0x38, R: []byte{0x1C, 0x80, 0x00, 0x06, 0x66, 0x66, 0x00}}, // CRC wrong
		// second Read: the soft reset (transfer 4) is NACKed
		// third Read
		{Addr: 0x38, W: []byte{0xBA}},                  // soft reset
		{Addr: 0x38, W: []byte{0x71}, R: []byte{0x10}}, // status: calibration lost with the reset
		{Addr: 0x38, W: []byte{0xBE, 0x08, 0x00}},      // initialise
		{Addr: 0x38, W: []byte{0xAC, 0x33, 0x00}},      // trigger measurement
		{Addr: 0x38, R: frame25},                       // measurement frame
		// fourth Read: nothing to recover from
		{Addr: 0x38, W: []byte{0xAC, 0x33, 0x00}}, // trigger measurement
		{Addr: 0x38, R: frame30},                  // measurement frame
	}}, NACK: map[int]bool{4: true}}
	d, w := newDev(t, bus)
	if _, err := d.Read(context.Background()); !errors.Is(err, sensors.ErrCRC) {
		t.Fatalf("first Read: %v, want ErrCRC", err)
	}
	if _, err := d.Read(context.Background()); !errors.Is(err, sensors.ErrNoDevice) {
		t.Fatalf("second Read: %v, want ErrNoDevice", err)
	}
	*w = nil
	got, err := d.Read(context.Background())
	if err != nil {
		t.Fatalf("third Read: %v", err)
	}
	checkReadings(t, got, 25, 25)
	if !w.Equal(20*time.Millisecond, 10*time.Millisecond, 80*time.Millisecond) {
		t.Errorf("waits = %v, want [20ms 10ms 80ms] (reset, initialise, measure)", *w)
	}
	if _, err := d.Read(context.Background()); err != nil {
		t.Fatalf("fourth Read: %v", err)
	}
	i2cplay.Close(t, bus)
}

func TestOutOfRangeDoesNotReset(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x38, W: []byte{0x71}, R: []byte{0x18}},                    // status: calibrated
		{Addr: 0x38, W: []byte{0xAC, 0x33, 0x00}},                         // trigger measurement
		{Addr: 0x38, R: []byte{0x1C, 0x80, 0x00, 0x0A, 0xCC, 0xCD, 0x20}}, // 85.00004 °C
		{Addr: 0x38, W: []byte{0xAC, 0x33, 0x00}},                         // trigger measurement, no reset
		{Addr: 0x38, R: frame25},                                          // measurement frame
	}}
	d, _ := newDev(t, bus)
	if _, err := d.Read(context.Background()); !errors.Is(err, sensors.ErrOutOfRange) {
		t.Fatalf("first Read: %v, want ErrOutOfRange", err)
	}
	if _, err := d.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	i2cplay.Close(t, bus)
}

// cancelBus cancels a context after passing a write equal to on to the bus:
// ctx ends while the sensor measures.
type cancelBus struct {
	i2ctest.Playback
	on     []byte
	cancel context.CancelFunc
}

func (b *cancelBus) Tx(addr uint16, w, r []byte) error {
	err := b.Playback.Tx(addr, w, r)
	if b.on != nil && string(w) == string(b.on) {
		b.cancel()
	}
	return err
}

func TestReadCancelled(t *testing.T) {
	t.Run("before", func(t *testing.T) {
		bus := &i2ctest.Playback{DontPanic: true}
		d, _ := newDev(t, bus)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if got, err := d.Read(ctx); !errors.Is(err, context.Canceled) || got != nil {
			t.Fatalf("Read = %v, %v; want context.Canceled", got, err)
		}
		i2cplay.Close(t, bus) // no bus traffic
	})
	t.Run("while measuring", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		bus := &cancelBus{Playback: i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
			{Addr: 0x38, W: []byte{0x71}, R: []byte{0x18}}, // status: calibrated
			{Addr: 0x38, W: []byte{0xAC, 0x33, 0x00}},      // trigger measurement; ctx ends
			// next Read: waits 80 ms, then measures anew
			{Addr: 0x38, W: []byte{0xAC, 0x33, 0x00}}, // trigger measurement
			{Addr: 0x38, R: frame25},                  // measurement frame
		}}, on: []byte{0xAC, 0x33, 0x00}, cancel: cancel}
		d, err := NewI2C(bus, 0x38, nil, i2cplay.Now)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := d.Read(ctx); !errors.Is(err, context.Canceled) || got != nil {
			t.Fatalf("Read = %v, %v; want context.Canceled", got, err)
		}
		bus.on = nil
		w := &i2cplay.Waits{}
		d.sleep = w.Sleep
		got, err := d.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		checkReadings(t, got, 25, 25)
		if !w.Equal(80*time.Millisecond, 80*time.Millisecond) {
			t.Errorf("waits = %v, want [80ms 80ms] (settle, then measure)", *w)
		}
		i2cplay.Close(t, bus)
	})
}

func TestReadRealWait(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x38, W: []byte{0x71}, R: []byte{0x18}}, // status: calibrated
		{Addr: 0x38, W: []byte{0xAC, 0x33, 0x00}},      // trigger measurement; a real 80 ms wait
		{Addr: 0x38, R: frame25},                       // measurement frame
	}}
	d, err := NewI2C(bus, 0x38, &Opts{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Read(context.Background())
	if err != nil || len(got) != 2 || got[0].Value != 25 || got[0].Time.IsZero() {
		t.Fatalf("Read = %+v, %v", got, err)
	}
	i2cplay.Close(t, bus)
}

func TestNewI2C(t *testing.T) {
	if _, err := NewI2C(&i2ctest.Playback{}, 0x39, nil, nil); err == nil ||
		err.Error() != "aht20: address 0x39 is not the AHT20's 0x38" {
		t.Errorf("NewI2C(0x39) = %v", err)
	}
	if _, err := NewI2C(nil, 0x38, nil, nil); err == nil {
		t.Error("NewI2C(nil bus) succeeded")
	}
	bus := &i2ctest.Playback{DontPanic: true}
	if _, err := NewI2C(bus, 0x38, nil, nil); err != nil {
		t.Fatal(err)
	}
	i2cplay.Close(t, bus) // the constructor does not touch the bus
}

func TestIdentify(t *testing.T) {
	for _, tc := range []struct {
		name   string
		addr   uint16
		status []byte
		nack   bool
		ok     bool
	}{
		{"calibrated", 0x38, []byte{0x18}, false, true},
		{"calibrated, other bits", 0x38, []byte{0x1C}, false, true},
		{"not calibrated", 0x38, []byte{0x10}, false, false},
		{"busy", 0x38, []byte{0x98}, false, false},
		{"all-FF", 0x38, []byte{0xFF}, false, false},
		{"nothing there", 0x38, nil, true, false},
		{"wrong address", 0x39, nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ops []i2ctest.IO
			if tc.status != nil {
				ops = []i2ctest.IO{{Addr: tc.addr, W: []byte{0x71}, R: tc.status}} // status
			}
			bus := &i2cplay.NACKBus{Playback: i2ctest.Playback{DontPanic: true, Ops: ops}, NACK: map[int]bool{1: tc.nack}}
			chip, ok := Identify(bus, tc.addr)
			if ok != tc.ok || (ok && chip != "aht20") || (!ok && chip != "") {
				t.Errorf("Identify = %q, %v; want ok %v", chip, ok, tc.ok)
			}
			i2cplay.Close(t, bus)
		})
	}
}

func TestQuantitiesAndString(t *testing.T) {
	if q := Quantities(); len(q) != 2 || q[0] != reading.Temperature || q[1] != reading.Humidity {
		t.Errorf("Quantities() = %v", q)
	}
	d, _ := newDev(t, &i2ctest.Playback{})
	if got := d.String(); got != "aht20 i2c 0x38" {
		t.Errorf("String() = %q", got)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(frame30)
	f.Add(frame25)
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{0x9C, 0x80, 0x00, 0x06, 0x66, 0x66, 0xB0})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) != 7 {
			return
		}
		b := [7]byte(in)
		tc, rh, err := decode(b)
		if err != nil {
			if sensors.Reason(err) == "other" {
				t.Fatalf("decode(% X): unclassified error %v", in, err)
			}
			return
		}
		if crc8.Checksum(in[:6]...) != in[6] || in[0]&statusBusy != 0 || in[0]&statusCalibrated == 0 {
			t.Fatalf("decode(% X) accepted a frame it must reject", in)
		}
		if tc < minTemp || tc > maxTemp || rh < 0 || rh >= 100 {
			t.Fatalf("decode(% X) = %v °C, %v %%RH: outside the physical range", in, tc, rh)
		}
	})
}
