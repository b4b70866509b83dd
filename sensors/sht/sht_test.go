package sht

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/kelvin-gw/kelvin/reading"
	"github.com/kelvin-gw/kelvin/sensors"
	"github.com/kelvin-gw/kelvin/sensors/internal/crc8"
	"github.com/kelvin-gw/kelvin/sensors/internal/i2cplay"
)

// cancelBus cancels a context when a write equal to on goes to the bus,
// after passing it on: ctx ends while the sensor measures.
type cancelBus struct {
	i2ctest.Playback
	on     []byte
	cancel context.CancelFunc
}

func (b *cancelBus) Tx(addr uint16, w, r []byte) error {
	err := b.Playback.Tx(addr, w, r)
	if string(w) == string(b.on) {
		b.cancel()
	}
	return err
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

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

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
		g := got[i]
		if g.Quantity != w.Quantity || g.Unit != w.Unit || !g.Time.Equal(w.Time) || !near(g.Value, w.Value) || g.Raw != g.Value {
			t.Errorf("reading %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestReadSHT3x(t *testing.T) {
	for _, tc := range []struct {
		rep  string
		cmd  []byte
		wait time.Duration
	}{
		{"", []byte{0x24, 0x00}, 15500 * time.Microsecond},
		{"high", []byte{0x24, 0x00}, 15500 * time.Microsecond},
		{"medium", []byte{0x24, 0x0B}, 6500 * time.Microsecond},
		{"low", []byte{0x24, 0x16}, 4500 * time.Microsecond},
	} {
		t.Run("repeatability="+tc.rep, func(t *testing.T) {
			bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
				{Addr: 0x44, W: tc.cmd}, // measure: single shot, no clock stretching, at this repeatability
				{Addr: 0x44, R: []byte{0x66, 0x66, 0x93, 0x80, 0x00, 0xA2}}, // result: S_T 0x6666 (CRC 0x93), S_RH 0x8000 (CRC 0xA2)
			}}
			d, w := newDev(t, bus, 0x44, &Opts{Model: "sht3x", Repeatability: tc.rep})
			got, err := d.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			// T  = −45 + 175·26214/65535 = −45 + 4587450/65535 = −45 + 70 = 25 exactly
			//      (0x6666 = 26214 = 65535·2/5).
			// RH = 100·32768/65535 = 3276800/65535 = 50.000762951…
			checkReadings(t, got, 25, 50.000762951094835)
			if len(*w) != 1 || (*w)[0] != tc.wait {
				t.Errorf("waits = %v, want [%v]", *w, tc.wait)
			}
			i2cplay.Close(t, bus)
		})
	}
}

func TestReadSHT4x(t *testing.T) {
	for _, tc := range []struct {
		rep  string
		cmd  byte
		wait time.Duration
	}{
		{"", 0xFD, 8300 * time.Microsecond},
		{"high", 0xFD, 8300 * time.Microsecond},
		{"medium", 0xF6, 4500 * time.Microsecond},
		{"low", 0xE0, 2 * time.Millisecond},
	} {
		t.Run("repeatability="+tc.rep, func(t *testing.T) {
			bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
				{Addr: 0x45, W: []byte{tc.cmd}},                             // measure at this precision, no heater
				{Addr: 0x45, R: []byte{0x66, 0x66, 0x93, 0x80, 0x00, 0xA2}}, // result: S_T 0x6666 (CRC 0x93), S_RH 0x8000 (CRC 0xA2)
			}}
			d, w := newDev(t, bus, 0x45, &Opts{Model: "sht4x", Repeatability: tc.rep})
			got, err := d.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			// T  = −45 + 175·26214/65535 = 25 exactly.
			// RH = −6 + 125·32768/65535 = −6 + 62.500953689 = 56.500953689.
			checkReadings(t, got, 25, 56.50095368886854)
			if len(*w) != 1 || (*w)[0] != tc.wait {
				t.Errorf("waits = %v, want [%v]", *w, tc.wait)
			}
			i2cplay.Close(t, bus)
		})
	}
}

