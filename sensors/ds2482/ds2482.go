package ds2482

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/onewire"
	"periph.io/x/devices/v3/ds248x"

	"github.com/kelvin-gw/kelvin/internal/ctxsleep"
	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/reading"
	"github.com/kelvin-gw/kelvin/sensors"
)

// 1-Wire commands (DS18B20 datasheet table "DS18B20 Function Command Set").
const (
	cmdSkipROM        = 0xCC
	cmdConvertT       = 0x44
	cmdReadScratchpad = 0xBE
	cmdWriteScratch   = 0x4E
)

// DS2482 commands (DS2482-100/-800 datasheets) used by Identify.
const (
	cmdDeviceReset = 0xF0 // then the read pointer is on the status register
	cmdSetReadPtr  = 0xE1
	regPortConfig  = 0xB4 // DS2483 only
	regChannelSel  = 0xD2 // DS2482-800 only
	statusRST      = 0x10 // status: device reset happened
	statusLL       = 0x08 // status: 1-Wire line level
)

// convDS18S20 is the DS18S20's conversion time; it has no resolution
// setting.
const convDS18S20 = 750 * time.Millisecond

// Opts configures a Bus. The zero value (or a nil *Opts) is the default.
type Opts struct {
	// Resolution is the DS18B20-family resolution in bits, 9..12; 0 means
	// the default, 12. A conversion takes at most 93.75, 187.5, 375 or
	// 750 ms at 9, 10, 11 or 12 bits (0.5, 0.25, 0.125, 0.0625 °C).
	// DS18S20s (family 10) ignore it and take 750 ms.
	Resolution int
}

// Bus is one DS2482 bridge with its DS18B20-family devices; one Read starts
// ONE conversion on the whole bus (Convert T to all: skip ROM 0xCC, then
// 0x44, with the strong pull-up on for parasite-powered devices) and reads
// every configured device after a single conversion time: N sensors in about
// one conversion time instead of N. It implements sensors.Sensor. A Bus is
// safe for concurrent use; calls are serialized.
type Bus struct {
	prefix string                      // "ds2482: i2c 0x18"
	open   func() (onewire.Bus, error) // (re)initializes the bridge
	ow     onewire.Bus                 // nil after a bridge failure
	devs   []*device                   // in configuration order
	cfg    byte                        // configuration register to write
	conv   time.Duration               // conversion time to wait
	now    func() time.Time            // stamps readings
	sleep  func(context.Context, time.Duration) error
	sem    chan struct{} // holds one token while a call uses the bus
}

// device is one configured 1-Wire thermometer.
type device struct {
	name       string // kernel-style, "28-0316a2b8ff01"
	addr       onewire.Address
	family     byte
	configured bool // its resolution was checked (and set) since start or since it reverted
}

var _ sensors.Sensor = (*Bus)(nil)

// NewI2C opens the DS2482-100, DS2482-800 (channel 0) or DS2483 at addr
// (0x18..0x1F) on b through periph's ds248x driver, with the active
// pull-up on, and sets up the 1-Wire devices named in kernel style
// ("28-0316a2b8ff01"; families 10 DS18S20, 22 DS1822, 28 DS18B20,
// 42 DS28EA00). opts may be nil for the defaults; now stamps the readings
// (wallclock.Now when nil).
//
// Each device's scratchpad is read; when its resolution differs from
// opts.Resolution, the configuration register is written (TH and TL
// unchanged) and read back. The EEPROM is never written (no Copy
// Scratchpad): a device that loses power comes back at its EEPROM
// resolution, which Read notices and corrects. A device that cannot be set
// up now (absent, CRC error) is tried again by each Read, which reports its
// failure; it does not fail NewI2C. A bridge that does not answer does:
// the error wraps sensors.ErrNoDevice.
func NewI2C(b i2c.Bus, addr uint16, devices []string, opts *Opts, now func() time.Time) (*Bus, error) {
	prefix := fmt.Sprintf("ds2482: i2c 0x%02x", addr)
	if addr < 0x18 || addr > 0x1F {
		return nil, fmt.Errorf("%s: address must be 0x18..0x1f", prefix)
	}
	o := ds248x.DefaultOpts
	open := func() (onewire.Bus, error) {
		// periph's ds248x.New accepts only 0x18, 0x19, 0x20 and 0x21
		// (0x20/0x21 are no DS248x address; 0x1A..0x1F are): give it
		// 0x18 on a bus that sends everything to addr.
		return ds248x.New(fixedAddr{Bus: b, addr: addr}, 0x18, &o)
	}
	bus, err := newBus(prefix, open, devices, opts, now)
	if err != nil {
		return nil, err
	}
	if err := bus.setup(); err != nil {
		return nil, err
	}
	return bus, nil
}

