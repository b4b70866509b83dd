package mcp9808

import (
	"fmt"

	"github.com/kelvin-gw/kelvin/sensors"
)

// Specified operating range, °C.
const (
	minTemp = -40
	maxTemp = 125
)

// decode converts the ambient temperature register (big-endian) to °C:
// alert flags (bits 15–13) masked off, bits 12–0 sign-extended, times
// 0.0625. Errors wrap sensors.ErrBadData or ErrOutOfRange and carry no
// package prefix.
func decode(b [2]byte) (float64, error) {
	w := uint16(b[0])<<8 | uint16(b[1])
	if w == 0xFFFF {
		return 0, fmt.Errorf("%w: ambient register reads 0xFFFF", sensors.ErrBadData)
	}
	// Shift the flags out, then shift back arithmetically: bit 12 becomes
	// the sign of an int16.
	t := float64(int16(w<<3)>>3) * 0.0625
	if t < minTemp || t > maxTemp {
		return 0, fmt.Errorf("%w: %.4f °C outside %d…%d °C", sensors.ErrOutOfRange, t, minTemp, maxTemp)
	}
	return t, nil
}
