package bmxx80

import (
	"errors"
	"testing"

	"github.com/kelvin-gw/kelvin/sensors"
)

// FuzzConvert280 feeds arbitrary calibration and data registers to the
// BMx280 decoding: it must never panic, and whatever it accepts must be in
// the chip's range.
func FuzzConvert280(f *testing.F) {
	f.Add(append(append([]byte{}, calDatasheet280...), 0, 0), []byte{}, dataDatasheet280)
	f.Add(calBME280TP, calBME280H, dataBME280)
	f.Add(ff(26), ff(7), ff(8))
	f.Add(zero(26), zero(7), zero(8))
	f.Fuzz(func(t *testing.T, tp, h, data []byte) {
		if len(h) == 0 {
			h = nil
		}
		c, err := parseCalibration280(tp, h)
		if err != nil {
			if !errors.Is(err, sensors.ErrBadData) {
				t.Fatalf("calibration error %v does not wrap ErrBadData", err)
			}
			return
		}
		s, err := c.convert280(data)
		if err != nil {
			if !errors.Is(err, sensors.ErrBadData) && !errors.Is(err, sensors.ErrOutOfRange) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if s.celsius < minC || s.celsius > maxC || s.pascal < minPa || s.pascal > maxPa || s.rh < minRH || s.rh > maxRH {
			t.Fatalf("accepted %+v", s)
		}
	})
}

// FuzzConvert180 does the same for the BMP180.
func FuzzConvert180(f *testing.F) {
	f.Add(calDatasheet180, []byte{0x6C, 0xFA}, []byte{0x5D, 0x23, 0x00}, uint8(0))
	f.Add(ff(22), ff(2), ff(3), uint8(3))
	f.Fuzz(func(t *testing.T, cal, ut, up []byte, oss uint8) {
		c, err := parseCalibration180(cal)
		if err != nil {
			if !errors.Is(err, sensors.ErrBadData) {
				t.Fatalf("calibration error %v does not wrap ErrBadData", err)
			}
			return
		}
		s, err := c.convert180(ut, up, uint(oss))
		if err != nil {
			if !errors.Is(err, sensors.ErrBadData) && !errors.Is(err, sensors.ErrOutOfRange) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if s.celsius < minC || s.celsius > maxC || s.pascal < minPa || s.pascal > maxPa {
			t.Fatalf("accepted %+v", s)
		}
	})
}
