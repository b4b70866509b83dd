package aht20

import (
	"fmt"

	"github.com/kelvin-gw/kelvin/sensors"
	"github.com/kelvin-gw/kelvin/sensors/internal/crc8"
)

// Specified temperature range, °C.
const (
	minTemp = -40
	maxTemp = 85
)

// decode checks and converts a 7-byte measurement frame (status, 20-bit
// S_RH, 20-bit S_T, CRC) into °C and %RH. Errors wrap sensors.ErrBadData,
// ErrCRC or ErrOutOfRange and carry no package prefix.
func decode(b [7]byte) (t, rh float64, err error) {
	switch b {
	case [7]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}:
		return 0, 0, fmt.Errorf("%w: frame is all 0xFF", sensors.ErrBadData)
	case [7]byte{}:
		return 0, 0, fmt.Errorf("%w: frame is all 0x00", sensors.ErrBadData)
	}
	if b[0]&statusBusy != 0 {
		return 0, 0, fmt.Errorf("%w: still busy (status 0x%02X)", sensors.ErrBadData, b[0])
	}
	if want := crc8.Checksum(b[:6]...); b[6] != want {
		return 0, 0, fmt.Errorf("%w: got 0x%02X, want 0x%02X", sensors.ErrCRC, b[6], want)
	}
	if b[0]&statusCalibrated == 0 {
		return 0, 0, fmt.Errorf("%w: not calibrated (status 0x%02X)", sensors.ErrBadData, b[0])
	}
	srh := uint32(b[1])<<12 | uint32(b[2])<<4 | uint32(b[3])>>4
	st := uint32(b[3]&0x0F)<<16 | uint32(b[4])<<8 | uint32(b[5])
	rh = float64(srh) / (1 << 20) * 100
	t = float64(st)/(1<<20)*200 - 50
	if t < minTemp || t > maxTemp {
		return 0, 0, fmt.Errorf("%w: temperature %.2f °C outside %d…%d °C", sensors.ErrOutOfRange, t, minTemp, maxTemp)
	}
	return t, rh, nil
}