func TestDecodeVectors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		m      model
		b      [6]byte
		t, rh  float64
		reason error
	}{
		// T = −45 + 175·13107/65535 = −45 + 35 = −10; RH = 100·13107/65535 = 20.
		{"sht3x -10 °C 20 %RH", sht3x, [6]byte{0x33, 0x33, 0x88, 0x33, 0x33, 0x88}, -10, 20, nil},
		// T = −45 + 175·39321/65535 = −45 + 105 = 60; RH = 100·52428/65535 = 80.
		{"sht3x 60 °C 80 %RH", sht3x, [6]byte{0x99, 0x99, 0xBE, 0xCC, 0xCC, 0xA5}, 60, 80, nil},
		// T = −45 + 175·52428/65535 = −45 + 140 = 95; RH = 100·39321/65535 = 60.
		{"sht3x 95 °C 60 %RH", sht3x, [6]byte{0xCC, 0xCC, 0xA5, 0x99, 0x99, 0xBE}, 95, 60, nil},
		// RH = −6 + 125·13107/65535 = −6 + 25 = 19.
		{"sht4x -10 °C 19 %RH", sht4x, [6]byte{0x33, 0x33, 0x88, 0x33, 0x33, 0x88}, -10, 19, nil},
		// RH = −6 + 125·52428/65535 = −6 + 100 = 94.
		{"sht4x 94 %RH", sht4x, [6]byte{0x66, 0x66, 0x93, 0xCC, 0xCC, 0xA5}, 25, 94, nil},
		// RH = −6 + 125·1/65535 = −5.998 → clamped to 0.
		{"sht4x clamp low", sht4x, [6]byte{0x66, 0x66, 0x93, 0x00, 0x01, 0xB0}, 25, 0, nil},
		// RH = −6 + 125·65534/65535 = 118.998 → clamped to 100.
		{"sht4x clamp high", sht4x, [6]byte{0x66, 0x66, 0x93, 0xFF, 0xFE, 0x9D}, 25, 100, nil},
		// SHT3x has no offset: RH = 100·1/65535 = 0.0015259.
		{"sht3x no clamp needed", sht3x, [6]byte{0x66, 0x66, 0x93, 0x00, 0x01, 0xB0}, 25, 0.0015259021896696422, nil},
		// Range edges: S_T 1873 → −45 + 327775/65535 = −39.998474; 1872 → −40.001144.
		{"-39.998 °C in range", sht3x, [6]byte{0x07, 0x51, 0x60, 0x80, 0x00, 0xA2}, -39.99847409781033, 50.000762951094835, nil},
		{"-40.001 °C out of range", sht3x, [6]byte{0x07, 0x50, 0x51, 0x80, 0x00, 0xA2}, 0, 0, sensors.ErrOutOfRange},
		// S_T 63662 → −45 + 11140850/65535 = 124.998474; 63663 → 125.001144.
		{"124.998 °C in range", sht4x, [6]byte{0xF8, 0xAE, 0x4D, 0x80, 0x00, 0xA2}, 124.99847409781032, 56.50095368886854, nil},
		{"125.001 °C out of range", sht4x, [6]byte{0xF8, 0xAF, 0x7C, 0x80, 0x00, 0xA2}, 0, 0, sensors.ErrOutOfRange},
		// Faults on each word.
		{"crc temperature", sht3x, [6]byte{0x66, 0x66, 0x92, 0x80, 0x00, 0xA2}, 0, 0, sensors.ErrCRC},
		{"crc humidity", sht3x, [6]byte{0x66, 0x66, 0x93, 0x80, 0x00, 0xA3}, 0, 0, sensors.ErrCRC},
		{"all-FF", sht4x, [6]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, 0, 0, sensors.ErrBadData},
		// 0x0000 with its valid CRC 0x81 is still bad data.
		{"zero temperature word", sht3x, [6]byte{0x00, 0x00, 0x81, 0x80, 0x00, 0xA2}, 0, 0, sensors.ErrBadData},
		{"zero humidity word", sht4x, [6]byte{0x66, 0x66, 0x93, 0x00, 0x00, 0x81}, 0, 0, sensors.ErrBadData},
		{"all-FF humidity word", sht3x, [6]byte{0x66, 0x66, 0x93, 0xFF, 0xFF, 0xAC}, 0, 0, sensors.ErrBadData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gt, grh, err := decode(tc.m, tc.b)
			if tc.reason != nil {
				if !errors.Is(err, tc.reason) {
					t.Fatalf("decode(% X) error = %v, want %v", tc.b, err, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !near(gt, tc.t) || !near(grh, tc.rh) {
				t.Errorf("decode(% X) = %v °C, %v %%RH; want %v, %v", tc.b, gt, grh, tc.t, tc.rh)
			}
		})
	}
}

func TestReadFaults(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ops     []i2ctest.IO
		nack    map[int]bool
		reason  error
		message string
	}{
		{
			name: "crc on temperature word",
			ops: []i2ctest.IO{
				{Addr: 0x44, W: []byte{0x24, 0x00}},                         // measure, high repeatability
				{Addr: 0x44, R: []byte{0x66, 0x66, 0x00, 0x80, 0x00, 0xA2}}, // result: temperature CRC wrong
			},
			reason:  sensors.ErrCRC,
			message: "sht: i2c 0x44: crc mismatch on temperature word: got 0x00, want 0x93",
		},
		{
			name: "crc on humidity word",
			ops: []i2ctest.IO{
				{Addr: 0x44, W: []byte{0x24, 0x00}},                         // measure, high repeatability
				{Addr: 0x44, R: []byte{0x66, 0x66, 0x93, 0x80, 0x00, 0x00}}, // result: humidity CRC wrong
			},
			reason:  sensors.ErrCRC,
			message: "sht: i2c 0x44: crc mismatch on humidity word: got 0x00, want 0xA2",
		},
		{
			name: "all-FF",
			ops: []i2ctest.IO{
				{Addr: 0x44, W: []byte{0x24, 0x00}},                         // measure, high repeatability
				{Addr: 0x44, R: []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}}, // result: all-FF
			},
			reason:  sensors.ErrBadData,
			message: "sht: i2c 0x44: bad data: temperature word is 0xFFFF",
		},
		{
			name:    "NACK on measure command",
			ops:     nil,
			nack:    map[int]bool{1: true},
			reason:  sensors.ErrNoDevice,
			message: "sht: i2c 0x44: measure: no device: sysfs-i2c: remote I/O error",
		},
		{
			name: "NACK on read header",
			ops: []i2ctest.IO{
				{Addr: 0x44, W: []byte{0x24, 0x00}}, // measure, high repeatability
			},
			nack:    map[int]bool{2: true},
			reason:  sensors.ErrNoDevice,
			message: "sht: i2c 0x44: read result: no device: sysfs-i2c: remote I/O error",
		},
		{
			name: "out of range",
			ops: []i2ctest.IO{
				{Addr: 0x44, W: []byte{0x24, 0x00}}, // measure, high repeatability
				// S_T 0xF8AF → 125.001 °C
				{Addr: 0x44, R: []byte{0xF8, 0xAF, 0x7C, 0x80, 0x00, 0xA2}}, // result: S_T 0xF8AF → 125.001 °C
			},
			reason:  sensors.ErrOutOfRange,
			message: "sht: i2c 0x44: out of range: temperature 125.00 °C outside -40…125 °C",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bus := &i2cplay.NACKBus{Playback: i2ctest.Playback{DontPanic: true, Ops: tc.ops}, NACK: tc.nack}
			d, _ := newDev(t, bus, 0x44, &Opts{Model: "sht3x"})
			got, err := d.Read(context.Background())
			if got != nil {
				t.Errorf("a failed Read returned readings: %+v", got)
			}
			if !errors.Is(err, tc.reason) {
				t.Fatalf("error = %v, want %v", err, tc.reason)
			}
			if err.Error() != tc.message {
				t.Errorf("error = %q, want %q", err, tc.message)
			}
			i2cplay.Close(t, bus)
		})
	}
}

