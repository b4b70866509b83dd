// Package mcp9808 reads a Microchip MCP9808 digital temperature sensor over
// I²C (addresses 0x18–0x1F).
//
// # Datasheet
//
// https://ww1.microchip.com/downloads/en/DeviceDoc/25095A.pdf
//
// # Why not periph's driver
//
// periph.io/x/devices/v3/mcp9808 (v3.7.4) converts correctly: its playback
// test here (periph_test.go) gets every datasheet vector right, negatives and
// alert flags included. It is not wrapped because of what it does around
// the conversion:
//
//   - New writes 0x0000 to the configuration register (0x01) on every start,
//     wiping whatever alert output, hysteresis and window settings the chip
//     had; Halt writes 0x0100 (shutdown), after which the ambient register
//     stops updating.
//   - Read errors are replaced by its own errors without %w, so a NACK cannot
//     be told from anything else; its constructor takes no address argument.
//   - It checks no range and has no context.
//
// This driver writes only the resolution register at construction and the
// configuration register only to clear the shutdown bit when it is set,
// keeping every other bit.
//
// # Protocol
//
// The chip converts continuously. A Read writes the register pointer 0x05
// and reads the 16-bit big-endian ambient temperature register: bits 15–13
// are the alert flags (Ta ≥ Tcrit, Ta > Tupper, Ta < Tlower) and are masked
// off, bit 12 is the sign, bits 11–0 the magnitude in 0.0625 °C steps. The 13
// bits 12–0 are a two's-complement number:
//
//	T = int13(bits 12–0) · 0.0625 °C
//
// The datasheet's Equation 5-1 computes 256 − (…) for negatives, which is
// the magnitude, not the value (a known erratum); this driver sign-extends.
// Vectors: 00 A0 → 10.0, 01 94 → 25.25, C1 94 → 25.25 (flags set), 1F 60 →
// −10.0, 1E 70 → −25.0, 1F FF → −0.0625.
//
// # Resolution and conversion time
//
//	Opts.Resolution  register 0x08  conversion time (typ.)
//	0.5 °C           0x00            30 ms
//	0.25 °C          0x01            65 ms
//	0.125 °C         0x02           130 ms
//	0.0625 °C        0x03           250 ms (power-on default)
//
// The ambient register reads 0x0000 (0 °C, a plausible value) after power-on
// until the first conversion ends, and holds its last value while the chip is
// shut down. So the first Read after construction waits one conversion time
// when construction had to wake the chip, and the first Read after a failed
// transfer or bad data re-applies the resolution, re-checks the shutdown bit
// and waits one conversion time (the chip may have been power-cycled).
// Every wait is a timer raced against ctx.
//
// # Faults
//
// Every failed transfer is sensors.ErrNoDevice (periph's Linux bus formats
// errno with %v, so a NACK cannot be told from other transfer errors). The
// word 0xFFFF, what a bus reads when nothing drives it, is sensors.ErrBadData
// (as a reading it would be −0.0625 °C with all three alert flags set, which
// needs Tupper < Ta < Tlower: a window configured upside down). A value outside the specified −40…125 °C is
// sensors.ErrOutOfRange.
//
// Identify checks the manufacturer ID (register 0x06 = 0x0054) and the device
// ID (register 0x07, upper byte 0x04; the lower byte is the revision).
package mcp9808
