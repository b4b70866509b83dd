// Package ds2482 reads Maxim/Dallas 1-Wire thermometers (DS18B20, DS1822,
// DS28EA00, DS18S20) behind a DS2482-100, DS2482-800 or DS2483 I²C-to-1-Wire
// bridge, with one bulk conversion for the whole bus per Read.
//
// The bridge is driven by periph's ds248x (periph.io/x/devices/v3 v3.7.4),
// its only 1-Wire path with a strong pull-up, so parasite-powered sensors
// convert. Devices are named as the Linux kernel names them
// ("28-0316a2b8ff01": family, serial), so a configuration moves between
// this driver and the kernel's w1 reader (sensors.W1) unchanged; Scan lists
// them for `kelvin scan`.
//
// # Datasheets
//
//   - DS2482-100: https://www.analog.com/media/en/technical-documentation/data-sheets/DS2482-100.pdf
//   - DS2482-800: https://www.analog.com/media/en/technical-documentation/data-sheets/DS2482-800.pdf
//   - DS18B20: https://www.analog.com/media/en/technical-documentation/data-sheets/DS18B20.pdf
//   - DS18S20: https://www.analog.com/media/en/technical-documentation/data-sheets/DS18S20.pdf
//   - 1-Wire CRC: Maxim application note 27
//
// # Conversion
//
// Read sends Skip ROM (0xCC) + Convert T (0x44) once, with the DS2482's
// strong pull-up on from the last bit (it stays on until the next 1-Wire
// command), waits one conversion time, then reads each device's 9-byte
// scratchpad (Match ROM, 0xBE) and checks its CRC-8. The maximum conversion
// time is 93.75, 187.5, 375 or 750 ms at 9, 10, 11 or 12 bits of resolution
// (0.5, 0.25, 0.125, 0.0625 °C); a DS18S20 on the bus makes it 750 ms.
// Reading a device takes about 10 ms more on a 100 kHz I²C bus (a 1-Wire
// reset, 10 bytes written and 9 read, each a few I²C transactions).
//
// # Resolution without EEPROM wear
//
// The resolution lives in the configuration register (scratchpad byte 4)
// and in EEPROM, copied to the register at power-on. NewI2C reads each
// scratchpad and only when the resolution differs writes the scratchpad
// (0x4E: TH and TL as they were, the configuration) and reads it back; it
// never sends Copy Scratchpad (0x48). A device that loses power comes back
// at its EEPROM resolution: Read notices the configuration byte, sets it
// again before the next conversion, and does not trust a value converted at
// a higher resolution than it waited for.
//
// # Judging a scratchpad
//
//   - all 0x00 (passes the CRC: CRC-8 of zeros is zero): ErrBadData;
//   - all 0xFF (nobody answered the Match ROM): ErrNoDevice and ErrBadData;
//   - CRC-8 of bytes 0..7 not byte 8: ErrCRC;
//   - 85.000 °C (0x0550; DS18S20 0x00AA) with byte 6 == 0x0C: the power-on
//     value, ErrPowerOnReset; 85.000 °C with another byte 6 is a reading;
//   - outside -55..+125 °C (127.9375 °C is a conversion starved of power):
//     ErrOutOfRange.
//
// At 9, 10 and 11 bits the 3, 2, 1 lowest temperature bits are undefined
// and cleared. DS18S20: T = TEMP_READ - 0.25 + (COUNT_PER_C -
// COUNT_REMAIN)/COUNT_PER_C.
//
// # Quirks found in periph (devices v3.7.4, conn v3.7.2)
//
//   - ds248x.New accepts only the addresses 0x18, 0x19, 0x20 and 0x21. A
//     DS2482-100 answers at 0x18..0x1B (pins AD1, AD0), a DS2482-800 at
//     0x18..0x1F (AD2..AD0), a DS2483 at 0x18: 0x1A..0x1F are refused and
//     0x20/0x21 are no DS248x address at all (hex read as decimal?). NewI2C
//     accepts 0x18..0x1F and gives ds248x.New 0x18 on an i2c.Bus wrapper
//     that sends every transaction to the real address.
//   - ds248x has a persistent error model: after one I²C failure every call
//     returns that error. Read drops such a bridge and initializes it again
//     on the next call; 1-Wire errors (no presence pulse, short) keep it.
//   - ds248x selects channel 0 of a DS2482-800; the other channels are not
//     used here.
//   - ds248x sleeps (package-level time.Sleep) and polls with a 3 ms
//     overall timeout per byte; no context. Each transaction is short, so
//     Read checks ctx between devices and waits for the conversion itself.
//   - ds18b20.New, when the resolution differs, writes TH = TL = 0 (erasing
//     the alarm thresholds) and sends Copy Scratchpad: an EEPROM write each
//     time the configured resolution changes (not on every start, since the
//     EEPROM then holds it). Not used here.
//   - ds18b20's LastTemp rejects every 85.000 °C whatever byte 6 says,
//     accepts an all-zero scratchpad as 0 °C (its CRC is valid), and does
//     not clear the undefined low bits; ConvertAll sleeps 94·2^(bits-9) ms
//     with a package-level sleep and no context. Not used here: Read sends
//     the same Skip ROM + Convert T itself and waits on a timer or ctx.
//   - sysfs-i2c (host v3.8.5) wraps the ioctl errno with %v, so a NACK
//     cannot be told from a bus timeout; both are ErrNoDevice here.
//
// # Concurrency
//
// A Bus is safe for concurrent use; calls are serialized, and a call waiting
// for another returns ctx.Err() when ctx is done first.
package ds2482