func TestSoftResetOnNextRead(t *testing.T) {
	good := []byte{0x66, 0x66, 0x93, 0x80, 0x00, 0xA2}
	for _, tc := range []struct {
		name      string
		model     string
		measure   []byte
		reset     []byte
		first     []i2ctest.IO // the failing Read's ops
		nack      map[int]bool
		wantWaits []time.Duration
	}{
		{
			name: "sht3x after crc", model: "sht3x",
			measure: []byte{0x24, 0x00}, reset: []byte{0x30, 0xA2},
			first: []i2ctest.IO{
				{Addr: 0x44, W: []byte{0x24, 0x00}},                         // measure
				{Addr: 0x44, R: []byte{0x66, 0x66, 0x93, 0x80, 0x00, 0xFF}}, // RH CRC wrong
			},
			wantWaits: []time.Duration{15500 * time.Microsecond, 1500 * time.Microsecond, 15500 * time.Microsecond},
		},
		{
			name: "sht3x after NACK", model: "sht3x",
			measure: []byte{0x24, 0x00}, reset: []byte{0x30, 0xA2},
			nack:      map[int]bool{1: true}, // the measure command
			wantWaits: []time.Duration{1500 * time.Microsecond, 15500 * time.Microsecond},
		},
		{
			name: "sht4x after all-FF", model: "sht4x",
			measure: []byte{0xFD}, reset: []byte{0x94},
			first: []i2ctest.IO{
				{Addr: 0x44, W: []byte{0xFD}},                               // measure, high precision
				{Addr: 0x44, R: []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}}, // result: all-FF
			},
			wantWaits: []time.Duration{8300 * time.Microsecond, 1 * time.Millisecond, 8300 * time.Microsecond},
		},
		{
			name: "sht4x after NACK on read", model: "sht4x",
			measure: []byte{0xFD}, reset: []byte{0x94},
			first: []i2ctest.IO{
				{Addr: 0x44, W: []byte{0xFD}}, // measure, high precision
			},
			nack:      map[int]bool{2: true}, // the read header
			wantWaits: []time.Duration{8300 * time.Microsecond, 1 * time.Millisecond, 8300 * time.Microsecond},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops := append([]i2ctest.IO{}, tc.first...)
			ops = append(ops,
				i2ctest.IO{Addr: 0x44, W: tc.reset},   // soft reset
				i2ctest.IO{Addr: 0x44, W: tc.measure}, // measure
				i2ctest.IO{Addr: 0x44, R: good},       // S_T 0x6666, S_RH 0x8000
				i2ctest.IO{Addr: 0x44, W: tc.measure}, // measure, no reset after a good Read
				i2ctest.IO{Addr: 0x44, R: good},       // result: 25 °C
			)
			bus := &i2cplay.NACKBus{Playback: i2ctest.Playback{DontPanic: true, Ops: ops}, NACK: tc.nack}
			d, w := newDev(t, bus, 0x44, &Opts{Model: tc.model})
			if _, err := d.Read(context.Background()); err == nil {
				t.Fatal("first Read succeeded, want a fault")
			}
			got, err := d.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !near(got[0].Value, 25) {
				t.Errorf("T = %v, want 25", got[0].Value)
			}
			if len(*w) != len(tc.wantWaits) {
				t.Fatalf("waits = %v, want %v", *w, tc.wantWaits)
			}
			for i := range tc.wantWaits {
				if (*w)[i] != tc.wantWaits[i] {
					t.Fatalf("waits = %v, want %v", *w, tc.wantWaits)
				}
			}
			if _, err := d.Read(context.Background()); err != nil {
				t.Fatal(err)
			}
			i2cplay.Close(t, bus)
		})
	}
}

