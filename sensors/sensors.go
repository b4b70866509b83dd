package sensors

import (
	"context"
	"errors"

	"github.com/kelvin-gw/kelvin/reading"
)

// Sensor is a source of readings: one chip, or a whole 1-Wire bus read in one
// conversion. Read returns one reading per quantity (and per device, for a
// bus), with Quantity, Unit, Raw, Value (equal to Raw) and Time set; the
// caller fills in Agent, Sensor and Seq. Read blocks at most until ctx is
// done and then returns ctx.Err(). A Sensor is used by one goroutine at a
// time.
//
// A read that fails returns an error and no readings; a driver never returns
// a plausible but wrong number.
type Sensor interface {
	Read(ctx context.Context) ([]reading.Reading, error)
}

// Faults a driver reports. They are matched with errors.Is; the agent counts
// them by reason and shows them on the page.
var (
	// ErrCRC is a checksum mismatch on data read from the bus.
	ErrCRC = errors.New("crc mismatch")
	// ErrPowerOnReset is the DS18B20's 85 °C power-on value: the conversion
	// did not happen.
	ErrPowerOnReset = errors.New("power-on reset value")
	// ErrNoDevice is a device that is not there: unplugged, NACK, or gone
	// from the 1-Wire bus.
	ErrNoDevice = errors.New("no device")
	// ErrBadData is data that cannot be a reading: an all-zero or all-0xFF
	// scratchpad, a truncated or malformed file.
	ErrBadData = errors.New("bad data")
	// ErrOutOfRange is a value outside the chip's physical range.
	ErrOutOfRange = errors.New("out of range")
	// ErrStale is a sensor returning the same raw bits for too long.
	ErrStale = errors.New("stale value")
)

// Reason returns a short, stable, snake_case name for a sensor error, used as
// a metric label and on the page: crc, power_on_reset, no_device, bad_data,
// out_of_range, stale, busy, timeout or other.
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrCRC):
		return "crc"
	case errors.Is(err, ErrPowerOnReset):
		return "power_on_reset"
	case errors.Is(err, ErrNoDevice):
		return "no_device"
	case errors.Is(err, ErrBadData):
		return "bad_data"
	case errors.Is(err, ErrOutOfRange):
		return "out_of_range"
	case errors.Is(err, ErrStale):
		return "stale"
	case errors.Is(err, ErrBusy):
		return "busy"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "other"
}
