package sensors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/reading"
)

// DefaultW1SysfsDir is where the kernel's w1 core lists 1-Wire devices.
const DefaultW1SysfsDir = "/sys/bus/w1/devices"

// 1-Wire family codes of the temperature sensors w1-therm drives.
const (
	W1FamilyDS18S20  = 0x10 // DS18S20 (and DS1820): 9 bits + COUNT_REMAIN
	W1FamilyDS1822   = 0x22 // DS1822
	W1FamilyDS18B20  = 0x28 // DS18B20 (and most clones)
	W1FamilyDS1825   = 0x3b // DS1825, MAX31850/MAX31851
	W1FamilyDS28EA00 = 0x42 // DS28EA00
)

// Physical range of the supported chips, in °C.
const (
	w1MinC = -55
	w1MaxC = 125
)

// w1FamilyName returns the chip name of a supported temperature family, or
// "" for any other family.
func w1FamilyName(family byte) string {
	switch family {
	case W1FamilyDS18S20:
		return "DS18S20"
	case W1FamilyDS1822:
		return "DS1822"
	case W1FamilyDS18B20:
		return "DS18B20"
	case W1FamilyDS1825:
		return "DS1825/MAX31850"
	case W1FamilyDS28EA00:
		return "DS28EA00"
	}
	return ""
}

// ValidW1Address reports whether s is a kernel 1-Wire device name of a
// supported temperature family: "%02x-%012x" in lowercase hex (the family
// code, a dash, the 48-bit serial), with family 10 (DS18S20), 22 (DS1822),
// 28 (DS18B20), 3b (DS1825/MAX31850) or 42 (DS28EA00). The error says what
// is wrong.
func ValidW1Address(s string) error {
	_, err := parseW1Address(s)
	return err
}

// parseW1Address validates s like ValidW1Address and returns its family.
func parseW1Address(s string) (byte, error) {
	const want = "want family-serial like 28-0316a2b8ff01"
	if len(s) != 15 || s[2] != '-' {
		return 0, fmt.Errorf("w1: address %q: %s", s, want)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 2 || '0' <= c && c <= '9' || 'a' <= c && c <= 'f' {
			continue
		}
		if 'A' <= c && c <= 'F' {
			return 0, fmt.Errorf("w1: address %q: %s (hex digits in lowercase, as in /sys/bus/w1/devices)", s, want)
		}
		return 0, fmt.Errorf("w1: address %q: %s", s, want)
	}
	f, _ := strconv.ParseUint(s[:2], 16, 8)
	family := byte(f)
	if w1FamilyName(family) == "" {
		return 0, fmt.Errorf("w1: address %q: family 0x%02x is not a temperature sensor (want 10, 22, 28, 3b or 42)", s, family)
	}
	return family, nil
}

// CRC8 computes the Dallas/Maxim 1-Wire CRC-8 of b (polynomial
// x⁸+x⁵+x⁴+1, reflected 0x8C, initial value 0, no final XOR). A scratchpad
// is intact when CRC8 of its first 8 bytes equals byte 8; equivalently, CRC8
// of all 9 bytes is 0.
func CRC8(b []byte) byte {
	var crc byte
	for _, v := range b {
		for range 8 {
			mix := (crc ^ v) & 1
			crc >>= 1
			if mix != 0 {
				crc ^= 0x8c
			}
			v >>= 1
		}
	}
	return crc
}

// ParseW1Slave parses the contents of a w1-therm w1_slave file, e.g.
//
//	9e 01 4b 46 7f ff 0c 10 8a : crc=8a YES
//	9e 01 4b 46 7f ff 0c 10 8a t=25875
//
// and returns the temperature in °C computed from the scratchpad bytes of
// line 1 (never from t=, which the kernel computes even from a corrupt
// read), plus those 9 scratchpad bytes. family is the device's family code
// (W1FamilyDS18B20, ...): it selects the conversion. Errors start with "w1: "
// and wrap a sentinel of this package:
//   - ErrBadData: an empty file (conversion or read failed, or a bulk
//     conversion is pending), a malformed file, an all-zero or all-0xFF
//     scratchpad, a MAX31850 fault, an unsupported family
//   - ErrCRC: the kernel said NO, or the CRC-8 of bytes 0..7 is not byte 8
//   - ErrPowerOnReset: 85.000 °C with byte 6 == 0x0C
//   - ErrOutOfRange: outside -55..+125 °C
//
// It is a pure function, safe for concurrent use.
func ParseW1Slave(family byte, data []byte) (celsius float64, scratch [9]byte, err error) {
	celsius, scratch, err = parseW1Slave(family, data)
	if err != nil {
		err = fmt.Errorf("w1: %w", err)
	}
	return celsius, scratch, err
}

