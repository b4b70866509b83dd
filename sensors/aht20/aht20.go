package aht20

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

// Addr is the AHT20's only I²C address.
const Addr = 0x38

// Commands, status bits and timings (see the package doc).
const (
	cmdStatus    = 0x71
	cmdSoftReset = 0xBA

	statusBusy       = 0x80
	statusCalibrated = 0x08

	measureWait = 80 * time.Millisecond
	pollWait    = 10 * time.Millisecond
	maxPolls    = 5
	initWait    = 10 * time.Millisecond
	resetWait   = 20 * time.Millisecond
)

func cmdMeasure() []byte { return []byte{0xAC, 0x33, 0x00} }
func cmdInit() []byte    { return []byte{0xBE, 0x08, 0x00} }

// Opts configures a Dev. The AHT20 has nothing to configure yet; a nil *Opts
// is fine.
type Opts struct{}

// Dev is one AHT20 on an I²C bus. It is not safe for concurrent use: as
// sensors.Sensor says, one goroutine reads it at a time.
type Dev struct {
	bus    i2c.Bus
	addr   uint16
	prefix string // "aht20: i2c 0x38"
	now    func() time.Time

	// sleep waits d or until ctx is done; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error

	checked   bool          // the calibration bit was checked since start or reset
	needReset bool          // the last Read failed: soft-reset first
	settle    time.Duration // the last Read was cancelled mid-measurement: wait this first
}

var _ sensors.Sensor = (*Dev)(nil)

// NewI2C returns a Dev for the sensor at addr (which must be 0x38) on b. It
// does not touch the bus: the first Read checks the calibration bit and
// initialises the sensor when needed, and a missing sensor shows up there.
// opts may be nil. now stamps readings; nil means wallclock.Now.
func NewI2C(b i2c.Bus, addr uint16, opts *Opts, now func() time.Time) (*Dev, error) {
	if b == nil {
		return nil, errors.New("aht20: nil bus")
	}
	if addr != Addr {
		return nil, fmt.Errorf("aht20: address 0x%02x is not the AHT20's 0x38", addr)
	}
	if now == nil {
		now = wallclock.Now
	}
	return &Dev{bus: b, addr: addr, now: now, sleep: ctxsleep.Sleep, prefix: fmt.Sprintf("aht20: i2c 0x%02x", addr)}, nil
}

// String returns the driver and address, as "aht20 i2c 0x38".
func (d *Dev) String() string {
	return fmt.Sprintf("aht20 i2c 0x%02x", d.addr)
}

// Quantities returns the quantities a Read yields, in order: temperature
// (°C) and humidity (%RH). The slice is new on every call.
func Quantities() []string {
	return []string{reading.Temperature, reading.Humidity}
}

// Read triggers one measurement and returns the temperature (°C) and the
// relative humidity (%RH), stamped with now(). It takes 80 ms, up to 130 ms
// while the sensor reports busy, plus 20 ms (soft reset) and 10 ms
// (initialisation) after a failure. When ctx is done first it returns
// ctx.Err() and no readings; the sensor may still be measuring, and the next
// Read waits for that. Errors wrap sensors.ErrNoDevice, ErrCRC, ErrBadData or
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
		if err := d.bus.Tx(d.addr, []byte{cmdSoftReset}, nil); err != nil {
			return nil, sensors.BusError(d.prefix, "soft reset", err)
		}
		d.needReset, d.checked = false, false
		if err := d.sleep(ctx, resetWait); err != nil {
			d.settle = resetWait
			return nil, err
		}
	}
	if !d.checked {
		if err := d.calibrate(ctx); err != nil {
			return nil, err
		}
	}
	if err := d.bus.Tx(d.addr, cmdMeasure(), nil); err != nil {
		d.needReset = true
		return nil, sensors.BusError(d.prefix, "trigger measurement", err)
	}
	wait := measureWait
	var buf [7]byte
	for polls := 0; ; polls++ {
		if err := d.sleep(ctx, wait); err != nil {
			d.settle = measureWait
			return nil, err
		}
		if err := d.bus.Tx(d.addr, nil, buf[:]); err != nil {
			d.needReset = true
			return nil, sensors.BusError(d.prefix, "read measurement", err)
		}
		if buf[0]&statusBusy == 0 || buf[0] == 0xFF || polls == maxPolls {
			break
		}
		wait = pollWait
	}
	t, rh, err := decode(buf)
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

// calibrate reads the status byte and sends the initialisation command when
// the calibration bit is clear.
func (d *Dev) calibrate(ctx context.Context) error {
	var st [1]byte
	if err := d.bus.Tx(d.addr, []byte{cmdStatus}, st[:]); err != nil {
		d.needReset = true
		return sensors.BusError(d.prefix, "read status", err)
	}
	if st[0] == 0xFF {
		d.needReset = true
		return fmt.Errorf("%s: %w: status byte is 0xFF", d.prefix, sensors.ErrBadData)
	}
	if st[0]&statusCalibrated == 0 {
		if err := d.bus.Tx(d.addr, cmdInit(), nil); err != nil {
			d.needReset = true
			return sensors.BusError(d.prefix, "initialise", err)
		}
		if err := d.sleep(ctx, initWait); err != nil {
			d.settle = initWait
			return err
		}
	}
	d.checked = true
	return nil
}

// Identify reports whether the device at addr looks like an AHT20: address
// 0x38 and a status byte (command 0x71) with the calibration bit set, the
// busy bit clear and not 0xFF. It writes only the status command; other
// chips at 0x38 can fool it (see the package doc). chip is "aht20".
func Identify(b i2c.Bus, addr uint16) (chip string, ok bool) {
	if addr != Addr {
		return "", false
	}
	var st [1]byte
	if b.Tx(addr, []byte{cmdStatus}, st[:]) != nil {
		return "", false
	}
	if st[0] == 0xFF || st[0]&statusBusy != 0 || st[0]&statusCalibrated == 0 {
		return "", false
	}
	return "aht20", true
}
