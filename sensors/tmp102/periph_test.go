package tmp102

import (
	"testing"

	"github.com/kelvin-gw/kelvin/sensors/internal/i2cplay"
	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"
	periph "periph.io/x/devices/v3/tmp102"
)

// TestPeriphDriver records why this package does not wrap
// periph.io/x/devices/v3/tmp102 (v3.7.4): it decodes the 12-bit format
// right, but halves every extended-mode (13-bit) value and writes the
// configuration register on every start. If this test starts failing after a
// periph upgrade, revisit the choice in doc.go.
func TestPeriphDriver(t *testing.T) {
	sense := func(t *testing.T, config, temp []byte, writeBack []byte) float64 {
		t.Helper()
		bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
			{Addr: 0x48, W: []byte{0x01}, R: config}, // configuration register
			{Addr: 0x48, W: writeBack},               // configuration written back on every start
			{Addr: 0x48, W: []byte{0x00}, R: temp},   // temperature register
		}}
		dev, err := periph.NewI2C(bus, 0x48, nil)
		if err != nil {
			t.Fatal(err)
		}
		var e physic.Env
		if err := dev.Sense(&e); err != nil {
			t.Fatal(err)
		}
		if err := bus.Close(); err != nil {
			t.Fatal(err)
		}
		return e.Temperature.Celsius()
	}
	for _, v := range vectors {
		if v.bits > 0 || v.b[1]&1 == 1 {
			continue
		}
		if got := sense(t, []byte{0x60, 0xA0}, v.b[:], []byte{0x01, 0x60, 0xA0}); got != v.t {
			t.Errorf("periph, normal mode: % X → %v °C, want %v", v.b, got, v.t)
		}
	}
	// Extended mode (EM set, and kept by periph's write-back): 0C 81 is
	// 25 °C, periph reads 12.5 °C; 4B 01 is 150 °C, periph reads 75 °C.
	if got := sense(t, []byte{0x60, 0xB0}, []byte{0x0C, 0x81}, []byte{0x01, 0x60, 0xB0}); got != 12.5 {
		t.Errorf("periph, extended mode: 0C 81 → %v °C; expected its known 12.5 °C", got)
	}
	if got := sense(t, []byte{0x60, 0xB0}, []byte{0x4B, 0x01}, []byte{0x01, 0x60, 0xB0}); got != 75 {
		t.Errorf("periph, extended mode: 4B 01 → %v °C; expected its known 75 °C", got)
	}

	// A NACKed configuration read is ignored and a configuration built from
	// zeros (plus the 4 Hz rate) is written: fault queue, polarity and
	// extended mode are lost.
	bus := &i2cplay.NACKBus{Playback: i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x48, W: []byte{0x01, 0x00, 0x80}}, // configuration ← 0x0080
	}}, NACK: map[int]bool{1: true}}
	if _, err := periph.NewI2C(bus, 0x48, nil); err != nil {
		t.Fatalf("periph.NewI2C after a NACKed read: %v", err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}
