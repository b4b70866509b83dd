package sht

import (
	"context"
	"errors"
	"fmt"
	"time"

	"periph.io/x/conn/v3/i2c"

	"github.com/kelvin-gw/kelvin/internal/ctxsleep"
	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/reading"
	"github.com/kelvin-gw/kelvin/sensors"
	"github.com/kelvin-gw/kelvin/sensors/internal/crc8"
)

// Opts configures a Dev. The zero value is not valid: Model is required.
type Opts struct {
	// Model is the chip family, "sht3x" or "sht4x". It has no default: the
	// two families share address 0x44 and a wrong guess sends the other
	// family's commands (see the package doc).
	Model string
	// Repeatability is one of Repeatabilities: "high" (the default when
	// empty), "medium" or "low";
	// lower repeatability measures faster and noisier.
	Repeatability string
}

// Dev is one SHT3x or SHT4x on an I²C bus. It is not safe for concurrent
// use: as sensors.Sensor says, one goroutine reads it at a time.
type Dev struct {
	bus    i2c.Bus
	addr   uint16
	prefix string // "sht: i2c 0x44"
	model  model
	now    func() time.Time

	measureCmd  []byte
	measureWait time.Duration
	resetCmd    []byte
	resetWait   time.Duration

	// sleep waits d or until ctx is done; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error

	needReset bool          // the last Read failed: soft-reset first
	settle    time.Duration // the last Read was cancelled mid-measurement: wait this first
}

var _ sensors.Sensor = (*Dev)(nil)

type model int

const (
	sht3x model = iota + 1
	sht4x
)

func (m model) String() string {
	if m == sht4x {
		return "sht4x"
	}
	return "sht3x"
}

// command returns the single-shot measurement command (no clock stretching)
// and its maximum duration for a model and repeatability, as tabled in the
// package doc.
func command(m model, rep string) (cmd []byte, wait time.Duration, ok bool) {
	switch {
	case m == sht3x && rep == "high":
		return []byte{0x24, 0x00}, 15500 * time.Microsecond, true
	case m == sht3x && rep == "medium":
		return []byte{0x24, 0x0B}, 6500 * time.Microsecond, true
	case m == sht3x && rep == "low":
		return []byte{0x24, 0x16}, 4500 * time.Microsecond, true
	case m == sht4x && rep == "high":
		return []byte{0xFD}, 8300 * time.Microsecond, true
	case m == sht4x && rep == "medium":
		return []byte{0xF6}, 4500 * time.Microsecond, true
	case m == sht4x && rep == "low":
		return []byte{0xE0}, 2 * time.Millisecond, true
	}
	return nil, 0, false
}

// reset returns the soft-reset command and the soft-reset time t_SR (max).
func reset(m model) (cmd []byte, wait time.Duration) {
	if m == sht4x {
		return []byte{0x94}, 1 * time.Millisecond
	}
	return []byte{0x30, 0xA2}, 1500 * time.Microsecond
}

const (
	// sht3xSerialWait is the minimal wait between a command and the read
	// header (the datasheet's "SCL free" block).
	sht3xSerialWait = 1 * time.Millisecond
	// sht4xSerialWait is the wait Sensirion's reference driver uses after
	// the serial-number command.
	sht4xSerialWait = 10 * time.Millisecond
)

// Repeatabilities lists the values of Opts.Repeatability, the default
// first; the config schema lists the same.
func Repeatabilities() []string { return []string{"high", "medium", "low"} }

// NewI2C returns a Dev for the sensor at addr on b. It validates opts and
// addr (SHT3x: 0x44, 0x45; SHT4x: 0x44, 0x45, 0x46) and does not touch the
// bus: a missing sensor shows up on the first Read. now stamps readings; nil
// means time.Now.
func NewI2C(b i2c.Bus, addr uint16, opts *Opts, now func() time.Time) (*Dev, error) {
	if b == nil {
		return nil, errors.New("sht: nil bus")
	}
	if opts == nil {
		return nil, errors.New(`sht: opts.Model is required ("sht3x" or "sht4x")`)
	}
	d := &Dev{bus: b, addr: addr, now: now, sleep: ctxsleep.Sleep, prefix: fmt.Sprintf("sht: i2c 0x%02x", addr)}
	switch opts.Model {
	case "sht3x":
		if addr != 0x44 && addr != 0x45 {
			return nil, fmt.Errorf("sht: address 0x%02x is not an SHT3x address (0x44, 0x45)", addr)
		}
		d.model = sht3x
	case "sht4x":
		if addr < 0x44 || addr > 0x46 {
			return nil, fmt.Errorf("sht: address 0x%02x is not an SHT4x address (0x44, 0x45, 0x46)", addr)
		}
		d.model = sht4x
	default:
		return nil, fmt.Errorf(`sht: unknown model %q (want "sht3x" or "sht4x")`, opts.Model)
	}
	rep := opts.Repeatability
	if rep == "" {
		rep = "high"
	}
	var ok bool
	if d.measureCmd, d.measureWait, ok = command(d.model, rep); !ok {
		return nil, fmt.Errorf(`sht: unknown repeatability %q (want "high", "medium" or "low")`, opts.Repeatability)
	}
	d.resetCmd, d.resetWait = reset(d.model)
	if d.now == nil {
		d.now = wallclock.Now
	}
	return d, nil
}