// setup opens the bridge and configures the devices it can.
func (b *Bus) setup() error {
	ow, err := b.bridge()
	if err != nil {
		return err
	}
	for _, d := range b.devs {
		_ = b.configure(ow, d) // retried and reported by Read
	}
	return nil
}

// newBus validates everything but the bridge, which open provides.
func newBus(prefix string, open func() (onewire.Bus, error), devices []string, opts *Opts, now func() time.Time) (*Bus, error) {
	res := 12
	if opts != nil && opts.Resolution != 0 {
		res = opts.Resolution
	}
	if res < 9 || res > 12 {
		return nil, fmt.Errorf("%s: resolution %d bits: want 9..12", prefix, res)
	}
	if now == nil {
		now = wallclock.Now
	}
	b := &Bus{
		prefix: prefix,
		open:   open,
		cfg:    configByte(res),
		conv:   time.Duration(93750<<(res-9)) * time.Microsecond,
		now:    now,
		sleep:  ctxsleep.Sleep,
		sem:    make(chan struct{}, 1),
	}
	seen := make(map[string]bool, len(devices))
	for _, name := range devices {
		a, err := parseName(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", prefix, err)
		}
		if seen[name] {
			return nil, fmt.Errorf("%s: device %q listed twice", prefix, name)
		}
		seen[name] = true
		d := &device{name: name, addr: a, family: byte(a)}
		if d.family == sensors.W1FamilyDS18S20 {
			b.conv = max(b.conv, convDS18S20)
		}
		b.devs = append(b.devs, d)
	}
	return b, nil
}

// Identify reports whether a DS2482/DS2483 answers at addr (0x18..0x1F) on
// b: a device reset (0xF0) must answer a status byte with the RST bit set
// and nothing else but the line level. It then tells the models apart by
// the registers they have: "ds2483" (port configuration), "ds2482-800"
// (channel selection) or "ds2482-100". It is meant for `kelvin scan`.
//
// Identify writes: the reset aborts any 1-Wire activity of a bridge in use,
// and a chip at the same address that is no DS2482 (an MCP9808 shares
// 0x18..0x1F) receives the byte 0xF0 as a register pointer. Run read-only
// probes for such chips first.
func Identify(b i2c.Bus, addr uint16) (chip string, ok bool) {
	if addr < 0x18 || addr > 0x1F {
		return "", false
	}
	var st [1]byte
	if err := b.Tx(addr, []byte{cmdDeviceReset}, st[:]); err != nil || st[0]&^statusLL != statusRST {
		return "", false
	}
	// An invalid read pointer code is not acknowledged.
	if b.Tx(addr, []byte{cmdSetReadPtr, regPortConfig}, nil) == nil {
		return "ds2483", true
	}
	if b.Tx(addr, []byte{cmdSetReadPtr, regChannelSel}, nil) == nil {
		return "ds2482-800", true
	}
	return "ds2482-100", true
}

