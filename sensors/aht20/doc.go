// Package aht20 reads an Aosong (ASAIR) AHT20 temperature and humidity
// sensor over I²C (address 0x38 only).
//
// # Datasheet
//
// http://www.aosong.com/userfiles/files/media/Data%20Sheet%20AHT20.pdf
//
// # Why not periph's driver
//
// periph.io/x/devices/v3/aht20 (v3.7.4) converts correctly and checks the
// CRC with its default options (its playback test here, periph_test.go,
// shows both). It is not wrapped because:
//
//   - Sense triggers, sleeps 80 ms and polls in one call with time.Sleep, so
//     ctx cannot end it, and its poll deadline uses the wall clock;
//   - the zero Opts{} turns the CRC check off (ValidateData false), so a
//     caller passing options without it publishes corrupt frames;
//   - once the calibration bit drops it returns NotInitializedError forever
//     (initialisation happens only in NewI2C), and it never soft-resets;
//   - bus errors come back bare, and an all-0xFF frame (nothing driving the
//     bus) fails its CRC instead of reading as a missing device.
//
// # Protocol
//
// The first Read (and the first after a failure) reads the status byte
// (command 0x71); if the calibration bit (bit 3) is clear it sends the
// initialisation command 0xBE 0x08 0x00 and waits 10 ms. Each Read then
// triggers a measurement (0xAC 0x33 0x00), waits 80 ms, and reads 7 bytes:
//
//	byte 0     status: bit 7 busy, bit 3 calibrated
//	bytes 1–3  S_RH, 20 bits (bytes 1, 2 and the high nibble of 3)
//	bytes 3–5  S_T, 20 bits (the low nibble of 3, bytes 4, 5)
//	byte 6     CRC-8 over bytes 0–5: polynomial 0x31, init 0xFF
//
//	RH = S_RH / 2²⁰ · 100        (%RH)
//	T  = S_T / 2²⁰ · 200 − 50    (°C)
//
// While the busy bit is set the driver reads again every 10 ms, at most 5
// times (130 ms in all); a sensor still busy after that is
// sensors.ErrBadData. Every wait is a timer raced against ctx.
//
// # Faults and recovery
//
// A frame of all 0xFF (nothing drives the bus) or all 0x00 is
// sensors.ErrBadData, checked before the CRC; a CRC mismatch is
// sensors.ErrCRC; a frame whose status lacks the calibration bit is
// sensors.ErrBadData; a temperature outside the specified −40…85 °C is
// sensors.ErrOutOfRange. Every failed transfer is sensors.ErrNoDevice
// (periph's Linux bus formats errno with %v, so a NACK cannot be told from
// other transfer errors). After any of these except a value out of range,
// the next Read first sends the soft reset 0xBA, waits 20 ms, and checks the
// calibration bit again. When ctx ends a Read while the sensor measures, the
// next Read first waits 80 ms.
//
// # Quirks
//
// The sensor needs 40 ms after power-on before it takes commands; the agent
// starts long after that. Newer datasheet revisions check (status & 0x18) ==
// 0x18 and describe an undocumented register initialisation (0x1B, 0x1C,
// 0x1E) when it fails; this driver follows the original datasheet (bit 3 and
// 0xBE). Address 0x38 is shared with other chips (PCF8574A, FT6x06): Identify
// reads only the status byte and can be fooled by them.
package aht20