// String returns the driver, model and address, as "sht3x i2c 0x44".
func (d *Dev) String() string {
	return fmt.Sprintf("%s i2c 0x%02x", d.model, d.addr)
}

// Quantities returns the quantities a Read yields, in order: temperature
// (°C) and humidity (%RH). The slice is new on every call.
func Quantities() []string {
	return []string{reading.Temperature, reading.Humidity}
}

// Read performs one single-shot measurement and returns the temperature (°C)
// and the relative humidity (%RH), stamped with now(). It takes one
// measurement duration (at most 15.5 ms), plus the soft-reset time when the
// previous Read failed. When ctx is done first it returns ctx.Err() and no
// readings; the chip may still be measuring, and the next Read waits for
// that. Errors wrap sensors.ErrNoDevice, ErrCRC, ErrBadData or
// ErrOutOfRange.
func (d *Dev) Read(ctx context.Context) ([]reading.Reading, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if d.settle > 0 {
		if err := d.sleep(ctx, d.settle); err != nil {
			return nil, err
		}
		d.settle = 0
	}
	if d.needReset {
		if err := d.bus.Tx(d.addr, d.resetCmd, nil); err != nil {
			return nil, sensors.BusError(d.prefix, "soft reset", err)
		}
		d.needReset = false
		if err := d.sleep(ctx, d.resetWait); err != nil {
			d.settle = d.resetWait
			return nil, err
		}
	}
	if err := d.bus.Tx(d.addr, d.measureCmd, nil); err != nil {
		d.needReset = true
		return nil, sensors.BusError(d.prefix, "measure", err)
	}
	if err := d.sleep(ctx, d.measureWait); err != nil {
		d.settle = d.measureWait
		return nil, err
	}
	var buf [6]byte
	if err := d.bus.Tx(d.addr, nil, buf[:]); err != nil {
		d.needReset = true
		return nil, sensors.BusError(d.prefix, "read result", err)
	}
	t, rh, err := decode(d.model, buf)
	if err != nil {
		if !errors.Is(err, sensors.ErrOutOfRange) {
			d.needReset = true
		}
		return nil, fmt.Errorf("%s: %w", d.prefix, err)
	}
	ts := d.now()
	return []reading.Reading{
		{Quantity: reading.Temperature, Unit: reading.UnitOf(reading.Temperature), Value: t, Raw: t, Time: ts},
		{Quantity: reading.Humidity, Unit: reading.UnitOf(reading.Humidity), Value: rh, Raw: rh, Time: ts},
	}, nil
}

// Identify reports whether the device at addr answers like an SHT4x (serial
// number command 0x89) or an SHT3x (0x3780) with two CRC-valid words, and
// which: chip is "sht3x" or "sht4x", usable as Opts.Model. It tries the
// SHT4x first, so an SHT4x never receives SHT3x commands; an SHT3x ignores
// the lone 0x89 byte. It blocks about 12 ms and is meant for a bus scan, not
// for a running sensor.
func Identify(b i2c.Bus, addr uint16) (chip string, ok bool) {
	if serial(b, addr, []byte{0x89}, sht4xSerialWait) {
		return "sht4x", true
	}
	time.Sleep(sht3xSerialWait)
	if serial(b, addr, []byte{0x37, 0x80}, sht3xSerialWait) {
		return "sht3x", true
	}
	return "", false
}

// serial sends cmd, waits, reads 6 bytes and reports whether they are two
// CRC-valid words that are not both all-zero or all-ones.
func serial(b i2c.Bus, addr uint16, cmd []byte, wait time.Duration) bool {
	if b.Tx(addr, cmd, nil) != nil {
		return false
	}
	time.Sleep(wait)
	var r [6]byte
	if b.Tx(addr, nil, r[:]) != nil {
		return false
	}
	if crc8.Checksum(r[0], r[1]) != r[2] || crc8.Checksum(r[3], r[4]) != r[5] {
		return false
	}
	w := [4]byte{r[0], r[1], r[3], r[4]}
	return w != [4]byte{} && w != [4]byte{0xFF, 0xFF, 0xFF, 0xFF}
}
