// Package tmp102 reads a Texas Instruments TMP102 digital temperature sensor
// (addresses 0x48–0x4B) and LM75-class sensors with the same register map
// (LM75, LM75A/B, TMP75, TMP175, TMP275, TMP105; addresses 0x48–0x4F) over
// I²C.
//
// # Datasheets
//
// TMP102: https://www.ti.com/lit/ds/symlink/tmp102.pdf
//
// TMP75 and TMP175 (SBOS288): https://www.ti.com/lit/ds/symlink/tmp75.pdf
//
// TMP275: https://www.ti.com/lit/ds/symlink/tmp275.pdf
//
// TMP105: https://www.ti.com/lit/ds/symlink/tmp105.pdf
//
// LM75 (National, now TI LM75B/LM75C, SNIS153): https://www.ti.com/lit/ds/symlink/lm75b.pdf
//
// LM75A (NXP): https://www.nxp.com/docs/en/data-sheet/LM75A.pdf
//
// LM75B (NXP): https://www.nxp.com/docs/en/data-sheet/LM75B.pdf
//
// # Models
//
// The chips have no identification register, so the config names the part
// (Opts.Model), read off the package marking:
//
//	model    resolution           conversion (max)        Kelvin sets
//	tmp102   12 bit, 0.0625 °C    35 ms (26 typ.)         EM as Opts.Extended says
//	tmp75    9–12 bit, 0.5 °C at  37.5/75/150/300 ms      12 bit (R1 R0 = 11)
//	tmp175     power-on           at 9/10/11/12 bit
//	tmp275                        (27.5/55/110/220 typ.)
//	tmp105
//	lm75     9 bit, 0.5 °C        300 ms (100 typ.)       —
//	lm75a    11 bit, 0.125 °C     100 ms (one conversion  —
//	lm75b                         every 100 ms)
//
// The TMP75 class (TMP75, TMP175, TMP275, TMP105) powers on at 9 bits, in
// 0.5 °C steps, like an original LM75 ("LM75-compatible"); its resolution bits
// R1 R0 (configuration bits 6–5) are reserved on an LM75, so the driver sets
// them only for these models. The names follow the part numbers: "lm75a" and
// "lm75b" are NXP's 11-bit parts; TI's (formerly National's) LM75B and LM75C
// are 9-bit parts: use "lm75" for those. Decoding reads only the model's bits
// (the rest are undefined on some LM75 parts), so a model with fewer bits than
// the chip loses resolution but never reads wrong; one with more bits than a
// 9-bit chip reads the same 0.5 °C steps. Linux's lm75 hwmon driver sets the
// TMP75 class to 12 bits the same way (its "lm75a" is National's 9-bit part,
// its "lm75b" NXP's 11-bit one).
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
// The LM75 class has the normal format only: n = int16(word) >> (16 − bits),
// T = n / 2^(bits − 8) °C; 0xFFFF (nothing driving the bus) is
// sensors.ErrBadData. Vectors: 12 bit (TMP75 table 7-1) 19 00 → 25,
// 00 40 → 0.25, FF C0 → −0.25, C9 00 → −55; 11 bit (LM75B table 10)
// 00 20 → 0.125, FF E0 → −0.125, C9 20 → −54.875; 9 bit (LM75 table)
// 00 80 → 0.5, FF 80 → −0.5, 7D 00 → 125.
//
// # Configuration
//
// NewI2C reads the configuration register (TMP102: 16 bits at pointer 0x01;
// LM75 class: 8 bits) and writes it back only when it must: to clear the
// shutdown bit (SD, bit 8 on the TMP102, bit 0 on the LM75 class), on a
// TMP75-class part to set R1 R0 to 12 bits, and on a TMP102 to set or clear
// EM (bit 4) as Opts.Extended says. Every other bit (conversion rate, alert
// polarity, fault queue, thermostat mode) is kept; the one-shot bit is
// written as 0. After such a write the first Read waits until a conversion at
// the new setting is done: one conversion time of the model (table above),
// plus, when a running TMP75-class part changed resolution, the conversion
// under way at the old one (from 9 bits: 37.5 + 300 = 337.5 ms). After a
// failed transfer or bad data, the next Read does this check again (the chip
// may have been power-cycled, back at its power-on resolution) and then waits
// at least one conversion time. Every wait is a timer raced against ctx.
//
// Neither chip has a soft-reset command: the only reset is the I²C general
// call (address 0x00, byte 0x06), which would reset every chip on the bus
// that answers it, so it is never sent.
//
// Every failed transfer is sensors.ErrNoDevice (periph's Linux bus formats
// errno with %v, so a NACK cannot be told from other transfer errors).
//
// The chips have no identification register: Identify always reports false
// and a bus scan shows them as "unknown", with the models to choose from.
package tmp102
