package bmxx80

import (
	"context"
	"fmt"
	"math/bits"
	"time"

	"periph.io/x/conn/v3/i2c"

	"github.com/kelvin-gw/kelvin/internal/ctxsleep"
	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/reading"
	"github.com/kelvin-gw/kelvin/sensors"
)

// Registers.
const (
	regCalib280  = 0x88 // BMx280 calibration dig_T1..dig_P9 (0x88..0x9F), dig_H1 (0xA1)
	regCalib180  = 0xAA // BMP180 calibration AC1..MD (0xAA..0xBF)
	regID        = 0xD0 // chip id
	regCalibHum  = 0xE1 // BME280 calibration dig_H2..dig_H6 (0xE1..0xE7)
	regCtrlHum   = 0xF2 // BME280 ctrl_hum: osrs_h
	regStatus    = 0xF3 // BMx280 status: bit 3 measuring, bit 0 im_update
	regCtrlMeas  = 0xF4 // ctrl_meas: BMx280 osrs_t, osrs_p, mode; BMP180 oss, sco, measurement
	regConfig    = 0xF5 // BMx280 config: t_sb, filter
	regData280   = 0xF7 // BMx280 press_msb..hum_lsb (0xF7..0xFE)
	regData180   = 0xF6 // BMP180 out_msb, out_lsb, out_xlsb
	statusBusy   = 0x08 // BMx280 status: measuring
	sco180       = 0x20 // BMP180 ctrl_meas: start of conversion, cleared when done
	cmdTemp180   = 0x2E // BMP180 ctrl_meas: temperature conversion
	cmdPress180  = 0x34 // BMP180 ctrl_meas: pressure conversion, | oss<<6
	modeSleep    = 0
	modeForced   = 1
	maxBusyPolls = 5 // status polls, 1 ms apart, after the maximum measurement time
)

// Chip ids (register 0xD0).
const (
	idBME280 = 0x60
	idBMP280 = 0x58
	idBMP180 = 0x55
)

// temp180 and press180 are the BMP180's maximum conversion times
// (datasheet table 8), by oss.
var (
	temp180  = 4500 * time.Microsecond
	press180 = [4]time.Duration{4500 * time.Microsecond, 7500 * time.Microsecond, 13500 * time.Microsecond, 25500 * time.Microsecond}
)

// Opts configures a Dev. The zero value (or a nil *Opts) is the default:
// ×1 oversampling of everything, no IIR filter.
type Opts struct {
	// Temperature, Pressure and Humidity are the oversampling of each
	// quantity: 1, 2, 4, 8 or 16; 0 means the default, 1. ×1 reads closest
	// to ambient (the chip self-heats least) and takes 6.4 ms (BMP280) or
	// 9.3 ms (BME280) per Read. Humidity applies to the BME280 only and
	// Temperature to the BMx280 only; the BMP180 takes Pressure 1, 2, 4 or
	// 8. An option the chip cannot honour is an error from NewI2C.
	Temperature, Pressure, Humidity int
	// Filter is the BMx280's IIR filter coefficient: 0 (off, the
	// default), 2, 4, 8 or 16. It smooths over consecutive Reads.
	Filter int
}

// Dev is a BME280, BMP280 or BMP180 on an I²C bus. It implements
// sensors.Sensor. A Dev is safe for concurrent use; calls are serialized.
type Dev struct {
	bus    i2c.Bus
	addr   uint16
	id     byte
	prefix string // "bmxx80: i2c 0x76"
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	sem    chan struct{} // holds one token while a call uses the bus

	ctrlMeas byte          // BMx280 osrs_t<<5 | osrs_p<<2, without mode
	ctrlHum  byte          // BME280 osrs_h
	config   byte          // BMx280 filter<<2
	measure  time.Duration // BMx280 maximum measurement time
	oss      uint          // BMP180 oversampling setting 0..3
	cal280   calibration280
	cal180   calibration180
}

var _ sensors.Sensor = (*Dev)(nil)