// parseW1Slave is ParseW1Slave without the "w1: " prefix.
func parseW1Slave(family byte, data []byte) (float64, [9]byte, error) {
	var sp [9]byte
	if len(data) == 0 {
		return 0, sp, fmt.Errorf("empty read (conversion failed or bulk conversion pending): %w", ErrBadData)
	}
	name := w1FamilyName(family)
	if name == "" {
		return 0, sp, fmt.Errorf("family 0x%02x is not a temperature sensor: %w", family, ErrBadData)
	}
	sp, kernelCRC, kernelOK, err := parseW1SlaveText(data)
	if err != nil {
		return 0, sp, fmt.Errorf("malformed w1_slave: %v: %w", err, ErrBadData)
	}
	switch {
	case sp == [9]byte{}:
		return 0, sp, fmt.Errorf("all-zero scratchpad (data line held low?): %w", ErrBadData)
	case sp == [9]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}:
		return 0, sp, fmt.Errorf("all-0xff scratchpad (no device answering): %w", ErrBadData)
	}
	crc := CRC8(sp[:8])
	switch {
	case !kernelOK:
		return 0, sp, fmt.Errorf("kernel reported crc=%02x NO, byte 8 is %02x: %w", kernelCRC, sp[8], ErrCRC)
	case crc != sp[8]:
		return 0, sp, fmt.Errorf("computed crc %02x, byte 8 is %02x (kernel said YES): %w", crc, sp[8], ErrCRC)
	case kernelCRC != crc:
		return 0, sp, fmt.Errorf("kernel crc=%02x but computed crc is %02x: %w", kernelCRC, crc, ErrBadData)
	}
	c, err := w1Celsius(family, sp)
	if err != nil {
		return 0, sp, err
	}
	raw := uint16(sp[1])<<8 | uint16(sp[0])
	switch {
	case c == 85 && sp[6] == 0x0c:
		return 0, sp, fmt.Errorf("%s read 85 °C with byte 6 = 0x0c: %w", name, ErrPowerOnReset)
	case raw == 0x07ff && sp[6] == 0x0c && family != W1FamilyDS18S20:
		return 0, sp, fmt.Errorf("%s read %v °C with byte 6 = 0x0c: conversion starved of power (parasite mode?): %w", name, c, ErrOutOfRange)
	case c < w1MinC || c > w1MaxC:
		return 0, sp, fmt.Errorf("%s read %v °C, outside %d..%d °C: %w", name, c, w1MinC, w1MaxC, ErrOutOfRange)
	}
	return c, sp, nil
}

