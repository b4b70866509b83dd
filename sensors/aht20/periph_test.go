package aht20

import (
	"math"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"
	periph "periph.io/x/devices/v3/aht20"
)

// TestPeriphDriver records why this package does not wrap
// periph.io/x/devices/v3/aht20 (v3.7.4): it converts correctly and checks
// the CRC by default, but its zero Opts turns the CRC check off, and Sense
// sleeps 80 ms with no way to cancel it (each Sense here takes that long).
// If this test starts failing after a periph upgrade, revisit the choice in
// doc.go.
func TestPeriphDriver(t *testing.T) {
	sense := func(t *testing.T, opts *periph.Opts, frame []byte) (physic.Env, error) {
		t.Helper()
		bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
			{Addr: 0x38, W: []byte{0x71}, R: []byte{0x18}}, // status: calibrated
			{Addr: 0x38, W: []byte{0xAC, 0x33, 0x00}},      // trigger measurement
			{Addr: 0x38, R: frame},                         // measurement frame
		}}
		dev, err := periph.NewI2C(bus, opts)
		if err != nil {
			t.Fatal(err)
		}
		var e physic.Env
		err = dev.Sense(&e)
		if cerr := bus.Close(); cerr != nil {
			t.Fatal(cerr)
		}
		return e, err
	}

	// Default options: the conversion agrees with ours (to periph's
	// nanokelvin and 0.0001 %RH steps).
	e, err := sense(t, nil, frame30)
	if err != nil {
		t.Fatal(err)
	}
	if c := e.Temperature.Celsius(); math.Abs(c-29.9999237060546875) > 1e-6 {
		t.Errorf("periph: T = %v, want 29.9999237", c)
	}
	if rh := float64(e.Humidity) / float64(physic.PercentRH); rh != 50 {
		t.Errorf("periph: RH = %v, want 50", rh)
	}
	// Default options: a bad CRC is rejected.
	bad := []byte{0x1C, 0x80, 0x00, 0x06, 0x66, 0x66, 0x00}
	if _, err := sense(t, nil, bad); err == nil {
		t.Error("periph with default options accepted a bad CRC")
	}
	// Options given without ValidateData: the same corrupt frame becomes a
	// reading.
	e, err = sense(t, &periph.Opts{MeasurementReadTimeout: 150 * time.Millisecond}, bad)
	if err != nil || e.Temperature == 0 {
		t.Errorf("periph with Opts{} on a bad CRC: %v, %v; its known behaviour is to return the number", e, err)
	}
}