// Read converts all devices at once and returns one temperature reading
// (°C) per configured device that read well, in configuration order, with
// Reading.Sensor set to the device name ("28-0316a2b8ff01") and one Time
// for all: when the conversion time ended. It takes one conversion time
// (opts.Resolution) plus about 10 ms per device on a 100 kHz I²C bus.
//
// Read may return readings and an error together: readings are good, the
// error lists the devices that failed. It is an errors.Join of one error
// per failed device, each naming it and wrapping a sensors sentinel:
// ErrCRC, ErrPowerOnReset (85.000 °C with scratchpad byte 6 == 0x0C; a real
// 85 °C reads), ErrBadData (an all-0x00 scratchpad, or a device found back
// at a higher resolution than waited for: power lost, EEPROM value; it is
// set again for the next Read), ErrNoDevice (all-0xFF scratchpad: not
// answering; this also wraps ErrBadData), ErrOutOfRange (outside
// -55..+125 °C). When the bridge or the whole bus fails (no presence pulse,
// short, I²C error) Read returns no readings and one error wrapping
// ErrNoDevice; after an I²C error the bridge is initialized again by the
// next call.
//
// Read returns ctx.Err() when ctx is done before or during the conversion
// time, or between two devices; each 1-Wire transaction (a few ms) runs to
// its end. A Bus without devices returns nothing and does not touch the bus.
func (b *Bus) Read(ctx context.Context) ([]reading.Reading, error) {
	if err := b.lock(ctx); err != nil {
		return nil, err
	}
	defer b.unlock()
	if len(b.devs) == 0 {
		return nil, nil
	}
	ow, err := b.bridge()
	if err != nil {
		return nil, err
	}
	var (
		errs []error
		read = make([]*device, 0, len(b.devs))
	)
	for _, d := range b.devs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !d.configured {
			if err := b.configure(ow, d); err != nil {
				errs = append(errs, b.deviceErr(d, err))
				continue
			}
		}
		read = append(read, d)
	}
	if len(read) == 0 {
		return nil, errors.Join(errs...)
	}
	if err := ow.Tx([]byte{cmdSkipROM, cmdConvertT}, nil, onewire.StrongPullup); err != nil {
		return nil, fmt.Errorf("%s: %w", b.prefix, b.txErr("convert t (skip rom 0xcc, 0x44)", err))
	}
	if err := b.sleep(ctx, b.conv); err != nil {
		return nil, err
	}
	now := b.now()
	var rs []reading.Reading
	for _, d := range read {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c, err := b.readDevice(ow, d)
		if err != nil {
			errs = append(errs, b.deviceErr(d, err))
			continue
		}
		rs = append(rs, reading.Reading{
			Sensor:   d.name,
			Quantity: reading.Temperature,
			Value:    c,
			Raw:      c,
			Unit:     reading.UnitOf(reading.Temperature),
			Time:     now,
		})
	}
	return rs, errors.Join(errs...)
}

