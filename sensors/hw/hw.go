// Package hw opens the I²C buses and chips a config names, shares each bus
// between the chips on it, and scans for what is attached (`kelvin scan`).
// It is the only place that maps a sensor type to a driver package, so the
// agent never imports periph.
//
// Buses are the kernel's /dev/i2c-N, opened with periph's sysfs driver
// (plain I2C_RDWR transfers: SMBus-only adapters cannot work). Nothing is
// opened until a sensor is first read, so a missing bus makes that sensor
// faulty, not the agent fail.
package hw

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/host/v3/sysfs"

	"github.com/kelvin-gw/kelvin/reading"
	"github.com/kelvin-gw/kelvin/sensors"
	"github.com/kelvin-gw/kelvin/sensors/aht20"
	"github.com/kelvin-gw/kelvin/sensors/bmxx80"
	"github.com/kelvin-gw/kelvin/sensors/ds2482"
	"github.com/kelvin-gw/kelvin/sensors/mcp9808"
	"github.com/kelvin-gw/kelvin/sensors/sht"
	"github.com/kelvin-gw/kelvin/sensors/tmp102"
)

// Chip is an I²C chip type Kelvin supports: what the config check, the
// agent and `kelvin scan` need to know of it. Chips lists them all.
type Chip struct {
	Type       string   // the config's `type:`
	Addresses  []uint16 // the addresses the chip can have; the first is the default
	Quantities []string
	// Options lists the chip-specific config keys it takes.
	Options []string
	// MaxOversampling, when set, is below the options' largest
	// oversampling (16).
	MaxOversampling int
	// MinInterval is the shortest sensible read interval (conversion time).
	MinInterval time.Duration
	// Identified says whether `kelvin scan` can tell the chip from its ID
	// registers; the others are hinted at by address (UnknownHint).
	Identified bool
}

// family is one driver package: its chips, how to open one, and how
// `kelvin scan` recognises them (nil: they have no ID register).
type family struct {
	chips    []Chip
	open     func(bus i2c.Bus, n int, typ string, addr uint16, o Options, now func() time.Time) (sensors.Sensor, error)
	identify func(bus i2c.Bus, addr uint16) (chip string, ok bool)
}

