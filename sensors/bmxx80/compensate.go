package bmxx80

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/kelvin-gw/kelvin/sensors"
)

// Operating ranges of the BMP180, BMP280 and BME280 (all the same).
const (
	minC  = -40
	maxC  = 85
	minPa = 30000  // 300 hPa
	maxPa = 110000 // 1100 hPa
	minRH = 0
	maxRH = 100
	// rhSlack is how far past 0..100 %RH a reading is clamped rather
	// than refused.
	rhSlack = 10
	skip20  = 0x80000 // BMx280 temperature/pressure register value of a skipped measurement
	skip16  = 0x8000  // BME280 humidity register value of a skipped measurement
)

// calibration280 holds the BMx280 trimming parameters (BMP280 datasheet
// table 17, BME280 datasheet table 16).
type calibration280 struct {
	t1                             uint16
	t2, t3                         int16
	p1                             uint16
	p2, p3, p4, p5, p6, p7, p8, p9 int16
	h1, h3                         uint8
	h2, h4, h5                     int16
	h6                             int8
}

// parseCalibration280 decodes the calibration registers: tp is 0x88..0x9F
// (24 bytes, BMP280) or 0x88..0xA1 (26 bytes, BME280, with dig_H1 at 0xA1),
// h is 0xE1..0xE7 (7 bytes, BME280 only; nil otherwise).
func parseCalibration280(tp, h []byte) (calibration280, error) {
	var c calibration280
	if len(tp) != 24 && len(tp) != 26 || h != nil && (len(h) != 7 || len(tp) != 26) {
		return c, fmt.Errorf("calibration: %d+%d bytes: %w", len(tp), len(h), sensors.ErrBadData)
	}
	if err := notBlank("calibration 0x88", tp); err != nil {
		return c, err
	}
	le := binary.LittleEndian
	c.t1 = le.Uint16(tp[0:])
	c.t2 = int16(le.Uint16(tp[2:]))
	c.t3 = int16(le.Uint16(tp[4:]))
	c.p1 = le.Uint16(tp[6:])
	c.p2 = int16(le.Uint16(tp[8:]))
	c.p3 = int16(le.Uint16(tp[10:]))
	c.p4 = int16(le.Uint16(tp[12:]))
	c.p5 = int16(le.Uint16(tp[14:]))
	c.p6 = int16(le.Uint16(tp[16:]))
	c.p7 = int16(le.Uint16(tp[18:]))
	c.p8 = int16(le.Uint16(tp[20:]))
	c.p9 = int16(le.Uint16(tp[22:]))
	if c.t1 == 0 || c.p1 == 0 {
		return c, fmt.Errorf("calibration: dig_T1 %d, dig_P1 %d (zero divisor): %w", c.t1, c.p1, sensors.ErrBadData)
	}
	if h == nil {
		return c, nil
	}
	if err := notBlank("calibration 0xe1", h); err != nil {
		return c, err
	}
	c.h1 = tp[25]
	c.h2 = int16(le.Uint16(h[0:]))
	c.h3 = h[2]
	// dig_H4 = 0xE4<<4 | 0xE5[3:0], dig_H5 = 0xE6<<4 | 0xE5[7:4], both
	// signed 12-bit: the most significant byte is sign-extended.
	c.h4 = int16(int8(h[3]))<<4 | int16(h[4]&0x0F)
	c.h5 = int16(int8(h[5]))<<4 | int16(h[4]>>4)
	c.h6 = int8(h[6])
	return c, nil
}

// sample280 is one compensated BMx280 measurement.
type sample280 struct {
	celsius, pascal, rh float64
}