// Scan searches the 1-Wire bus (Search ROM) and returns the kernel-style
// names of every device on it, of any family, sorted. On a search error it
// returns the devices found so far with the error. It is meant for
// `kelvin scan`. When ctx is done first Scan returns ctx.Err(); the search
// (about 20 ms per device) finishes in the background and holds the bus
// until then.
func (b *Bus) Scan(ctx context.Context) ([]string, error) {
	if err := b.lock(ctx); err != nil {
		return nil, err
	}
	ow, err := b.bridge()
	if err != nil {
		b.unlock()
		return nil, err
	}
	type result struct {
		names []string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		defer b.unlock()
		addrs, err := ow.Search(false)
		var r result
		for _, a := range addrs {
			r.names = append(r.names, formatName(a))
		}
		slices.Sort(r.names)
		if err != nil {
			r.err = fmt.Errorf("%s: %w", b.prefix, b.txErr("search rom (0xf0)", err))
		}
		done <- r
	}()
	select {
	case r := <-done:
		return r.names, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// configure checks a device's resolution and sets it when it differs.
func (b *Bus) configure(ow onewire.Bus, d *device) error {
	sp, err := b.scratchpad(ow, d)
	if err != nil {
		return err
	}
	if !configurable(d.family) || sp[spConfig]&^0x1F == b.cfg&^0x1F {
		d.configured = true
		return nil
	}
	// Write Scratchpad: TH, TL as they are, then the configuration. Not
	// copied to EEPROM.
	w := []byte{cmdWriteScratch, sp[2], sp[3], b.cfg}
	if err := (&onewire.Dev{Bus: ow, Addr: d.addr}).Tx(w, nil); err != nil {
		return b.txErr("write scratchpad (0x4e)", err)
	}
	sp, err = b.scratchpad(ow, d)
	if err != nil {
		return err
	}
	if got := sp[spConfig]; got&^0x1F != b.cfg&^0x1F {
		return fmt.Errorf("configuration 0x%02x written, 0x%02x read back: %w", b.cfg, got, sensors.ErrBadData)
	}
	d.configured = true
	return nil
}

// readDevice reads and judges a device's scratchpad after a conversion.
func (b *Bus) readDevice(ow onewire.Bus, d *device) (float64, error) {
	sp, err := b.scratchpad(ow, d)
	if err != nil {
		return 0, err
	}
	c, err := celsius(d.family, sp)
	if configurable(d.family) {
		if got := sp[spConfig]; got&^0x1F != b.cfg&^0x1F {
			// Power was lost and the EEPROM resolution is back: set
			// ours again before the next conversion. A lower
			// resolution converted in time; a higher one (or config
			// bit 7, a clone's 13/14-bit mode) may not have.
			d.configured = false
			if err == nil && (got&0x80 != 0 || got&resMask > b.cfg&resMask) {
				err = fmt.Errorf("configuration 0x%02x, want 0x%02x: converted at a higher resolution than waited for: %w", got, b.cfg, sensors.ErrBadData)
			}
		}
	}
	return c, err
}

// scratchpad reads a device's 9-byte scratchpad (Match ROM, Read
// Scratchpad 0xBE) and judges it (all 0x00, all 0xFF, CRC).
func (b *Bus) scratchpad(ow onewire.Bus, d *device) ([]byte, error) {
	sp := make([]byte, spLen)
	if err := (&onewire.Dev{Bus: ow, Addr: d.addr}).Tx([]byte{cmdReadScratchpad}, sp); err != nil {
		return nil, b.txErr("read scratchpad (0xbe)", err)
	}
	if err := judge(sp); err != nil {
		return nil, err
	}
	return sp, nil
}

// bridge returns the 1-Wire bus, initializing the DS2482 when needed.
func (b *Bus) bridge() (onewire.Bus, error) {
	if b.ow != nil {
		return b.ow, nil
	}
	ow, err := b.open()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", b.prefix, sensors.ErrNoDevice, err)
	}
	b.ow = ow
	return ow, nil
}

// txErr wraps a failed 1-Wire transaction in sensors.ErrNoDevice. An error
// that is not a 1-Wire bus error (no presence pulse, short) is the
// bridge's own: periph's ds248x then fails every later call, so the bridge
// is dropped and initialized again by the next call.
func (b *Bus) txErr(what string, err error) error {
	var be onewire.BusError
	if !errors.As(err, &be) || !be.BusError() {
		b.ow = nil
	}
	return fmt.Errorf("%s: %w: %w", what, sensors.ErrNoDevice, err)
}

// deviceErr is the failure of device d, typed so that the agent can find
// it in the bus's joined error.
func (b *Bus) deviceErr(d *device, err error) error {
	return &sensors.DeviceError{Bus: b.prefix, Address: d.name, Err: err}
}

func (b *Bus) lock(ctx context.Context) error {
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		b.unlock()
		return err
	}
	return nil
}

func (b *Bus) unlock() { <-b.sem }

// fixedAddr is an i2c.Bus that sends every transaction to addr, whatever
// address the caller gives.
type fixedAddr struct {
	i2c.Bus
	addr uint16
}

// Tx implements i2c.Bus.
func (f fixedAddr) Tx(_ uint16, w, r []byte) error { return f.Bus.Tx(f.addr, w, r) }
