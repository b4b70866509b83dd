// Package hil is Kelvin's hardware-in-the-loop test: a real ARM Linux kernel
// (Debian's own armhf kernel, downloaded once and cached outside the
// repository) boots under QEMU's vexpress-a9 with QEMU's model of a TI TMP105
// on the board's versatile I²C bus, and Kelvin's armv7 binary runs in it as
// it would on a Pi: periph's /dev/i2c-0 ioctls through the kernel's
// i2c-versatile adapter driver and i2c-algo-bit, Kelvin's own tmp102 driver
// (type tmp105), its buffer and its MQTT output to a real mosquitto on the
// host, reached through QEMU's user-mode network.
//
// The package holds only the test (hil_test.go and its helpers; Linux) and
// guestinit, the guest's /init. docs/hardware.md says what the test proves
// and what it does not.
//
// The test needs qemu-system-arm (Debian package qemu-system-arm) and the
// armhf architecture in apt's lists (dpkg --add-architecture armhf &&
// apt-get update, as root); scripts/test.sh sets up both. Without them it
// skips, naming what to install, or fails when CI=true. HIL_DEBUG=1 prints
// the guest's console as it comes.
package hil
