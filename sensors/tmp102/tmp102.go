package tmp102

import (
	"context"
	"errors"
	"fmt"
	"time"

	"periph.io/x/conn/v3/i2c"

	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/reading"
	"github.com/kelvin-gw/kelvin/sensors"
)

// Registers and configuration bits.
const (
	regTemp   = 0x00
	regConfig = 0x01

	tmp102SD = 0x0100 // shutdown, 16-bit configuration
	tmp102EM = 0x0010 // extended mode, 16-bit configuration
	tmp102OS = 0x8000 // one-shot: written as 0
	lm75SD   = 0x01   // shutdown, 8-bit configuration
	lm75OS   = 0x80   // TMP75 one-shot, reserved on the LM75: written as 0
)

// Opts configures a Dev. A nil *Opts means the defaults.
type Opts struct {
	// Model is "tmp102" (the default when empty) or "lm75" for the LM75
	// class (LM75, LM75A/B, TMP75, TMP175, TMP275).
	Model string
	// Extended, for the TMP102 only, sets the EM bit at construction: 13-bit
	// format, up to 150 °C. The default, false, selects normal mode (12-bit,
	// up to 127.9375 °C), the chip's power-on mode, clearing EM if it is set.
	Extended bool
}

// Dev is one TMP102 or LM75-class sensor on an I²C bus. It is not safe for
// concurrent use: as sensors.Sensor says, one goroutine reads it at a time.
type Dev struct {
	bus      i2c.Bus
	addr     uint16
	prefix   string // "tmp102: i2c 0x48"
	lm75     bool
	extended bool
	now      func() time.Time
	convTime time.Duration

	// sleep waits d or until ctx is done; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error

	reconfigure bool          // the last Read failed: check the configuration first
	settle      time.Duration // wait this before reading the temperature register
}

var _ sensors.Sensor = (*Dev)(nil)

// NewI2C returns a Dev for the sensor at addr on b (TMP102: 0x48–0x4B; LM75
// class: 0x48–0x4F). It touches the bus: it reads the configuration register
// and writes it back only to clear the shutdown bit or, on a TMP102, to set
// EM as opts.Extended says (see the package doc); after such a write the
// first Read waits one conversion time. A missing chip fails with an error
// wrapping sensors.ErrNoDevice. now stamps readings; nil means wallclock.Now.
func NewI2C(b i2c.Bus, addr uint16, opts *Opts, now func() time.Time) (*Dev, error) {
	if b == nil {
		return nil, errors.New("tmp102: nil bus")
	}
	if opts == nil {
		opts = &Opts{}
	}
	if now == nil {
		now = wallclock.Now
	}
	d := &Dev{bus: b, addr: addr, now: now, sleep: sleepCtx, prefix: fmt.Sprintf("tmp102: i2c 0x%02x", addr)}
	switch opts.Model {
	case "", "tmp102":
		if addr < 0x48 || addr > 0x4B {
			return nil, fmt.Errorf("tmp102: address 0x%02x outside 0x48–0x4b", addr)
		}
		d.extended = opts.Extended
		d.convTime = 35 * time.Millisecond
	case "lm75":
		if addr < 0x48 || addr > 0x4F {
			return nil, fmt.Errorf("tmp102: address 0x%02x outside 0x48–0x4f", addr)
		}
		if opts.Extended {
			return nil, errors.New("tmp102: extended mode is a TMP102 feature, not available on model lm75")
		}
		d.lm75 = true
		d.convTime = 300 * time.Millisecond
	default:
		return nil, fmt.Errorf(`tmp102: unknown model %q (want "tmp102" or "lm75")`, opts.Model)
	}
	wrote, err := d.configure()
	if err != nil {
		return nil, err
	}
	if wrote {
		d.settle = d.convTime
	}
	return d, nil
}

// configure reads the configuration register and writes it back when the
// chip is shut down or, on a TMP102, its EM bit differs from d.extended.
func (d *Dev) configure() (wrote bool, err error) {
	if d.lm75 {
		var r [1]byte
		if err := d.bus.Tx(d.addr, []byte{regConfig}, r[:]); err != nil {
			return false, d.busErr("read config", err)
		}
		if r[0]&lm75SD == 0 {
			return false, nil
		}
		if err := d.bus.Tx(d.addr, []byte{regConfig, r[0] &^ (lm75SD | lm75OS)}, nil); err != nil {
			return false, d.busErr("write config", err)
		}
		return true, nil
	}
	var r [2]byte
	if err := d.bus.Tx(d.addr, []byte{regConfig}, r[:]); err != nil {
		return false, d.busErr("read config", err)
	}
	cfg := uint16(r[0])<<8 | uint16(r[1])
	want := cfg &^ (tmp102SD | tmp102OS | tmp102EM)
	if d.extended {
		want |= tmp102EM
	}
	if want == cfg&^tmp102OS {
		return false, nil
	}
	if err := d.bus.Tx(d.addr, []byte{regConfig, byte(want >> 8), byte(want)}, nil); err != nil {
		return false, d.busErr("write config", err)
	}
	return true, nil
}

// String returns the driver, model and address, as "tmp102 i2c 0x48".
func (d *Dev) String() string {
	m := "tmp102"
	if d.lm75 {
		m = "lm75"
	}
	return fmt.Sprintf("%s i2c 0x%02x", m, d.addr)
}

// Quantities returns the quantities a Read yields: temperature (°C). The
// slice is new on every call.
func Quantities() []string {
	return []string{reading.Temperature}
}

// Read returns the temperature (°C) stamped with now(). It usually takes one
// register read; after construction changed the configuration, or after a
// failed Read, it first waits one conversion time (35 ms on a TMP102, 300 ms
// on the LM75 class). When ctx is done first it returns ctx.Err() and no
// reading. Errors wrap sensors.ErrNoDevice, ErrBadData or ErrOutOfRange.
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
	if err := d.bus.Tx(d.addr, []byte{regTemp}, r[:]); err != nil {
		d.reconfigure = true
		return nil, d.busErr("read temperature", err)
	}
	t, err := decode(d.lm75, r)
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

// busErr wraps a failed transfer as sensors.ErrNoDevice, keeping the bus's
// own error.
func (d *Dev) busErr(op string, err error) error {
	return fmt.Errorf("%s: %s: %w: %w", d.prefix, op, sensors.ErrNoDevice, err)
}

// Identify always reports false without touching the bus: the TMP102 and
// the LM75 class have no identification register, so a scan reports a
// device at their addresses as "unknown".
func Identify(b i2c.Bus, addr uint16) (chip string, ok bool) {
	return "", false
}

// sleepCtx waits d, or until ctx is done and then returns ctx.Err().
func sleepCtx(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