// NewI2C finds the chip at addr (0x76 or 0x77; the BMP180 is always 0x77)
// on b by its id register 0xD0, reads its calibration and puts a BMx280 in
// sleep mode. opts may be nil for the defaults. now stamps the readings
// (wallclock.Now when nil).
//
// Errors start with "bmxx80: i2c 0x76: "; a failed transaction or an id
// other than 0x60 (BME280), 0x58 (BMP280) or 0x55 (BMP180) wraps
// sensors.ErrNoDevice, unusable calibration sensors.ErrBadData.
func NewI2C(b i2c.Bus, addr uint16, opts *Opts, now func() time.Time) (*Dev, error) {
	if addr != 0x76 && addr != 0x77 {
		return nil, fmt.Errorf("bmxx80: i2c 0x%02x: address must be 0x76 or 0x77", addr)
	}
	if now == nil {
		now = wallclock.Now
	}
	d := &Dev{
		bus:    b,
		addr:   addr,
		prefix: fmt.Sprintf("bmxx80: i2c 0x%02x", addr),
		now:    now,
		sleep:  ctxsleep.Sleep,
		sem:    make(chan struct{}, 1),
	}
	var o Opts
	if opts != nil {
		o = *opts
	}
	var id [1]byte
	if err := d.tx("read chip id (0xd0)", []byte{regID}, id[:]); err != nil {
		return nil, err
	}
	d.id = id[0]
	switch d.id {
	case idBME280, idBMP280:
		if err := d.setOpts280(o); err != nil {
			return nil, err
		}
		if err := d.init280(); err != nil {
			return nil, err
		}
		return d, nil
	case idBMP180:
		if addr != 0x77 {
			// Not reachable with a real BMP180, whose address is fixed.
			return nil, fmt.Errorf("%s: bmp180 answers at 0x77 only", d.prefix)
		}
		if err := d.setOpts180(o); err != nil {
			return nil, err
		}
		if err := d.init180(); err != nil {
			return nil, err
		}
		return d, nil
	}
	return nil, fmt.Errorf("%s: chip id 0x%02x is not a BME280 (0x60), BMP280 (0x58) or BMP180 (0x55): %w", d.prefix, d.id, sensors.ErrNoDevice)
}

// Identify reports which chip answers at addr on b by reading its id
// register 0xD0: "bme280", "bmp280" or "bmp180". It only reads, and only at
// 0x76 and 0x77; ok is false for any other address, a failed read or
// another id. It is meant for `kelvin scan`.
func Identify(b i2c.Bus, addr uint16) (chip string, ok bool) {
	if addr != 0x76 && addr != 0x77 {
		return "", false
	}
	var id [1]byte
	if err := b.Tx(addr, []byte{regID}, id[:]); err != nil {
		return "", false
	}
	chip = chipName(id[0])
	return chip, chip != ""
}

// Chip returns the chip's name: "bme280", "bmp280" or "bmp180".
func (d *Dev) Chip() string { return chipName(d.id) }

// Quantities returns what Read returns, in order: reading.Temperature and
// reading.Pressure, and reading.Humidity on a BME280.
func (d *Dev) Quantities() []string {
	if d.id == idBME280 {
		return []string{reading.Temperature, reading.Pressure, reading.Humidity}
	}
	return []string{reading.Temperature, reading.Pressure}
}

// Read takes one forced-mode measurement and returns temperature (°C),
// pressure (Pa) and, on a BME280, humidity (%RH), in the order of
// Quantities, stamped with one now(). It takes 6.4..113 ms depending on
// oversampling (see the package doc). When ctx is done first it returns
// ctx.Err(). A failed measurement returns no readings and an error that
// wraps a sensors sentinel (see the package doc).
func (d *Dev) Read(ctx context.Context) ([]reading.Reading, error) {
	if err := d.lock(ctx); err != nil {
		return nil, err
	}
	defer d.unlock()
	var (
		t, p, h float64
		err     error
	)
	if d.id == idBMP180 {
		t, p, err = d.read180(ctx)
	} else {
		t, p, h, err = d.read280(ctx)
	}
	if err != nil {
		return nil, err
	}
	now := d.now()
	rs := make([]reading.Reading, 0, 3)
	add := func(q string, v float64) {
		rs = append(rs, reading.Reading{Quantity: q, Value: v, Raw: v, Unit: reading.UnitOf(q), Time: now})
	}
	add(reading.Temperature, t)
	add(reading.Pressure, p)
	if d.id == idBME280 {
		add(reading.Humidity, h)
	}
	return rs, nil
}