// parseW1SlaveText splits the two lines of a w1_slave file:
//
//	<9 hex bytes> : crc=<hex> YES|NO
//	<9 hex bytes> t=<millidegrees>
//
// and returns line 1's bytes, its crc= value and whether it said YES. Line 2
// holds the last good scratchpad and t= from the fresh one; it is checked for
// shape only. Fields are separated by white space as bytes.Fields separates
// them; a good file costs no allocation (it is parsed once per device per
// round).
func parseW1SlaveText(data []byte) (sp [9]byte, crc byte, ok bool, err error) {
	text, found := bytes.CutSuffix(data, []byte("\n"))
	if !found {
		return sp, 0, false, errors.New("no final newline (truncated?)")
	}
	line1, line2, found := bytes.Cut(text, []byte("\n"))
	if !found {
		return sp, 0, false, errors.New("want 2 lines, got 1")
	}
	if bytes.IndexByte(line2, '\n') >= 0 {
		return sp, 0, false, errors.New("want 2 lines, got more")
	}
	var f1 [12][]byte
	if n := w1Fields(f1[:], line1); n != 12 || string(f1[9]) != ":" || !bytes.HasPrefix(f1[10], []byte("crc=")) {
		return sp, 0, false, fmt.Errorf("line 1 %q: want 9 hex bytes, \": crc=xx YES|NO\"", line1)
	}
	if err := parseHexBytes(sp[:], f1[:9]); err != nil {
		return sp, 0, false, fmt.Errorf("line 1: %v", err)
	}
	c, err := parseHexByte(0, f1[10][len("crc="):])
	if err != nil {
		return sp, 0, false, fmt.Errorf("line 1 crc: %v", err)
	}
	switch string(f1[11]) {
	case "YES":
		ok = true
	case "NO":
	default:
		return sp, 0, false, fmt.Errorf("line 1: got %q, want YES or NO", f1[11])
	}
	var f2 [10][]byte
	if n := w1Fields(f2[:], line2); n != 10 || !bytes.HasPrefix(f2[9], []byte("t=")) {
		return sp, 0, false, fmt.Errorf("line 2 %q: want 9 hex bytes and t=<millidegrees>", line2)
	}
	var last [9]byte
	if err := parseHexBytes(last[:], f2[:9]); err != nil {
		return sp, 0, false, fmt.Errorf("line 2: %v", err)
	}
	if _, err := strconv.ParseInt(string(f2[9][len("t="):]), 10, 32); err != nil {
		return sp, 0, false, fmt.Errorf("line 2: bad t= value %q", f2[9])
	}
	return sp, c, ok, nil
}

