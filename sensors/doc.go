// Package sensors defines Sensor, the one-method interface every driver
// implements, the faults drivers report (ErrCRC, ErrPowerOnReset, ...), and
// the drivers that need no hardware library: the simulated sensor and the
// Linux kernel's 1-Wire sysfs reader. Drivers that talk to a bus through
// periph.io live in sub-packages; nothing outside sensors/ imports periph.
//
// # Drivers in this package
//
// Sim (NewSim) is a seedable simulated sensor for demos and tests: a slow
// mean-reverting random walk (Ornstein-Uhlenbeck, time constant 10 min) around
// a base value, Gaussian noise per read, a rare single-read spike so the
// outlier filter has work to do, and values rounded to a real chip's
// resolution (1/16 °C, 1/1024 %RH, 1/256 Pa). Its output depends only on the
// seed and on the times its clock returns, so runs are reproducible.
//
// W1 (NewW1) reads one Maxim/Dallas 1-Wire thermometer through the Linux
// kernel's w1-gpio and w1-therm drivers (dtoverlay=w1-gpio,gpiopin=4 on a
// Raspberry Pi, 4.7 kΩ pull-up to 3.3 V). It reads
// /sys/bus/w1/devices/<family>-<serial>/w1_slave and computes the temperature
// from the scratchpad bytes itself (ParseW1Slave), never from the kernel's
// t= field. Supported families: 10 DS18S20, 22 DS1822, 28 DS18B20,
// 3b DS1825/MAX31850, 42 DS28EA00. ListW1 lists them for `kelvin scan`.
//
// Datasheets:
//   - DS18B20: https://www.analog.com/media/en/technical-documentation/data-sheets/DS18B20.pdf
//   - DS18S20: https://www.analog.com/media/en/technical-documentation/data-sheets/DS18S20.pdf
//   - kernel driver: drivers/w1/slaves/w1_therm.c, Documentation/w1/slaves/w1_therm.rst
//
// Timing and quirks of the kernel path, as the w1_slave reader sees them:
//   - Every read of w1_slave starts a conversion and blocks for it: 95, 190,
//     375 or 750 ms at 9 to 12 bits (750 ms on a DS18S20). W1.Read does the
//     file read in a goroutine so it can return when ctx is done, and keeps
//     at most one read per device outstanding (ErrBusy otherwise).
//   - W1 and W1Bulk keep each device's w1_slave open between reads and
//     read it with one pread at offset 0, which makes the kernel run the
//     attribute's show() (a conversion) again, as a fresh open does (see
//     sysfsFile). They open it afresh after any failed read, when the
//     kernel reports the device gone (ENODEV) and, for W1Bulk, when the
//     bus listing changes; Close closes the files.
//   - A read returns 0 bytes when the conversion or the read failed or a bulk
//     conversion is pending (ErrBadData, "empty read"). Kernels since the
//     2020 w1_therm rework retry a CRC mismatch five times and then return
//     0 bytes too; older kernels print "crc=.. NO" (ErrCRC). The CRC-8 is
//     recomputed here either way.
//   - The power-on value 85.000 °C with scratchpad byte 6 == 0x0C is a
//     conversion that did not happen (ErrPowerOnReset); W1.Read reads once
//     more before reporting it. 85.000 °C with another byte 6 is a reading.
//     (The kernel can reject it itself when bit 0 of the device's features
//     file is set; bit 1 there is "poll for completion".)
//   - 127.9375 °C with byte 6 == 0x0C is a conversion starved of power
//     (parasite mode); it is reported as ErrOutOfRange like anything outside
//     -55..+125 °C.
//   - All-zero and all-0xFF scratchpads (data line stuck low, nobody
//     answering) are ErrBadData; all-zero even passes the CRC.
//   - DS18B20-class chips leave the temperature bits below the configured
//     resolution undefined; they are cleared. GX20MH01 clones in 13/14-bit
//     mode (config bit 7) and MAX31850 thermocouple converters (family 3b with
//     config bit 7; byte 0 bit 0 is the fault flag) are decoded as the
//     kernel does.
//   - Some Raspberry Pi kernels silently return the previous sample
//     (raspberrypi/linux#2099); a stale-value detector downstream catches it.
package sensors
