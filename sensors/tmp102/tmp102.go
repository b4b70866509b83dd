package tmp102

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"periph.io/x/conn/v3/i2c"

	"github.com/kelvin-gw/kelvin/internal/ctxsleep"
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
	lm75R    = 0x60   // TMP75 class R1 R0: 00 9 bits … 11 12 bits
)

// tmp75Conv is the TMP75 class's longest conversion at 9, 10, 11 and 12
// bits (R1 R0 = 00 … 11; TMP75/TMP175 datasheet SBOS288, Electrical
// Characteristics: 27.5/55/110/220 ms typical).
var tmp75Conv = [4]time.Duration{37500 * time.Microsecond, 75 * time.Millisecond, 150 * time.Millisecond, 300 * time.Millisecond}

// model is one part this package drives: its configuration register, the
// resolution it is read at and the longest conversion there.
type model struct {
	lm75    bool          // 8-bit LM75-layout configuration register
	bits    int           // LM75 class: resolution read, 9, 11 or 12 bits; 0 for the TMP102
	setRes  bool          // R1 R0 select 9–12 bits: set to 12 (TMP75 class)
	conv    time.Duration // longest conversion at that resolution (datasheet maximum)
	maxAddr uint16        // addresses 0x48…maxAddr
}

// models are the parts by config name; see the package doc for each.
var models = map[string]model{
	"tmp102": {conv: 35 * time.Millisecond, maxAddr: 0x4B},
	"tmp75":  {lm75: true, bits: 12, setRes: true, conv: tmp75Conv[3], maxAddr: 0x4F},
	"tmp175": {lm75: true, bits: 12, setRes: true, conv: tmp75Conv[3], maxAddr: 0x4F},
	"tmp275": {lm75: true, bits: 12, setRes: true, conv: tmp75Conv[3], maxAddr: 0x4F},
	"tmp105": {lm75: true, bits: 12, setRes: true, conv: tmp75Conv[3], maxAddr: 0x4F},
	"lm75":   {lm75: true, bits: 9, conv: 300 * time.Millisecond, maxAddr: 0x4F},
	"lm75a":  {lm75: true, bits: 11, conv: 100 * time.Millisecond, maxAddr: 0x4F},
	"lm75b":  {lm75: true, bits: 11, conv: 100 * time.Millisecond, maxAddr: 0x4F},
}

// Models returns the model names Opts.Model accepts, sorted. The slice is
// new on every call.
func Models() []string {
	return slices.Sorted(maps.Keys(models))
}

// Opts configures a Dev. A nil *Opts means the defaults.
type Opts struct {
	// Model is the part: "tmp102" (the default when empty); "tmp75",
	// "tmp175", "tmp275" or "tmp105", set to 12 bits (0.0625 °C); "lm75",
	// the original 9-bit (0.5 °C) part; "lm75a" or "lm75b", NXP's 11-bit
	// (0.125 °C) parts. See the package doc.
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
	name     string // the model, "tmp102"
	m        model
	prefix   string // "tmp102: i2c 0x48"
	extended bool
	now      func() time.Time

	// sleep waits d or until ctx is done; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error

	reconfigure bool          // the last Read failed: check the configuration first
	settle      time.Duration // wait this before reading the temperature register
}

var _ sensors.Sensor = (*Dev)(nil)

// NewI2C returns a Dev for the sensor at addr on b (TMP102: 0x48–0x4B; LM75
// class: 0x48–0x4F). It touches the bus: it reads the configuration register
// and writes it back only to clear the shutdown bit, to set a TMP75-class
// part to 12 bits or, on a TMP102, to set EM as opts.Extended says (see the
// package doc); after such a write the first Read waits for a conversion at
// the new setting. A missing chip fails with an error wrapping
// sensors.ErrNoDevice. now stamps readings; nil means wallclock.Now.
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
	name := opts.Model
	if name == "" {
		name = "tmp102"
	}
	m, ok := models[name]
	if !ok {
		return nil, fmt.Errorf("tmp102: unknown model %q (want one of %s)", opts.Model, strings.Join(Models(), ", "))
	}
	if addr < 0x48 || addr > m.maxAddr {
		return nil, fmt.Errorf("tmp102: address 0x%02x outside 0x48–0x%02x", addr, m.maxAddr)
	}
	if opts.Extended && m.lm75 {
		return nil, fmt.Errorf("tmp102: extended mode is a TMP102 feature, not available on model %s", name)
	}
	d := &Dev{bus: b, addr: addr, name: name, m: m, extended: opts.Extended, now: now, sleep: ctxsleep.Sleep,
		prefix: fmt.Sprintf("tmp102: i2c 0x%02x", addr)}
	settle, err := d.configure()
	if err != nil {
		return nil, err
	}
	d.settle = settle
	return d, nil
}

