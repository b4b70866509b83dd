package ds2482

import (
	"fmt"
	"strconv"

	"periph.io/x/conn/v3/onewire"

	"github.com/kelvin-gw/kelvin/sensors"
)

// Scratchpad layout and values (DS18B20 datasheet figure 8).
const (
	spLen      = 9
	spConfig   = 4    // configuration register: 0 R1 R0 1 1 1 1 1
	spReserved = 6    // 0x0C after power-on
	porByte6   = 0x0C // byte 6 of the power-on scratchpad
	por18B20   = 0x0550
	por18S20   = 0x00AA // DS18S20: 85 °C in 0.5 °C steps
	resMask    = 0x60   // configuration bits R1 R0: resolution 9..12 bits
	minC       = -55
	maxC       = 125
)

// judge checks a scratchpad read from the bus: 9 bytes, neither all 0x00
// nor all 0xFF, with a good Dallas CRC-8 in byte 8.
func judge(sp []byte) error {
	if len(sp) != spLen {
		return fmt.Errorf("scratchpad of %d bytes: %w", len(sp), sensors.ErrBadData)
	}
	zero, ones := true, true
	for _, b := range sp {
		zero = zero && b == 0
		ones = ones && b == 0xFF
	}
	switch {
	case zero:
		// The CRC of nine zeros is zero: only the content tells.
		return fmt.Errorf("scratchpad all 0x00 (data line held low): %w", sensors.ErrBadData)
	case ones:
		return fmt.Errorf("scratchpad all 0xff (device not answering): %w (%w)", sensors.ErrNoDevice, sensors.ErrBadData)
	}
	if c := sensors.CRC8(sp[:8]); c != sp[8] {
		return fmt.Errorf("%w: scratchpad % x, computed crc %02x", sensors.ErrCRC, sp, c)
	}
	return nil
}

// celsius converts a judged scratchpad of a device of the given family to
// °C. 85.000 °C with byte 6 == 0x0C is the power-on value, not a
// measurement (ErrPowerOnReset); 85.000 °C with any other byte 6 is a
// reading.
func celsius(family byte, sp []byte) (float64, error) {
	raw := int16(uint16(sp[1])<<8 | uint16(sp[0]))
	var c float64
	if family == sensors.W1FamilyDS18S20 {
		if uint16(raw) == por18S20 && sp[spReserved] == porByte6 {
			return 0, fmt.Errorf("85 °C with byte 6 0x0c: %w", sensors.ErrPowerOnReset)
		}
		// DS18S20 datasheet: 0.5 °C steps; more resolution from
		// COUNT_REMAIN (byte 6) and COUNT_PER_C (byte 7, 16):
		// T = TEMP_READ - 0.25 + (COUNT_PER_C - COUNT_REMAIN) / COUNT_PER_C,
		// TEMP_READ being raw with the 0.5 °C bit truncated.
		remain, perC := sp[6], sp[7]
		if perC == 0 || remain > perC {
			return 0, fmt.Errorf("DS18S20 COUNT_REMAIN 0x%02x, COUNT_PER_C 0x%02x: %w", remain, perC, sensors.ErrBadData)
		}
		c = float64(raw>>1) - 0.25 + float64(perC-remain)/float64(perC)
	} else {
		if uint16(raw) == por18B20 && sp[spReserved] == porByte6 {
			return 0, fmt.Errorf("85 °C with byte 6 0x0c: %w", sensors.ErrPowerOnReset)
		}
		// 1/16 °C; at 9, 10, 11 bits the 3, 2, 1 lowest bits are
		// undefined (DS18B20 datasheet): clear them.
		undefined := 3 - int(sp[spConfig]&resMask>>5)
		c = float64(raw&^(1<<undefined-1)) / 16
	}
	if c < minC || c > maxC {
		return 0, fmt.Errorf("%g °C outside %d..%d °C: %w", c, minC, maxC, sensors.ErrOutOfRange)
	}
	return c, nil
}

// decode is judge then celsius: what Read does with a scratchpad, short of
// the resolution check.
func decode(family byte, sp []byte) (float64, error) {
	if err := judge(sp); err != nil {
		return 0, err
	}
	return celsius(family, sp)
}

// configurable reports whether the family has the DS18B20's configuration
// register (resolution 9..12 bits); the DS18S20 has none.
func configurable(family byte) bool { return family != sensors.W1FamilyDS18S20 }

// configByte returns the configuration register value for a resolution of
// bits (9..12): 0x1F, 0x3F, 0x5F, 0x7F.
func configByte(bits int) byte { return byte(bits-9)<<5 | 0x1F }

// parseName parses a kernel-style 1-Wire device name ("28-0316a2b8ff01":
// family, dash, 48-bit serial, lowercase hex) of a supported family into a
// 1-Wire address with its CRC byte.
func parseName(s string) (onewire.Address, error) {
	const want = "want family-serial in lowercase hex like 28-0316a2b8ff01"
	if len(s) != 15 || s[2] != '-' {
		return 0, fmt.Errorf("device %q: %s", s, want)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; i != 2 && (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return 0, fmt.Errorf("device %q: %s", s, want)
		}
	}
	family, _ := strconv.ParseUint(s[:2], 16, 8)
	serial, _ := strconv.ParseUint(s[3:], 16, 48)
	switch family {
	case sensors.W1FamilyDS18S20, sensors.W1FamilyDS1822, sensors.W1FamilyDS18B20, sensors.W1FamilyDS28EA00:
	default:
		return 0, fmt.Errorf("device %q: family %02x is not supported (want 10 DS18S20, 22 DS1822, 28 DS18B20 or 42 DS28EA00)", s, family)
	}
	var rom [8]byte
	rom[0] = byte(family)
	for i := 1; i <= 6; i++ {
		rom[i] = byte(serial >> (8 * (i - 1)))
	}
	rom[7] = sensors.CRC8(rom[:7])
	var a onewire.Address
	for i := 7; i >= 0; i-- {
		a = a<<8 | onewire.Address(rom[i])
	}
	return a, nil
}

// formatName returns the kernel-style name of a 1-Wire address: family,
// dash, 48-bit serial ("%02x-%012x", as drivers/w1 names its devices).
func formatName(a onewire.Address) string {
	return fmt.Sprintf("%02x-%012x", uint64(a)&0xFF, uint64(a)>>8&0xFFFFFFFFFFFF)
}
