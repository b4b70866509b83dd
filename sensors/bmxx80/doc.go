// Package bmxx80 reads Bosch BME280 (temperature, pressure, humidity),
// BMP280 (temperature, pressure) and BMP180 (temperature, pressure) sensors
// over I²C, one forced-mode measurement per Read.
//
// The chip is found by its id register 0xD0: 0x60 BME280, 0x58 BMP280,
// 0x55 BMP180. Addresses: 0x76 or 0x77 (SDO pin) for the BMx280, 0x77 for
// the BMP180.
//
// # Datasheets
//
//   - BME280: https://www.bosch-sensortec.com/media/boschsensortec/downloads/datasheets/bst-bme280-ds002.pdf
//   - BMP280: https://www.bosch-sensortec.com/media/boschsensortec/downloads/datasheets/bst-bmp280-ds001.pdf
//   - BMP180: https://cdn-shop.adafruit.com/datasheets/BST-BMP180-DS000-09.pdf
//
// # Measurement
//
// BMx280: Read writes ctrl_hum, config and ctrl_meas (forced mode) in one
// transaction, so a chip that lost power in between is set up again, waits
// the datasheet's maximum measurement time (BME280 datasheet appendix B,
// also right for the BMP280's table 13):
//
//	1.25 ms + 2.3 ms·osrs_t + (2.3 ms·osrs_p + 0.575 ms) [+ (2.3 ms·osrs_h + 0.575 ms) on a BME280]
//
// that is 6.4 ms (BMP280) or 9.3 ms (BME280) at ×1 oversampling and 112.8 ms
// at ×16 for all three, then checks that status bit 3 (measuring) is clear
// and burst-reads 0xF7..0xFE. The waits select on a timer and ctx.Done(), so
// Read returns ctx.Err() as soon as ctx is done. ×1 oversampling (the
// default) reads closest to ambient: the chip self-heats least.
//
// BMP180: Read starts a temperature conversion (0xF4 = 0x2E, 4.5 ms), then a
// pressure conversion (0xF4 = 0x34 | oss<<6: 4.5, 7.5, 13.5 or 25.5 ms at
// oss 0..3 = oversampling 1, 2, 4, 8), checking after each wait that the
// start-of-conversion bit (0xF4 bit 5) is clear.
//
// Compensation is Bosch's integer reference code: BMx280 temperature in
// 0.01 °C (32-bit), pressure in 1/256 Pa (64-bit), humidity in 1/1024 %RH
// (32-bit); BMP180 temperature in 0.1 °C and pressure in 1 Pa. The
// datasheet's BMP280 worked example (§3.12: adc_T 519888 → 25.08 °C,
// adc_P 415148 → 100653.27 Pa) gives 25.08 °C and 100653.254 Pa here: the
// datasheet's pressure is computed in floating point with an unrounded
// t_fine (128422.287); Bosch's double-precision code, which truncates t_fine
// to 128422, gives 100653.258 Pa.
//
// # Faults
//
// Errors start with "bmxx80: i2c 0x76: " and wrap a sensors sentinel:
//   - ErrNoDevice: any failed I²C transaction (periph's sysfs-i2c flattens
//     the errno with %v, so a NACK cannot be told from a bus timeout), or a
//     chip id other than the three above.
//   - ErrBadData: calibration all 0x00 or all 0xFF (or a zero divisor in
//     it, or on the BMP180 any word 0x0000 or 0xFFFF, as the datasheet
//     says), data registers all 0x00 or all 0xFF, and the "measurement
//     skipped" reset values (0x80000 for temperature and pressure, 0x8000
//     for humidity).
//   - ErrOutOfRange: a result outside the chip's operating range:
//     -40..+85 °C, 300..1100 hPa, 0..100 %RH. Humidity is judged before
//     Bosch's clamp to 0..100 %RH, so a BME280 in condensing air that
//     computes 101 %RH reports ErrOutOfRange instead of a plausible 100.
//
// # Why not periph's bmxx80
//
// periph.io/x/devices/v3/bmxx80 (v3.7.4) was read and not used:
//   - Sense takes no context and sleeps with a package-level time.Sleep;
//     after the typical (not maximum) measurement time it polls the status
//     register in a loop without any delay or limit.
//   - It exposes only converted values, so the "measurement skipped" and
//     all-0xFF/all-0x00 data cannot be detected, and it validates the
//     calibration of the BMP180 only.
//   - It reads dig_H4 and dig_H5 (BME280) without sign extension of their
//     most significant byte (Bosch: (int16_t)(int8_t)reg << 4); harmless
//     for the usual positive values, wrong for negative ones.
//   - Its humidity conversion truncates (h·10000/1024 µRH); pressure is
//     exposed in nPa.
//
// Its compensation formulas otherwise match the datasheets: a test runs
// periph's driver on the same recorded bytes and compares.
//
// # Concurrency
//
// A Dev is safe for concurrent use; calls are serialized, and a Read waiting
// for another returns ctx.Err() when ctx is done first.
package bmxx80
