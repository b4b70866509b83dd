package tmp102

import (
	"fmt"

	"github.com/kelvin-gw/kelvin/sensors"
)

// Operating range, °C.
const (
	minTemp = -55
	maxTemp = 150
)

// decode converts the temperature register (big-endian, left-justified) to
// °C. bits is 0 for a TMP102, whose bit 0 selects the format (0: 12-bit,
// bits 3–0 zero; 1: 13-bit extended, bits 2–1 zero) and a word breaking it is
// bad data. For the LM75 class bits is the model's resolution (9, 11 or 12):
// the bits below it are ignored (undefined on some parts) and 0xFFFF is bad
// data. Errors wrap sensors.ErrBadData or ErrOutOfRange and carry no package
// prefix.
func decode(bits int, b [2]byte) (float64, error) {
	w := uint16(b[0])<<8 | uint16(b[1])
	var t float64
	switch {
	case bits > 0 && w == 0xFFFF:
		return 0, fmt.Errorf("%w: temperature register reads 0xFFFF", sensors.ErrBadData)
	case bits > 0:
		// bits − 8 fraction bits: 0.5 °C at 9 bits, 0.0625 °C at 12.
		t = float64(int16(w)>>(16-bits)) / float64(int(1)<<(bits-8))
	case w&0x0001 == 0: // TMP102 normal mode
		if w&0x000F != 0 {
			return 0, fmt.Errorf("%w: temperature register 0x%04X has low bits set in 12-bit mode", sensors.ErrBadData, w)
		}
		t = float64(int16(w)>>4) * 0.0625
	default: // TMP102 extended mode
		if w&0x0006 != 0 {
			return 0, fmt.Errorf("%w: temperature register 0x%04X has low bits set in 13-bit mode", sensors.ErrBadData, w)
		}
		t = float64(int16(w)>>3) * 0.0625
	}
	if t < minTemp || t > maxTemp {
		return 0, fmt.Errorf("%w: %.4f °C outside %d…%d °C", sensors.ErrOutOfRange, t, minTemp, maxTemp)
	}
	return t, nil
}
