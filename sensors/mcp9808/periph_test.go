package mcp9808

import (
	"testing"

	"github.com/kelvin-gw/kelvin/sensors/internal/i2cplay"
	"periph.io/x/conn/v3/i2c/i2ctest"
	periph "periph.io/x/devices/v3/mcp9808"
)

// TestPeriphDriver records why this package does not wrap
// periph.io/x/devices/v3/mcp9808 (v3.7.4): its conversion gets every vector
// right, but its constructor writes the configuration register. If this test
// starts failing after a periph upgrade, revisit the choice in doc.go.
func TestPeriphDriver(t *testing.T) {
	for _, v := range vectors {
		bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
			{Addr: 0x18, W: []byte{0x08, 0x03}},       // resolution register ← 0.0625 °C
			{Addr: 0x18, W: []byte{0x01, 0x00, 0x00}}, // configuration register ← 0x0000, on every New
			{Addr: 0x18, W: []byte{0x05}, R: v.b[:]},  // ambient temperature register
		}}
		dev, err := periph.New(bus, &periph.Opts{Addr: 0x18, Res: periph.Maximum})
		if err != nil {
			t.Fatal(err)
		}
		got, err := dev.SenseTemp()
		if err != nil {
			t.Fatal(err)
		}
		if c := got.Celsius(); c != v.t {
			t.Errorf("periph: % X → %v °C, want %v", v.b, c, v.t)
		}
		if err := bus.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// A failed transfer loses its cause: no %w, so no way to see a NACK.
	bus := &i2cplay.NACKBus{Playback: i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x18, W: []byte{0x08, 0x03}},       // resolution register ← 0.0625 °C
		{Addr: 0x18, W: []byte{0x01, 0x00, 0x00}}, // configuration register ← 0x0000
	}}, NACK: map[int]bool{3: true}}
	dev, err := periph.New(bus, &periph.Opts{Addr: 0x18})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.SenseTemp(); err == nil || err.Error() != "failed to read ambient temperature" {
		t.Errorf("periph on NACK: %v", err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}
