// Package tmp102 reads a Texas Instruments TMP102 digital temperature sensor
// (addresses 0x48–0x4B) and LM75-class sensors with the same register map
// (LM75, LM75A/B, TMP75, TMP175, TMP275; addresses 0x48–0x4F) over I²C.
//
// # Datasheets
//
// TMP102: https://www.ti.com/lit/ds/symlink/tmp102.pdf
//
// TMP75: https://www.ti.com/lit/ds/symlink/tmp75.pdf
//
// LM75B: https://www.nxp.com/docs/en/data-sheet/LM75B.pdf
//
// # Why not periph's driver
//
// periph.io/x/devices/v3/tmp102 (v3.7.4) converts the normal 12-bit format
// correctly (its playback test here, periph_test.go, passes HARDWARE.md's
// vectors), but:
//
//   - it ignores the TMP102's extended mode: with the EM bit set the
//     register holds a 13-bit value and periph reads it as 12 bits, so every
//     temperature comes out halved (25 °C reads as 12.5 °C);
//   - its constructor reads the configuration register ignoring the error
//     and writes it back with the conversion rate and alert mode forced, so
//     a failed read writes a configuration built from zeros;
//   - it writes the configuration as 16 bits, which does not fit the 8-bit
//     configuration register of the LM75 class;
//   - it has no context, no range check and no address in its errors.
//
// # Protocol
//
// The chip converts continuously. A Read writes the register pointer 0x00
// and reads 2 bytes, big-endian, left-justified, 0.0625 °C per LSB:
//
//	normal mode (EM = 0):   T11…T0 0 0 0 0     T = int16(word) >> 4 · 0.0625
//	extended mode (EM = 1): T12…T0 0 0 1       T = int16(word) >> 3 · 0.0625
//
// Bit 0 of the second byte is the EM flag on a TMP102, so the driver decodes
// both formats whatever the configuration; the bits that must be zero are
// checked (a TMP102 word breaking the format, 0xFFFF among them, is
// sensors.ErrBadData). Vectors (normal mode): 19 00 → 25, E7 00 → −25,
// C9 00 → −55, 50 00 → 80; extended: 0C 81 → 25, 4B 01 → 150.
//
// Normal mode tops out at 127.9375 °C; extended mode (Opts.Extended) reaches
// the operating maximum of 150 °C. The range checked is −55…150 °C; outside
// it a Read fails with sensors.ErrOutOfRange.
//
// Model "lm75" decodes the 12-bit normal format only and ignores the four
// low bits (undefined on some LM75 parts). A TMP75/TMP175 powers up at 9-bit
// resolution (0.5 °C steps); this driver does not change it, since the same
// bits are reserved on an original LM75.
//
// # Configuration
//
// NewI2C reads the configuration register (TMP102: 16 bits at pointer 0x01;
// LM75 class: 8 bits) and writes it back only when it must: to clear the
// shutdown bit (SD, bit 8 on the TMP102, bit 0 on the LM75 class) and, on a
// TMP102, to set or clear EM (bit 4) as Opts.Extended says. Every other bit
// (conversion rate, alert polarity, fault queue, thermostat mode) is kept.
// After such a write the first Read waits one conversion time (TMP102:
// 35 ms max; LM75 class: 300 ms, the slowest part at its finest
// resolution). After a failed transfer or bad data, the next Read does this
// check again (the chip may have been power-cycled) and then waits one
// conversion time. Every wait is a timer raced against ctx.
//
// Neither chip has a soft-reset command: the only reset is the I²C general
// call (address 0x00, byte 0x06), which would reset every chip on the bus
// that answers it, so it is never sent.
//
// Every failed transfer is sensors.ErrNoDevice (periph's Linux bus formats
// errno with %v, so a NACK cannot be told from other transfer errors).
//
// The chips have no identification register: Identify always reports false
// and a bus scan shows them as "unknown".
package tmp102