func TestResetNACKedIsRetried(t *testing.T) {
	bus := &i2cplay.NACKBus{Playback: i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x44, W: []byte{0x30, 0xA2}},                         // soft reset (third Read)
		{Addr: 0x44, W: []byte{0x24, 0x00}},                         // measure
		{Addr: 0x44, R: []byte{0x66, 0x66, 0x93, 0x80, 0x00, 0xA2}}, // result: 25 °C
	}}, NACK: map[int]bool{1: true, 2: true}} // measure NACKed, then the reset too
	d, _ := newDev(t, bus, 0x44, &Opts{Model: "sht3x"})
	if _, err := d.Read(context.Background()); !errors.Is(err, sensors.ErrNoDevice) {
		t.Fatalf("first Read: %v, want ErrNoDevice", err)
	}
	_, err := d.Read(context.Background())
	if !errors.Is(err, sensors.ErrNoDevice) || !strings.Contains(err.Error(), "soft reset") {
		t.Fatalf("second Read: %v, want ErrNoDevice on soft reset", err)
	}
	if _, err := d.Read(context.Background()); err != nil {
		t.Fatalf("third Read: %v", err)
	}
	i2cplay.Close(t, bus)
}

func TestOutOfRangeDoesNotReset(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x44, W: []byte{0xFD}},                               // measure
		{Addr: 0x44, R: []byte{0xF8, 0xAF, 0x7C, 0x80, 0x00, 0xA2}}, // 125.001 °C
		{Addr: 0x44, W: []byte{0xFD}},                               // measure again, no reset
		{Addr: 0x44, R: []byte{0x66, 0x66, 0x93, 0x80, 0x00, 0xA2}}, // result: 25 °C
	}}
	d, _ := newDev(t, bus, 0x44, &Opts{Model: "sht4x"})
	if _, err := d.Read(context.Background()); !errors.Is(err, sensors.ErrOutOfRange) {
		t.Fatalf("first Read: %v, want ErrOutOfRange", err)
	}
	if _, err := d.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	i2cplay.Close(t, bus)
}