// Halt puts a BMx280 in sleep mode (it is there anyway between forced
// measurements, unless another program set normal mode); on a BMP180, which
// sleeps between conversions, it does nothing. It waits for a Read in
// progress to finish.
func (d *Dev) Halt() error {
	d.sem <- struct{}{}
	defer d.unlock()
	if d.id == idBMP180 {
		return nil
	}
	return d.tx("write ctrl_meas (0xf4) sleep", []byte{regCtrlMeas, d.ctrlMeas | modeSleep}, nil)
}

func (d *Dev) setOpts280(o Opts) error {
	t, err := oversampling("temperature", o.Temperature)
	if err != nil {
		return fmt.Errorf("%s: %w", d.prefix, err)
	}
	p, err := oversampling("pressure", o.Pressure)
	if err != nil {
		return fmt.Errorf("%s: %w", d.prefix, err)
	}
	h, err := oversampling("humidity", o.Humidity)
	if err != nil {
		return fmt.Errorf("%s: %w", d.prefix, err)
	}
	if d.id == idBMP280 && h != 1 {
		return fmt.Errorf("%s: bmp280 measures no humidity: humidity oversampling must be 0 or 1", d.prefix)
	}
	var f byte
	switch o.Filter {
	case 0:
	case 2, 4, 8, 16:
		f = byte(bits.Len(uint(o.Filter)) - 1) // 2→1, 4→2, 8→3, 16→4
	default:
		return fmt.Errorf("%s: filter %d: want 0, 2, 4, 8 or 16", d.prefix, o.Filter)
	}
	d.ctrlMeas = t<<5 | p<<2
	d.ctrlHum = h
	d.config = f << 2
	// BME280 datasheet appendix B (BMP280 table 13 agrees), in µs.
	us := 1250 + 2300*osValue(t) + 2300*osValue(p) + 575
	if d.id == idBME280 {
		us += 2300*osValue(h) + 575
	}
	d.measure = time.Duration(us) * time.Microsecond
	return nil
}

func (d *Dev) setOpts180(o Opts) error {
	if o.Temperature > 1 || o.Humidity != 0 || o.Filter != 0 {
		return fmt.Errorf("%s: bmp180 takes only pressure oversampling (temperature %d, humidity %d, filter %d)", d.prefix, o.Temperature, o.Humidity, o.Filter)
	}
	switch o.Pressure {
	case 0, 1:
		d.oss = 0
	case 2, 4, 8:
		d.oss = uint(bits.Len(uint(o.Pressure)) - 1)
	default:
		return fmt.Errorf("%s: bmp180 pressure oversampling %d: want 1, 2, 4 or 8", d.prefix, o.Pressure)
	}
	return nil
}

func (d *Dev) init280() error {
	n := 24
	if d.id == idBME280 {
		n = 26
	}
	tp := make([]byte, n)
	if err := d.tx("read calibration (0x88)", []byte{regCalib280}, tp); err != nil {
		return err
	}
	var h []byte
	if d.id == idBME280 {
		h = make([]byte, 7)
		if err := d.tx("read calibration (0xe1)", []byte{regCalibHum}, h); err != nil {
			return err
		}
	}
	c, err := parseCalibration280(tp, h)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", d.prefix, d.Chip(), err)
	}
	d.cal280 = c
	// Sleep mode, in case another program left the chip in normal mode:
	// config writes in normal mode may be ignored.
	return d.tx("write ctrl_meas (0xf4) sleep", []byte{regCtrlMeas, d.ctrlMeas | modeSleep}, nil)
}

func (d *Dev) init180() error {
	var b [22]byte
	if err := d.tx("read calibration (0xaa)", []byte{regCalib180}, b[:]); err != nil {
		return err
	}
	c, err := parseCalibration180(b[:])
	if err != nil {
		return fmt.Errorf("%s: bmp180: %w", d.prefix, err)
	}
	d.cal180 = c
	return nil
}