// convert280 validates and compensates the data registers 0xF7..0xFC
// (6 bytes, BMP280) or 0xF7..0xFE (8 bytes, BME280; humidity is then set).
func (c *calibration280) convert280(data []byte) (sample280, error) {
	var s sample280
	if len(data) != 6 && len(data) != 8 {
		return s, fmt.Errorf("data: %d bytes: %w", len(data), sensors.ErrBadData)
	}
	if err := notBlank("data 0xf7", data); err != nil {
		return s, err
	}
	adcP := int32(data[0])<<12 | int32(data[1])<<4 | int32(data[2])>>4
	adcT := int32(data[3])<<12 | int32(data[4])<<4 | int32(data[5])>>4
	if adcT == skip20 {
		return s, fmt.Errorf("temperature not measured (adc 0x80000): %w", sensors.ErrBadData)
	}
	if adcP == skip20 {
		return s, fmt.Errorf("pressure not measured (adc 0x80000): %w", sensors.ErrBadData)
	}
	t, tFine := c.temperature(adcT)
	s.celsius = float64(t) / 100
	if t < minC*100 || t > maxC*100 {
		return s, fmt.Errorf("temperature %.2f °C outside %d..%d °C: %w", s.celsius, minC, maxC, sensors.ErrOutOfRange)
	}
	p, ok := c.pressure(adcP, tFine)
	if !ok {
		return s, fmt.Errorf("pressure: zero divisor in compensation: %w", sensors.ErrBadData)
	}
	s.pascal = float64(p) / 256
	if p < minPa*256 || p > maxPa*256 {
		return s, fmt.Errorf("pressure %.2f Pa outside %d..%d hPa: %w", s.pascal, minPa/100, maxPa/100, sensors.ErrOutOfRange)
	}
	if len(data) == 6 {
		return s, nil
	}
	adcH := int32(data[6])<<8 | int32(data[7])
	if adcH == skip16 {
		return s, fmt.Errorf("humidity not measured (adc 0x8000): %w", sensors.ErrBadData)
	}
	h := c.humidity(adcH, tFine)
	// Condensing air legitimately reads a little past 100 %RH, which
	// Bosch's own code clamps; only a value far outside is a fault.
	if h < (minRH-rhSlack)<<22 || h > (maxRH+rhSlack)<<22 {
		return s, fmt.Errorf("humidity %.3f %%RH outside %d..%d %%RH: %w", float64(h)/(1<<22), minRH, maxRH, sensors.ErrOutOfRange)
	}
	h = min(max(h, minRH<<22), maxRH<<22)
	s.rh = float64(h>>12) / 1024
	return s, nil
}

// temperature returns the temperature in 0.01 °C and t_fine (BMP280
// datasheet §3.11.3, 32-bit integer version).
func (c *calibration280) temperature(adc int32) (t, tFine int32) {
	v1 := ((adc>>3 - int32(c.t1)<<1) * int32(c.t2)) >> 11
	d := adc>>4 - int32(c.t1)
	v2 := (((d * d) >> 12) * int32(c.t3)) >> 14
	tFine = v1 + v2
	return (tFine*5 + 128) >> 8, tFine
}

// pressure returns the pressure in 1/256 Pa (BMP280 datasheet §3.11.3,
// 64-bit integer version); ok is false on a zero divisor.
func (c *calibration280) pressure(adc, tFine int32) (p int64, ok bool) {
	v1 := int64(tFine) - 128000
	v2 := v1 * v1 * int64(c.p6)
	v2 += (v1 * int64(c.p5)) << 17
	v2 += int64(c.p4) << 35
	v1 = (v1*v1*int64(c.p3))>>8 + (v1*int64(c.p2))<<12
	v1 = ((int64(1)<<47 + v1) * int64(c.p1)) >> 33
	if v1 == 0 {
		return 0, false
	}
	p = 1048576 - int64(adc)
	p = ((p<<31 - v2) * 3125) / v1
	v1 = (int64(c.p9) * (p >> 13) * (p >> 13)) >> 25
	v2 = (int64(c.p8) * p) >> 19
	return (p+v1+v2)>>8 + int64(c.p7)<<4, true
}

// humidity returns the relative humidity in 1/(1024·4096) %RH (BME280
// datasheet §4.2.3, 32-bit integer version) before Bosch's final clamp to
// 0..100 %RH and shift by 12, so the caller can tell an out-of-range value
// from a clamped one.
func (c *calibration280) humidity(adc, tFine int32) int32 {
	x := tFine - 76800
	a := (adc<<14 - int32(c.h4)<<20 - int32(c.h5)*x + 16384) >> 15
	b := ((((x*int32(c.h6))>>10)*(((x*int32(c.h3))>>11)+32768))>>10 + 2097152) * int32(c.h2)
	x = a * ((b + 8192) >> 14)
	return x - ((((x>>15)*(x>>15))>>7)*int32(c.h1))>>4
}

// calibration180 holds the BMP180 calibration (datasheet §3.4, registers
// 0xAA..0xBF, big-endian).
type calibration180 struct {
	ac1, ac2, ac3 int16
	ac4, ac5, ac6 uint16
	b1, b2        int16
	mb, mc, md    int16
}

