package mcp9808

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
)

// Registers.
const (
	regConfig     = 0x01
	regAmbient    = 0x05
	regManufID    = 0x06
	regDeviceID   = 0x07
	regResolution = 0x08

	configShutdown = 0x0100 // SHDN, bit 8 of the configuration register
)

// Opts configures a Dev. A nil *Opts means the defaults.
type Opts struct {
	// Resolution is the step in °C: 0.5, 0.25, 0.125 or 0.0625 (the default
	// when 0). Coarser steps convert faster (30/65/130/250 ms).
	Resolution float64
}

// Dev is one MCP9808 on an I²C bus. It is not safe for concurrent use: as
// sensors.Sensor says, one goroutine reads it at a time.
type Dev struct {
	bus    i2c.Bus
	addr   uint16
	prefix string // "mcp9808: i2c 0x18"
	now    func() time.Time

	resCode  byte          // register 0x08 value
	convTime time.Duration // conversion time at resCode

	// sleep waits d or until ctx is done; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error

	reconfigure bool          // the last Read failed: configure again first
	settle      time.Duration // wait this before reading the ambient register
}

var _ sensors.Sensor = (*Dev)(nil)

// resolution returns the register 0x08 code and the typical conversion time
// for a step in °C.
func resolution(step float64) (code byte, conv time.Duration, ok bool) {
	switch step {
	case 0.5:
		return 0x00, 30 * time.Millisecond, true
	case 0.25:
		return 0x01, 65 * time.Millisecond, true
	case 0.125:
		return 0x02, 130 * time.Millisecond, true
	case 0, 0.0625:
		return 0x03, 250 * time.Millisecond, true
	}
	return 0, 0, false
}

// NewI2C returns a Dev for the sensor at addr (0x18–0x1F) on b. It touches
// the bus: it writes the resolution register (0x08), reads the configuration
// register (0x01) and, only when the chip is shut down, clears the shutdown
// bit and keeps every other bit; the first Read then waits one conversion
// time. A missing chip fails with an error wrapping sensors.ErrNoDevice.
// now stamps readings; nil means wallclock.Now.
func NewI2C(b i2c.Bus, addr uint16, opts *Opts, now func() time.Time) (*Dev, error) {
	if b == nil {
		return nil, errors.New("mcp9808: nil bus")
	}
	if addr < 0x18 || addr > 0x1F {
		return nil, fmt.Errorf("mcp9808: address 0x%02x outside 0x18–0x1f", addr)
	}
	if opts == nil {
		opts = &Opts{}
	}
	code, conv, ok := resolution(opts.Resolution)
	if !ok {
		return nil, fmt.Errorf("mcp9808: resolution %v °C not one of 0.5, 0.25, 0.125, 0.0625", opts.Resolution)
	}
	if now == nil {
		now = wallclock.Now
	}
	d := &Dev{
		bus: b, addr: addr, now: now, sleep: ctxsleep.Sleep,
		prefix:  fmt.Sprintf("mcp9808: i2c 0x%02x", addr),
		resCode: code, convTime: conv,
	}
	woke, err := d.configure()
	if err != nil {
		return nil, err
	}
	if woke {
		d.settle = d.convTime
	}
	return d, nil
}

// configure writes the resolution and clears the shutdown bit when it is
// set; woke reports whether it had to.
func (d *Dev) configure() (woke bool, err error) {
	if err := d.bus.Tx(d.addr, []byte{regResolution, d.resCode}, nil); err != nil {
		return false, sensors.BusError(d.prefix, "write resolution", err)
	}
	var r [2]byte
	if err := d.bus.Tx(d.addr, []byte{regConfig}, r[:]); err != nil {
		return false, sensors.BusError(d.prefix, "read config", err)
	}
	cfg := uint16(r[0])<<8 | uint16(r[1])
	if cfg&configShutdown == 0 {
		return false, nil
	}
	cfg &^= configShutdown
	if err := d.bus.Tx(d.addr, []byte{regConfig, byte(cfg >> 8), byte(cfg)}, nil); err != nil {
		return false, sensors.BusError(d.prefix, "write config", err)
	}
	return true, nil
}

// String returns the driver and address, as "mcp9808 i2c 0x18".
func (d *Dev) String() string {
	return fmt.Sprintf("mcp9808 i2c 0x%02x", d.addr)
}

// Quantities returns the quantities a Read yields: temperature (°C). The
// slice is new on every call.
func Quantities() []string {
	return []string{reading.Temperature}
}

// Read returns the ambient temperature (°C) stamped with now(). It usually
// takes one register read; after construction woke the chip, or after a
// failed Read, it first waits one conversion time (at most 250 ms). When ctx
// is done first it returns ctx.Err() and no reading. Errors wrap
// sensors.ErrNoDevice, ErrBadData or ErrOutOfRange.
func (d *Dev) Read(ctx context.Context) ([]reading.Reading, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if d.reconfigure {
		if _, err := d.configure(); err != nil {
			return nil, err
		}
		d.reconfigure = false
		d.settle = d.convTime
	}
	if d.settle > 0 {
		if err := d.sleep(ctx, d.settle); err != nil {
			return nil, err
		}
		d.settle = 0
	}
	var r [2]byte
	if err := d.bus.Tx(d.addr, []byte{regAmbient}, r[:]); err != nil {
		d.reconfigure = true
		return nil, sensors.BusError(d.prefix, "read ambient temperature", err)
	}
	t, err := decode(r)
	if err != nil {
		if !errors.Is(err, sensors.ErrOutOfRange) {
			d.reconfigure = true
		}
		return nil, fmt.Errorf("%s: %w", d.prefix, err)
	}
	return []reading.Reading{
		{Quantity: reading.Temperature, Unit: reading.UnitOf(reading.Temperature), Value: t, Raw: t, Time: d.now()},
	}, nil
}

// Identify reports whether the device at addr is an MCP9808: manufacturer
// ID (register 0x06) 0x0054 and device ID (register 0x07) upper byte 0x04.
// It only reads, and only at 0x18–0x1F; chip is "mcp9808".
func Identify(b i2c.Bus, addr uint16) (chip string, ok bool) {
	if addr < 0x18 || addr > 0x1F {
		return "", false
	}
	var r [2]byte
	if b.Tx(addr, []byte{regManufID}, r[:]) != nil || r != [2]byte{0x00, 0x54} {
		return "", false
	}
	if b.Tx(addr, []byte{regDeviceID}, r[:]) != nil || r[0] != 0x04 {
		return "", false
	}
	return "mcp9808", true
}