func TestReadCancelled(t *testing.T) {
	t.Run("before", func(t *testing.T) {
		bus := &i2ctest.Playback{DontPanic: true}
		d, err := NewI2C(bus, 0x44, &Opts{Model: "sht3x"}, i2cplay.Now)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if got, err := d.Read(ctx); !errors.Is(err, context.Canceled) || got != nil {
			t.Fatalf("Read = %v, %v; want context.Canceled", got, err)
		}
		i2cplay.Close(t, bus) // no bus traffic at all
	})
	t.Run("while measuring", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		bus := &cancelBus{Playback: i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
			{Addr: 0x44, W: []byte{0x24, 0x00}}, // measure; ctx ends meanwhile
			// next Read: waits one measurement duration, then measures anew
			{Addr: 0x44, W: []byte{0x24, 0x00}},                         // measure, high repeatability
			{Addr: 0x44, R: []byte{0x66, 0x66, 0x93, 0x80, 0x00, 0xA2}}, // result: 25 °C
		}}, on: []byte{0x24, 0x00}, cancel: cancel}
		d, err := NewI2C(bus, 0x44, &Opts{Model: "sht3x"}, i2cplay.Now)
		if err != nil {
			t.Fatal(err)
		}
		// The real timer-and-ctx wait.
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
		checkReadings(t, got, 25, 50.000762951094835)
		want := []time.Duration{15500 * time.Microsecond, 15500 * time.Microsecond}
		if len(*w) != 2 || (*w)[0] != want[0] || (*w)[1] != want[1] {
			t.Errorf("waits = %v, want %v (settle, then measure)", *w, want)
		}
		i2cplay.Close(t, bus)
	})
}

func TestReadRealWait(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x44, W: []byte{0xFD}},                               // measure, high precision; real 8.3 ms wait
		{Addr: 0x44, R: []byte{0x66, 0x66, 0x93, 0x80, 0x00, 0xA2}}, // result: 25 °C
	}}
	d, err := NewI2C(bus, 0x44, &Opts{Model: "sht4x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Time.IsZero() {
		t.Fatalf("got %+v", got)
	}
	i2cplay.Close(t, bus)
}

func TestIdentify(t *testing.T) {
	// Serial number words 0x1234 (CRC 0x37) and 0x5678 (CRC 0x7D).
	serial := []byte{0x12, 0x34, 0x37, 0x56, 0x78, 0x7D}
	for _, tc := range []struct {
		name   string
		ops    []i2ctest.IO
		nack   map[int]bool
		chip   string
		wantOK bool
	}{
		{
			name: "sht4x",
			ops: []i2ctest.IO{
				{Addr: 0x44, W: []byte{0x89}}, // SHT4x read serial number
				{Addr: 0x44, R: serial},       // serial number: 0x1234, 0x5678
			},
			chip: "sht4x", wantOK: true,
		},
		{
			name: "sht3x",
			ops: []i2ctest.IO{
				{Addr: 0x45, W: []byte{0x89}},       // SHT4x read serial number: ignored
				{Addr: 0x45, W: []byte{0x37, 0x80}}, // SHT3x read serial number
				{Addr: 0x45, R: serial},             // serial number: 0x1234, 0x5678
			},
			nack: map[int]bool{2: true}, // SHT3x NACKs the read header after 0x89
			chip: "sht3x", wantOK: true,
		},
		{
			name: "nothing there",
			nack: map[int]bool{1: true, 2: true},
		},
		{
			name: "bad crc",
			ops: []i2ctest.IO{
				{Addr: 0x44, W: []byte{0x89}},                               // SHT4x read serial number
				{Addr: 0x44, R: []byte{0x12, 0x34, 0x38, 0x56, 0x78, 0x7D}}, // serial number, first CRC wrong
				{Addr: 0x44, W: []byte{0x37, 0x80}},                         // SHT3x read serial number
				{Addr: 0x44, R: []byte{0x12, 0x34, 0x37, 0x56, 0x78, 0x00}}, // serial number, second CRC wrong
			},
		},
		{
			name: "all-FF",
			ops: []i2ctest.IO{
				{Addr: 0x44, W: []byte{0x89}},                               // SHT4x read serial number
				{Addr: 0x44, R: []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}}, // all-FF
				{Addr: 0x44, W: []byte{0x37, 0x80}},                         // SHT3x read serial number
				{Addr: 0x44, R: []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}}, // all-FF
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bus := &i2cplay.NACKBus{Playback: i2ctest.Playback{DontPanic: true, Ops: tc.ops}, NACK: tc.nack}
			addr := uint16(0x44)
			if len(tc.ops) > 0 {
				addr = tc.ops[0].Addr
			}
			chip, ok := Identify(bus, addr)
			if chip != tc.chip || ok != tc.wantOK {
				t.Errorf("Identify = %q, %v; want %q, %v", chip, ok, tc.chip, tc.wantOK)
			}
			i2cplay.Close(t, bus)
		})
	}
}

