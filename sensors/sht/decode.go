package sht

import (
	"fmt"

	"github.com/kelvin-gw/kelvin/sensors"
	"github.com/kelvin-gw/kelvin/sensors/internal/crc8"
)

// Specified temperature range of both families, °C.
const (
	minTemp = -40
	maxTemp = 125
)

// decode checks and converts a 6-byte measurement result (T msb, T lsb, CRC,
// RH msb, RH lsb, CRC) into °C and %RH. Errors wrap sensors.ErrBadData,
// ErrCRC or ErrOutOfRange and carry no package prefix.
func decode(m model, b [6]byte) (t, rh float64, err error) {
	st, err := word(b[0], b[1], b[2], "temperature")
	if err != nil {
		return 0, 0, err
	}
	srh, err := word(b[3], b[4], b[5], "humidity")
	if err != nil {
		return 0, 0, err
	}
	t = -45 + 175*float64(st)/65535
	if m == sht4x {
		rh = min(max(-6+125*float64(srh)/65535, 0), 100)
	} else {
		rh = 100 * float64(srh) / 65535
	}
	if t < minTemp || t > maxTemp {
		return 0, 0, fmt.Errorf("%w: temperature %.2f °C outside %d…%d °C", sensors.ErrOutOfRange, t, minTemp, maxTemp)
	}
	return t, rh, nil
}

// word checks one data word and its CRC and returns its value. All-zero and
// all-ones words are bad data whatever their CRC.
func word(msb, lsb, crc byte, name string) (uint16, error) {
	w := uint16(msb)<<8 | uint16(lsb)
	if w == 0x0000 || w == 0xFFFF {
		return 0, fmt.Errorf("%w: %s word is 0x%04X", sensors.ErrBadData, name, w)
	}
	if want := crc8.Checksum(msb, lsb); crc != want {
		return 0, fmt.Errorf("%w on %s word: got 0x%02X, want 0x%02X", sensors.ErrCRC, name, crc, want)
	}
	return w, nil
}