func (d *Dev) read280(ctx context.Context) (t, p, h float64, err error) {
	// ctrl_hum only takes effect after a write to ctrl_meas, and config
	// is only reliably written in sleep mode: write all three, ctrl_meas
	// last, as register/value pairs in one transaction (datasheet §6.2.1).
	w := []byte{regConfig, d.config, regCtrlMeas, d.ctrlMeas | modeForced}
	if d.id == idBME280 {
		w = append([]byte{regCtrlHum, d.ctrlHum}, w...)
	}
	if err := d.tx("start forced measurement (0xf4)", w, nil); err != nil {
		return 0, 0, 0, err
	}
	if err := d.sleep(ctx, d.measure); err != nil {
		return 0, 0, 0, err
	}
	for i := 0; ; i++ {
		var st [1]byte
		if err := d.tx("read status (0xf3)", []byte{regStatus}, st[:]); err != nil {
			return 0, 0, 0, err
		}
		if st[0]&statusBusy == 0 {
			break
		}
		if i == maxBusyPolls {
			return 0, 0, 0, fmt.Errorf("%s: measurement not finished %v after its maximum time (status 0x%02x)", d.prefix, time.Duration(i)*time.Millisecond, st[0])
		}
		if err := d.sleep(ctx, time.Millisecond); err != nil {
			return 0, 0, 0, err
		}
	}
	n := 6
	if d.id == idBME280 {
		n = 8
	}
	data := make([]byte, n)
	if err := d.tx("read data (0xf7)", []byte{regData280}, data); err != nil {
		return 0, 0, 0, err
	}
	s, err := d.cal280.convert280(data)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%s: %s: %w", d.prefix, d.Chip(), err)
	}
	return s.celsius, s.pascal, s.rh, nil
}

func (d *Dev) read180(ctx context.Context) (t, p float64, err error) {
	var ut [2]byte
	if err := d.convert180(ctx, cmdTemp180, temp180, ut[:]); err != nil {
		return 0, 0, err
	}
	var up [3]byte
	if err := d.convert180(ctx, cmdPress180|byte(d.oss)<<6, press180[d.oss], up[:]); err != nil {
		return 0, 0, err
	}
	s, err := d.cal180.convert180(ut[:], up[:], d.oss)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: bmp180: %w", d.prefix, err)
	}
	return s.celsius, s.pascal, nil
}

// convert180 starts a BMP180 conversion with cmd, waits for it and reads
// its result into out.
func (d *Dev) convert180(ctx context.Context, cmd byte, wait time.Duration, out []byte) error {
	if err := d.tx("start conversion (0xf4)", []byte{regCtrlMeas, cmd}, nil); err != nil {
		return err
	}
	if err := d.sleep(ctx, wait); err != nil {
		return err
	}
	for i := 0; ; i++ {
		var c [1]byte
		if err := d.tx("read ctrl_meas (0xf4)", []byte{regCtrlMeas}, c[:]); err != nil {
			return err
		}
		if c[0]&sco180 == 0 {
			break
		}
		if i == maxBusyPolls {
			return fmt.Errorf("%s: conversion 0x%02x not finished %v after its maximum time", d.prefix, cmd, time.Duration(i)*time.Millisecond)
		}
		if err := d.sleep(ctx, time.Millisecond); err != nil {
			return err
		}
	}
	return d.tx("read result (0xf6)", []byte{regData180}, out)
}

// tx runs one I²C transaction; a failure wraps sensors.ErrNoDevice.
func (d *Dev) tx(what string, w, r []byte) error {
	if err := d.bus.Tx(d.addr, w, r); err != nil {
		return fmt.Errorf("%s: %s: %w: %w", d.prefix, what, sensors.ErrNoDevice, err)
	}
	return nil
}

func (d *Dev) lock(ctx context.Context) error {
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		d.unlock()
		return err
	}
	return nil
}

func (d *Dev) unlock() { <-d.sem }

func chipName(id byte) string {
	switch id {
	case idBME280:
		return "bme280"
	case idBMP280:
		return "bmp280"
	case idBMP180:
		return "bmp180"
	}
	return ""
}

// oversampling returns the BMx280 register code of an oversampling factor:
// 1→1, 2→2, 4→3, 8→4, 16→5; 0 is the default ×1.
func oversampling(what string, n int) (byte, error) {
	switch n {
	case 0:
		return 1, nil
	case 1, 2, 4, 8, 16:
		return byte(bits.Len(uint(n))), nil
	}
	return 0, fmt.Errorf("%s oversampling %d: want 1, 2, 4, 8 or 16", what, n)
}

// osValue returns the oversampling factor of a BMx280 register code.
func osValue(code byte) int { return 1 << (code - 1) }