func TestNewI2CErrors(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true}
	for _, tc := range []struct {
		addr uint16
		opts *Opts
		want string
	}{
		{0x44, nil, `sht: opts.Model is required ("sht3x" or "sht4x")`},
		{0x44, &Opts{}, `sht: unknown model "" (want "sht3x" or "sht4x")`},
		{0x44, &Opts{Model: "sht2x"}, `sht: unknown model "sht2x" (want "sht3x" or "sht4x")`},
		{0x46, &Opts{Model: "sht3x"}, "sht: address 0x46 is not an SHT3x address (0x44, 0x45)"},
		{0x40, &Opts{Model: "sht4x"}, "sht: address 0x40 is not an SHT4x address (0x44, 0x45, 0x46)"},
		{0x44, &Opts{Model: "sht4x", Repeatability: "ultra"}, `sht: unknown repeatability "ultra" (want "high", "medium" or "low")`},
	} {
		_, err := NewI2C(bus, tc.addr, tc.opts, nil)
		if err == nil || err.Error() != tc.want {
			t.Errorf("NewI2C(0x%02x, %+v) error = %v, want %q", tc.addr, tc.opts, err, tc.want)
		}
	}
	if _, err := NewI2C(nil, 0x44, &Opts{Model: "sht3x"}, nil); err == nil {
		t.Error("NewI2C(nil bus) succeeded")
	}
	i2cplay.Close(t, bus) // constructors never touch the bus
}

func TestQuantitiesAndString(t *testing.T) {
	q := Quantities()
	if len(q) != 2 || q[0] != reading.Temperature || q[1] != reading.Humidity {
		t.Errorf("Quantities() = %v", q)
	}
	q[0] = "changed"
	if Quantities()[0] != reading.Temperature {
		t.Error("Quantities returns a shared slice")
	}
	d, err := NewI2C(&i2ctest.Playback{}, 0x46, &Opts{Model: "sht4x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.String(); got != "sht4x i2c 0x46" {
		t.Errorf("String() = %q", got)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(false, []byte{0x66, 0x66, 0x93, 0x80, 0x00, 0xA2})
	f.Add(true, []byte{0x66, 0x66, 0x93, 0x80, 0x00, 0xA2})
	f.Add(true, []byte{0x66, 0x66, 0x93, 0xFF, 0xFE, 0x9D})
	f.Add(false, []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add(false, []byte{0x00, 0x00, 0x81, 0x00, 0x00, 0x81})
	f.Fuzz(func(t *testing.T, is4x bool, in []byte) {
		if len(in) != 6 {
			return
		}
		m := sht3x
		if is4x {
			m = sht4x
		}
		b := [6]byte(in)
		tc, rh, err := decode(m, b)
		if err != nil {
			if sensors.Reason(err) == "other" {
				t.Fatalf("decode(% X): unclassified error %v", in, err)
			}
			return
		}
		if crc8.Checksum(b[0], b[1]) != b[2] || crc8.Checksum(b[3], b[4]) != b[5] {
			t.Fatalf("decode(% X) accepted a bad CRC", in)
		}
		if tc < minTemp || tc > maxTemp || rh < 0 || rh > 100 || math.IsNaN(tc) || math.IsNaN(rh) {
			t.Fatalf("decode(% X) = %v °C, %v %%RH: outside the physical range", in, tc, rh)
		}
	})
}