// configure reads the configuration register and writes it back when the
// chip is shut down, a TMP75-class part is not at 12 bits, or a TMP102's EM
// bit differs from d.extended. It returns how long to wait before the
// temperature register holds a result of the new setting: zero when it wrote
// nothing.
func (d *Dev) configure() (settle time.Duration, err error) {
	if d.m.lm75 {
		var r [1]byte
		if err := d.bus.Tx(d.addr, []byte{regConfig}, r[:]); err != nil {
			return 0, sensors.BusError(d.prefix, "read config", err)
		}
		cfg := r[0]
		want := cfg &^ (lm75SD | lm75OS)
		if d.m.setRes {
			want |= lm75R
		}
		if want == cfg&^lm75OS {
			return 0, nil
		}
		if err := d.bus.Tx(d.addr, []byte{regConfig, want}, nil); err != nil {
			return 0, sensors.BusError(d.prefix, "write config", err)
		}
		settle = d.m.conv
		if d.m.setRes && cfg&lm75SD == 0 {
			// A running chip first finishes the conversion under way,
			// at the old resolution.
			settle += tmp75Conv[(cfg&lm75R)>>5]
		}
		return settle, nil
	}
	var r [2]byte
	if err := d.bus.Tx(d.addr, []byte{regConfig}, r[:]); err != nil {
		return 0, sensors.BusError(d.prefix, "read config", err)
	}
	cfg := uint16(r[0])<<8 | uint16(r[1])
	want := cfg &^ (tmp102SD | tmp102OS | tmp102EM)
	if d.extended {
		want |= tmp102EM
	}
	if want == cfg&^tmp102OS {
		return 0, nil
	}
	if err := d.bus.Tx(d.addr, []byte{regConfig, byte(want >> 8), byte(want)}, nil); err != nil {
		return 0, sensors.BusError(d.prefix, "write config", err)
	}
	return d.m.conv, nil
}

// String returns the model and address, as "tmp75 i2c 0x48".
func (d *Dev) String() string {
	return fmt.Sprintf("%s i2c 0x%02x", d.name, d.addr)
}

// Quantities returns the quantities a Read yields: temperature (°C). The
// slice is new on every call.
func Quantities() []string {
	return []string{reading.Temperature}
}

// Read returns the temperature (°C) stamped with now(). It usually takes one
// register read; after construction changed the configuration, or after a
// failed Read, it first waits for a conversion (see the package doc: 35 ms on
// a TMP102, up to 337.5 ms on a TMP75 class part just set to 12 bits). When
// ctx is done first it returns ctx.Err() and no reading. Errors wrap
// sensors.ErrNoDevice, ErrBadData or ErrOutOfRange.
func (d *Dev) Read(ctx context.Context) ([]reading.Reading, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if d.reconfigure {
		settle, err := d.configure()
		if err != nil {
			return nil, err
		}
		d.reconfigure = false
		d.settle = max(settle, d.m.conv)
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
		return nil, sensors.BusError(d.prefix, "read temperature", err)
	}
	t, err := decode(d.m.bits, r)
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

// Identify always reports false without touching the bus: the TMP102 and
// the LM75 class have no identification register, so a scan reports a
// device at their addresses as "unknown".
func Identify(b i2c.Bus, addr uint16) (chip string, ok bool) {
	return "", false
}