// families is the one table of the I²C chip types, by driver package, in
// the order `kelvin scan` tries their ID registers. A new chip is an entry
// in its family's chips; a new driver package is one entry here.
var families = []family{
	{chips: []Chip{
		{Type: "bme280", Addresses: []uint16{0x76, 0x77}, Quantities: []string{reading.Temperature, reading.Pressure, reading.Humidity}, Options: []string{"oversampling", "iir_filter"}, MinInterval: 100 * time.Millisecond},
		{Type: "bmp280", Addresses: []uint16{0x76, 0x77}, Quantities: []string{reading.Temperature, reading.Pressure}, Options: []string{"oversampling", "iir_filter"}, MinInterval: 100 * time.Millisecond},
		{Type: "bmp180", Addresses: []uint16{0x77}, Quantities: []string{reading.Temperature, reading.Pressure}, Options: []string{"oversampling"}, MaxOversampling: 8, MinInterval: 100 * time.Millisecond},
	}, open: openBMxx80, identify: bmxx80.Identify},
	{chips: []Chip{
		{Type: "mcp9808", Addresses: []uint16{0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f}, Quantities: []string{reading.Temperature}, Options: []string{"resolution"}, MinInterval: 250 * time.Millisecond},
	}, open: func(bus i2c.Bus, _ int, _ string, addr uint16, o Options, now func() time.Time) (sensors.Sensor, error) {
		return mcp9808.NewI2C(bus, addr, &mcp9808.Opts{Resolution: o.Resolution}, now)
	}, identify: mcp9808.Identify},
	{chips: []Chip{
		{Type: "tmp102", Addresses: []uint16{0x48, 0x49, 0x4a, 0x4b}, Quantities: []string{reading.Temperature}, MinInterval: 100 * time.Millisecond},
		{Type: "lm75", Addresses: lm75Addresses, Quantities: []string{reading.Temperature}, MinInterval: 100 * time.Millisecond},
		{Type: "lm75a", Addresses: lm75Addresses, Quantities: []string{reading.Temperature}, MinInterval: 100 * time.Millisecond},
		{Type: "lm75b", Addresses: lm75Addresses, Quantities: []string{reading.Temperature}, MinInterval: 100 * time.Millisecond},
		{Type: "tmp75", Addresses: lm75Addresses, Quantities: []string{reading.Temperature}, MinInterval: 300 * time.Millisecond},
		{Type: "tmp105", Addresses: lm75Addresses, Quantities: []string{reading.Temperature}, MinInterval: 300 * time.Millisecond},
		{Type: "tmp175", Addresses: lm75Addresses, Quantities: []string{reading.Temperature}, MinInterval: 300 * time.Millisecond},
		{Type: "tmp275", Addresses: lm75Addresses, Quantities: []string{reading.Temperature}, MinInterval: 300 * time.Millisecond},
	}, open: func(bus i2c.Bus, _ int, typ string, addr uint16, _ Options, now func() time.Time) (sensors.Sensor, error) {
		return tmp102.NewI2C(bus, addr, &tmp102.Opts{Model: typ}, now)
	}},
	{chips: []Chip{
		{Type: "aht20", Addresses: []uint16{aht20.Addr}, Quantities: []string{reading.Temperature, reading.Humidity}, MinInterval: 100 * time.Millisecond},
	}, open: func(bus i2c.Bus, _ int, _ string, addr uint16, _ Options, now func() time.Time) (sensors.Sensor, error) {
		return aht20.NewI2C(bus, addr, &aht20.Opts{}, now)
	}, identify: aht20.Identify},
	{chips: []Chip{
		{Type: "sht3x", Addresses: []uint16{0x44, 0x45}, Quantities: []string{reading.Temperature, reading.Humidity}, Options: []string{"repeatability"}, MinInterval: 50 * time.Millisecond},
		{Type: "sht4x", Addresses: []uint16{0x44, 0x45, 0x46}, Quantities: []string{reading.Temperature, reading.Humidity}, Options: []string{"repeatability"}, MinInterval: 50 * time.Millisecond},
	}, open: func(bus i2c.Bus, _ int, typ string, addr uint16, o Options, now func() time.Time) (sensors.Sensor, error) {
		return sht.NewI2C(bus, addr, &sht.Opts{Model: typ, Repeatability: o.Repeatability}, now)
	}, identify: sht.Identify},
}

// Chips returns every supported I²C chip type, in the table's order. The
// slice is new on every call.
func Chips() []Chip {
	var out []Chip
	for _, f := range families {
		for _, c := range f.chips {
			c.Identified = f.identify != nil
			out = append(out, c)
		}
	}
	return out
}

// lm75Addresses are the LM75 class's addresses (pins A2–A0 tied low or high).
var lm75Addresses = []uint16{0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f}

// BridgeAddresses are the I²C addresses of a DS2482-100/-800 1-Wire bridge.
var BridgeAddresses = []uint16{0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f}

// Options are the chip options a config may set; zero means the chip's
// default.
type Options struct {
	Resolution    float64 // DS18B20: bits 9..12; MCP9808: °C step (0.0625..0.5)
	Oversampling  int     // Bosch: 1, 2, 4, 8, 16 for every quantity
	IIRFilter     int     // Bosch: 0, 2, 4, 8, 16
	Repeatability string  // Sensirion: high, medium, low
}

// ParseBus turns "1" or "/dev/i2c-1" into a bus number.
func ParseBus(s string) (int, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "/dev/i2c-")
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want an I²C bus number like 1 or /dev/i2c-1, got %q", s)
	}
	return n, nil
}

// ParseAddress turns "0x76" or "118" into a 7-bit I²C address.
func ParseAddress(s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 0, 16)
	if err != nil || n < 0x03 || n > 0x77 {
		return 0, fmt.Errorf("want a 7-bit I²C address like 0x76 (0x03..0x77), got %q", s)
	}
	return uint16(n), nil
}

