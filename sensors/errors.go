package sensors

import (
	"errors"
	"fmt"
)

// ErrBusy is a read refused because the previous read of the same device is
// still blocked in the kernel (a 1-Wire conversion that never finished):
// rather than pile up goroutines, the driver keeps at most one read per
// device outstanding. Reason reports it as "other".
var ErrBusy = errors.New("previous read still pending")

// DeviceError is the failure of one device of a sensor that reads several
// (a 1-Wire bus read in one conversion, by the kernel's driver or a DS2482),
// and the error W1.Read returns. Its message is "<Bus>: <Address>: <Err>";
// Err wraps the sentinel of the fault (ErrCRC, ErrNoDevice, ErrBusy, ...),
// so errors.Is and Reason see through it, and errors.As finds the device of
// a joined error without parsing its text.
type DeviceError struct {
	Bus     string // what reads the device: "w1" (the kernel), "ds2482: i2c 0x18"
	Address string // the device, e.g. 28-0316a2b8ff01
	Err     error  // what went wrong, without the bus and address
}

// Error returns "<bus>: <address>: <cause>".
func (e *DeviceError) Error() string { return e.Bus + ": " + e.Address + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *DeviceError) Unwrap() error { return e.Err }

// BusError is a failed transfer with an I²C chip, named by prefix (e.g.
// "mcp9808: i2c 0x18"), during op: it wraps ErrNoDevice (a NACK or a bus
// that does not answer is a device that is not there) and keeps the bus's
// own error for errors.Is and the message.
func BusError(prefix, op string, err error) error {
	return fmt.Errorf("%s: %s: %w: %w", prefix, op, ErrNoDevice, err)
}