// parseCalibration180 decodes the 22 calibration bytes at 0xAA. The
// datasheet: "none of the words has the value 0 or 0xFFFF".
func parseCalibration180(b []byte) (calibration180, error) {
	var c calibration180
	if len(b) != 22 {
		return c, fmt.Errorf("calibration: %d bytes: %w", len(b), sensors.ErrBadData)
	}
	var w [11]uint16
	for i := range w {
		w[i] = binary.BigEndian.Uint16(b[2*i:])
		if w[i] == 0 || w[i] == 0xFFFF {
			return c, fmt.Errorf("calibration word %d (0x%02x) is 0x%04x: %w", i, 0xAA+2*i, w[i], sensors.ErrBadData)
		}
	}
	c.ac1, c.ac2, c.ac3 = int16(w[0]), int16(w[1]), int16(w[2])
	c.ac4, c.ac5, c.ac6 = w[3], w[4], w[5]
	c.b1, c.b2 = int16(w[6]), int16(w[7])
	c.mb, c.mc, c.md = int16(w[8]), int16(w[9]), int16(w[10])
	return c, nil
}

// sample180 is one compensated BMP180 measurement.
type sample180 struct {
	celsius, pascal float64
}

// errZeroDivisor is a calibration that makes the BMP180 algorithm divide by
// zero.
var errZeroDivisor = errors.New("zero divisor in compensation")

// convert180 validates and compensates ut (0xF6..0xF7 after a temperature
// conversion) and up (0xF6..0xF8 after a pressure conversion at oversampling
// setting oss 0..3), following the datasheet's §3.5 algorithm with Bosch's
// shifts and C integer division.
func (c *calibration180) convert180(ut, up []byte, oss uint) (sample180, error) {
	var s sample180
	if len(ut) != 2 || len(up) != 3 || oss > 3 {
		return s, fmt.Errorf("data: %d+%d bytes, oss %d: %w", len(ut), len(up), oss, sensors.ErrBadData)
	}
	if err := notBlank("temperature 0xf6", ut); err != nil {
		return s, err
	}
	if err := notBlank("pressure 0xf6", up); err != nil {
		return s, err
	}
	UT := int64(binary.BigEndian.Uint16(ut))
	UP := (int64(up[0])<<16 | int64(up[1])<<8 | int64(up[2])) >> (8 - oss)

	x1 := ((UT - int64(c.ac6)) * int64(c.ac5)) >> 15
	if x1+int64(c.md) == 0 {
		return s, fmt.Errorf("temperature: %w: %w", errZeroDivisor, sensors.ErrBadData)
	}
	x2 := (int64(c.mc) << 11) / (x1 + int64(c.md))
	b5 := x1 + x2
	t := (b5 + 8) >> 4
	s.celsius = float64(t) / 10
	if t < minC*10 || t > maxC*10 {
		return s, fmt.Errorf("temperature %.1f °C outside %d..%d °C: %w", s.celsius, minC, maxC, sensors.ErrOutOfRange)
	}

	b6 := b5 - 4000
	x1 = (int64(c.b2) * ((b6 * b6) >> 12)) >> 11
	x2 = (int64(c.ac2) * b6) >> 11
	x3 := x1 + x2
	b3 := (((int64(c.ac1)*4 + x3) << oss) + 2) >> 2
	x1 = (int64(c.ac3) * b6) >> 13
	x2 = (int64(c.b1) * ((b6 * b6) >> 12)) >> 16
	x3 = ((x1 + x2) + 2) >> 2
	b4 := (int64(c.ac4) * (x3 + 32768)) >> 15
	if b4 == 0 {
		return s, fmt.Errorf("pressure: %w: %w", errZeroDivisor, sensors.ErrBadData)
	}
	b7 := (UP - b3) * (50000 >> oss)
	var p int64
	if b7 < 0x80000000 {
		p = (b7 * 2) / b4
	} else {
		p = (b7 / b4) * 2
	}
	x1 = (p >> 8) * (p >> 8)
	x1 = (x1 * 3038) >> 16
	x2 = (-7357 * p) >> 16
	p += (x1 + x2 + 3791) >> 4
	s.pascal = float64(p)
	if p < minPa || p > maxPa {
		return s, fmt.Errorf("pressure %d Pa outside %d..%d hPa: %w", p, minPa/100, maxPa/100, sensors.ErrOutOfRange)
	}
	return s, nil
}

// notBlank returns an ErrBadData error when b is all 0x00 or all 0xFF: what
// a bus with a stuck data line or nobody driving it returns.
func notBlank(what string, b []byte) error {
	zero, ones := true, true
	for _, v := range b {
		zero = zero && v == 0
		ones = ones && v == 0xFF
	}
	switch {
	case zero:
		return fmt.Errorf("%s all 0x00: %w", what, sensors.ErrBadData)
	case ones:
		return fmt.Errorf("%s all 0xff: %w", what, sensors.ErrBadData)
	}
	return nil
}