// Buses opens each I²C bus once and shares it; periph's sysfs bus
// serialises transfers. Safe for concurrent use.
type Buses struct {
	mu    sync.Mutex
	buses map[int]i2c.BusCloser
	open  func(n int) (i2c.BusCloser, error)
}

// NewBuses returns a bus set that opens /dev/i2c-N on first use.
func NewBuses() *Buses {
	return &Buses{buses: map[int]i2c.BusCloser{}, open: openSysfs}
}

func openSysfs(n int) (i2c.BusCloser, error) {
	b, err := sysfs.NewI2C(n)
	if err != nil {
		return nil, busError(n, err)
	}
	return b, nil
}

// busError explains the usual reasons a bus does not open.
func busError(n int, err error) error {
	dev := fmt.Sprintf("/dev/i2c-%d", n)
	msg := err.Error()
	switch {
	case errors.Is(err, fs.ErrPermission) || strings.Contains(msg, "permission denied"):
		return fmt.Errorf("i2c: %s: permission denied: add the user to group i2c (sudo usermod -aG i2c $USER): %w", dev, sensors.ErrNoDevice)
	case errors.Is(err, fs.ErrNotExist) || strings.Contains(msg, "no such file"):
		return fmt.Errorf("i2c: %s does not exist: enable I²C (dtparam=i2c_arm=on in config.txt, or raspi-config) and load i2c-dev: %w", dev, sensors.ErrNoDevice)
	}
	return fmt.Errorf("i2c: %s: %v: %w", dev, err, sensors.ErrNoDevice)
}

// Get returns bus n, opening it on first use.
func (b *Buses) Get(n int) (i2c.Bus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bus, ok := b.buses[n]; ok {
		return bus, nil
	}
	bus, err := b.open(n)
	if err != nil {
		return nil, err
	}
	b.buses[n] = bus
	return bus, nil
}

// Close closes every bus opened.
func (b *Buses) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for n, bus := range b.buses {
		errs = append(errs, bus.Close())
		delete(b.buses, n)
	}
	return errors.Join(errs...)
}

// OpenChip opens an I²C chip of a type in Chips at addr on bus n.
func (b *Buses) OpenChip(typ string, n int, addr uint16, o Options, now func() time.Time) (sensors.Sensor, error) {
	for _, f := range families {
		for _, c := range f.chips {
			if c.Type != typ {
				continue
			}
			bus, err := b.Get(n)
			if err != nil {
				return nil, err
			}
			s, err := f.open(bus, n, typ, addr, o, now)
			if err != nil {
				return nil, err
			}
			return s, nil
		}
	}
	return nil, fmt.Errorf("hw: unknown chip type %q", typ)
}

// openBMxx80 opens a Bosch chip and checks that it is the one the config
// names: the three share addresses and a driver.
func openBMxx80(bus i2c.Bus, n int, typ string, addr uint16, o Options, now func() time.Time) (sensors.Sensor, error) {
	opts := &bmxx80.Opts{Temperature: o.Oversampling, Pressure: o.Oversampling, Filter: o.IIRFilter}
	switch typ {
	case "bme280":
		opts.Humidity = o.Oversampling
	case "bmp180":
		opts.Temperature = 0 // a BMP180 oversamples pressure only
	}
	d, err := bmxx80.NewI2C(bus, addr, opts, now)
	if err != nil {
		return nil, err
	}
	if d.Chip() != typ {
		return nil, fmt.Errorf("i2c-%d 0x%02x: found a %s where the config says %s: %w", n, addr, d.Chip(), typ, sensors.ErrNoDevice)
	}
	return d, nil
}

// OpenBridge opens a DS2482 1-Wire bridge at addr on bus n that reads the
// given DS18B20-family devices in one bulk conversion. Its readings carry
// the device name in Reading.Sensor.
func (b *Buses) OpenBridge(n int, addr uint16, devices []string, resolution int, now func() time.Time) (sensors.Sensor, error) {
	bus, err := b.Get(n)
	if err != nil {
		return nil, err
	}
	return ds2482.NewI2C(bus, addr, devices, &ds2482.Opts{Resolution: resolution}, now)
}