// unhex returns the value of the hex digit c (either case).
func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// w1Fields splits line around runs of white space as bytes.Fields does
// (unicode.IsSpace, UTF-8 decoded; an invalid byte is not space), stores
// the first len(dst) fields in dst (sub-slices of line) and returns how
// many fields line has, which may be more than len(dst).
func w1Fields(dst [][]byte, line []byte) int {
	n, start := 0, -1
	for i := 0; i < len(line); {
		r, size := rune(line[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(line[i:])
		}
		switch {
		case !unicode.IsSpace(r):
			if start < 0 {
				start = i
			}
		case start >= 0:
			if n < len(dst) {
				dst[n] = line[start:i]
			}
			n, start = n+1, -1
		}
		i += size
	}
	if start >= 0 {
		if n < len(dst) {
			dst[n] = line[start:]
		}
		n++
	}
	return n
}

// parseHexBytes decodes fields of exactly two hex digits each into dst.
func parseHexBytes(dst []byte, fields [][]byte) error {
	for i, f := range fields {
		v, err := parseHexByte(i, f)
		if err != nil {
			return err
		}
		dst[i] = v
	}
	return nil
}

// parseHexByte decodes f, byte i of a line: exactly two hex digits (what
// strconv.ParseUint(f, 16, 8) accepts in two characters).
func parseHexByte(i int, f []byte) (byte, error) {
	if len(f) == 2 {
		hi, ok1 := unhex(f[0])
		lo, ok2 := unhex(f[1])
		if ok1 && ok2 {
			return hi<<4 | lo, nil
		}
	}
	return 0, fmt.Errorf("byte %d: %q is not 2 hex digits", i, f)
}

// w1Celsius converts a CRC-checked scratchpad of the given family to °C.
func w1Celsius(family byte, sp [9]byte) (float64, error) {
	raw := int16(uint16(sp[1])<<8 | uint16(sp[0]))
	config := sp[4]
	switch {
	case family == W1FamilyDS18S20:
		// DS18S20 datasheet, "Operation - Measuring Temperature": the
		// register holds 0.5 °C units; for more resolution, truncate the
		// 0.5 °C bit (TEMP_READ, an arithmetic shift, so -0.5 gives -1)
		// and add the COUNT_REMAIN (byte 6) and COUNT_PER_C (byte 7,
		// always 16) of the last conversion:
		//   T = TEMP_READ - 0.25 + (COUNT_PER_C - COUNT_REMAIN) / COUNT_PER_C
		remain, perC := sp[6], sp[7]
		if perC == 0 || remain > perC {
			return 0, fmt.Errorf("DS18S20 COUNT_REMAIN 0x%02x, COUNT_PER_C 0x%02x: %w", remain, perC, ErrBadData)
		}
		return float64(raw>>1) - 0.25 + float64(perC-remain)/float64(perC), nil
	case family == W1FamilyDS1825 && config&0x80 != 0:
		// MAX31850/MAX31851 (config bit 7 reads 1; a DS1825 has it 0):
		// 14-bit thermocouple temperature in 0.25 °C steps in bits 15..2,
		// bit 1 reserved, bit 0 the fault flag (open circuit, short to
		// GND or VDD), details in byte 2 bits 2..0.
		if sp[0]&1 != 0 {
			return 0, fmt.Errorf("MAX31850 thermocouple fault (byte 2 bits: open %d, short to gnd %d, short to vdd %d): %w",
				sp[2]&1, sp[2]>>1&1, sp[2]>>2&1, ErrBadData)
		}
		return float64(raw&^3) / 16, nil
	case config&0x80 != 0:
		// Config bit 7 is 0 on every genuine DS18B20-class chip; the
		// GX20MH01 clone sets it in 13- or 14-bit mode, and the kernel
		// then appends config bits 1..0 as two more fraction bits:
		// 1/64 °C.
		return float64(int16(uint16(raw)<<2|uint16(config&3))) / 64, nil
	default:
		// DS18B20-class: int16 in 1/16 °C. At 9, 10 or 11 bits
		// (config bits 6..5 = 0, 1, 2) the 3, 2 or 1 lowest bits are
		// undefined (DS18B20 datasheet, "Operation - Measuring
		// Temperature"): clear them.
		undefined := 3 - int(config>>5&3)
		return float64(raw&^(1<<undefined-1)) / 16, nil
	}
}

// W1Config configures a W1 sensor (yaml tags are decoded by the agent).
type W1Config struct {
	// Address is the kernel's device name, e.g. 28-0316a2b8ff01 (see
	// ValidW1Address and `kelvin scan`). Required.
	Address string `yaml:"address"`
}

// Validate reports whether the address is a supported temperature device
// name; the error starts with "w1: ".
func (c W1Config) Validate() error {
	return ValidW1Address(c.Address)
}

// W1 is one 1-Wire thermometer read through the kernel's w1-therm sysfs
// files; see NewW1. Read may be called from several goroutines, but at most
// one read of the device is ever in flight.
type W1 struct {
	address string
	family  byte
	path    string // <sysfs>/<address>/w1_slave
	now     func() time.Time
	// readFile reads the w1_slave file; tests replace it.
	readFile func(name string) ([]byte, error)
	// slave is w1_slave kept open between reads, when W1 reads it itself
	// (not through a W1Bulk).
	slave *sysfsFile
	// drop makes the next readFile open w1_slave afresh (after a failed
	// read: see sysfsFile); close closes it for good (Close). Either may
	// be nil.
	drop, close func()
	// busy is set while a read of w1_slave is in flight, possibly still
	// blocked in the kernel after Read gave up on it.
	busy atomic.Bool
}

var _ Sensor = (*W1)(nil)

// NewW1 returns a sensor reading <sysfs>/<address>/w1_slave. sysfs defaults
// (when "") to DefaultW1SysfsDir; now is the clock stamped on readings (nil
// means wallclock.Now). It fails only for an invalid address (ValidW1Address) and
// does not touch the filesystem: a device that is not on the bus yet fails
// at Read with ErrNoDevice.
func NewW1(sysfs, address string, now func() time.Time) (*W1, error) {
	family, err := parseW1Address(address)
	if err != nil {
		return nil, err
	}
	if sysfs == "" {
		sysfs = DefaultW1SysfsDir
	}
	if now == nil {
		now = wallclock.Now
	}
	path := filepath.Join(sysfs, address, "w1_slave")
	f := newSysfsFile(path, os.O_RDONLY)
	drop := func() { f.Close() }
	return &W1{
		address:  address,
		family:   family,
		path:     path,
		now:      now,
		slave:    f,
		readFile: func(string) ([]byte, error) { return f.ReadFile() },
		drop:     drop,
		close:    drop,
	}, nil
}

// Close closes w1_slave, which W1 keeps open between reads (one pread per
// read). A read still blocked in the kernel closes it when it returns; a
// Read after Close opens the file again. It returns nil.
func (w *W1) Close() error {
	if w.close != nil {
		w.close()
	}
	return nil
}

// Address returns the device name, e.g. 28-0316a2b8ff01.
func (w *W1) Address() string { return w.address }

// Read reads w1_slave once (the kernel starts a conversion and blocks for
// it, up to 750 ms) and returns one temperature reading in °C, stamped with
// now() when the read completed.
//
// When ctx is done first, Read returns ctx.Err() at once; the file read
// finishes in the background and its result is dropped. While it is still
// blocked, further Reads fail with ErrBusy instead of starting another. On
// ErrPowerOnReset, Read reads once more at once (the read starts a new
// conversion) and returns that result. A missing device directory or
// w1_slave file is ErrNoDevice; data faults are as for ParseW1Slave. Errors
// other than ctx.Err() are a *DeviceError: "w1: <address>: ...".
func (w *W1) Read(ctx context.Context) ([]reading.Reading, error) {
	c, err := w.readOnce(ctx)
	if errors.Is(err, ErrPowerOnReset) {
		c, err = w.readOnce(ctx)
	}
	if err != nil {
		return nil, err
	}
	return []reading.Reading{{
		Quantity: reading.Temperature,
		Value:    c,
		Raw:      c,
		Unit:     reading.UnitOf(reading.Temperature),
		Time:     w.now(),
	}}, nil
}

// readOnce reads and parses w1_slave once. Its errors are ctx.Err() or a
// *DeviceError. The device stays busy until the data is parsed: the next
// read of a kept file reuses its buffer (sysfsFile.ReadFile).
func (w *W1) readOnce(ctx context.Context) (float64, error) {
	c, err := await(ctx, &w.busy, func() (float64, error) { return w.parse(w.readFile(w.path)) })
	switch {
	case err == nil:
		return c, nil
	case err == ErrBusy:
		return w.parse(nil, ErrBusy)
	}
	return 0, err // ctx.Err() or a *DeviceError
}

// readBlocking is readOnce in the caller's goroutine: it blocks for as long
// as the kernel does. It fails with ErrBusy while an earlier read of the
// device is still blocked.
func (w *W1) readBlocking() (float64, error) {
	if !w.busy.CompareAndSwap(false, true) {
		return w.parse(nil, ErrBusy)
	}
	defer w.busy.Store(false)
	return w.parse(w.readFile(w.path))
}

// parse turns the outcome of a read of w1_slave into a temperature or a
// *DeviceError. After any failure but ErrBusy the next read opens
// w1_slave afresh, as every read did before the file was kept open.
func (w *W1) parse(data []byte, err error) (float64, error) {
	c, err := w.parseResult(data, err)
	if err != nil && !errors.Is(err, ErrBusy) && w.drop != nil {
		w.drop()
	}
	return c, err
}

// parseResult is parse without dropping the file.
func (w *W1) parseResult(data []byte, err error) (float64, error) {
	switch {
	case err == nil:
	case err == ErrBusy:
		return 0, &DeviceError{Bus: "w1", Address: w.address, Err: fmt.Errorf("the previous read is still blocked in the kernel: %w", ErrBusy)}
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.ENXIO):
		return 0, &DeviceError{Bus: "w1", Address: w.address, Err: fmt.Errorf("not on the bus: %w (%w)", ErrNoDevice, err)}
	default:
		return 0, &DeviceError{Bus: "w1", Address: w.address, Err: err}
	}
	c, _, err := parseW1Slave(w.family, data)
	if err != nil {
		return 0, &DeviceError{Bus: "w1", Address: w.address, Err: err}
	}
	return c, nil
}

// ListW1 lists the names of the temperature devices present under sysfs
// (DefaultW1SysfsDir when ""), sorted, for `kelvin scan`. It reads the
// device directories, skipping masters (w1_bus_master1), other families and
// the 00-… ghosts a noisy bus produces. A missing sysfs directory (w1-gpio
// not loaded) is an error wrapping ErrNoDevice and fs.ErrNotExist; no
// devices is an empty list.
func ListW1(sysfs string) ([]string, error) {
	if sysfs == "" {
		sysfs = DefaultW1SysfsDir
	}
	entries, err := os.ReadDir(sysfs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("w1: list devices: no 1-Wire bus (is dtoverlay=w1-gpio set?): %w (%w)", ErrNoDevice, err)
		}
		return nil, fmt.Errorf("w1: list devices: %w", err)
	}
	names := []string{}
	for _, e := range entries {
		if ValidW1Address(e.Name()) == nil {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}
