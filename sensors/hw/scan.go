package hw

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"periph.io/x/conn/v3/i2c"

	"github.com/kelvin-gw/kelvin/sensors"
	"github.com/kelvin-gw/kelvin/sensors/aht20"
	"github.com/kelvin-gw/kelvin/sensors/bmxx80"
	"github.com/kelvin-gw/kelvin/sensors/ds2482"
	"github.com/kelvin-gw/kelvin/sensors/mcp9808"
	"github.com/kelvin-gw/kelvin/sensors/sht"
	"github.com/kelvin-gw/kelvin/sensors/tmp102"
)

// Found is one device answering on an I²C bus.
type Found struct {
	Bus     int
	Addr    uint16
	Chip    string   // a config type, "ds2482" for a 1-Wire bridge, or "" when unidentified
	Devices []string // for a DS2482: the 1-Wire devices behind it
}

// BusResult is what a scan of one I²C bus found.
type BusResult struct {
	Bus   int
	Found []Found
	Err   error // the bus could not be opened or scanned
}

// ListI2C returns the numbers of the I²C buses under dev (/dev normally),
// sorted.
func ListI2C(dev string) ([]int, error) {
	matches, err := filepath.Glob(filepath.Join(dev, "i2c-*"))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, m := range matches {
		if n, err := ParseBus(strings.TrimPrefix(filepath.Base(m), "i2c-")); err == nil {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out, nil
}

// ScanBus probes every address of bus n with a one-byte read (what
// i2cdetect -r does; it writes nothing) and identifies what answers from
// its ID registers. Identification that has to write (the Sensirion serial
// number command, the DS2482 reset) runs only at the addresses those chips
// can have, after the read-only probes found nothing else there.
func (b *Buses) ScanBus(ctx context.Context, n int) BusResult {
	res := BusResult{Bus: n}
	bus, err := b.Get(n)
	if err != nil {
		res.Err = err
		return res
	}
	var one [1]byte
	for addr := uint16(0x03); addr <= 0x77; addr++ {
		if ctx.Err() != nil {
			res.Err = ctx.Err()
			return res
		}
		if bus.Tx(addr, nil, one[:]) != nil {
			continue
		}
		f := Found{Bus: n, Addr: addr, Chip: identify(bus, addr)}
		if f.Chip == "ds2482-100" || f.Chip == "ds2482-800" || f.Chip == "ds2483" {
			f.Chip = "ds2482"
			if br, err := ds2482.NewI2C(bus, addr, nil, nil, nil); err == nil {
				sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				f.Devices, _ = br.Scan(sctx)
				cancel()
			}
		}
		res.Found = append(res.Found, f)
	}
	return res
}

// identify names the chip at addr, read-only probes first.
func identify(bus i2c.Bus, addr uint16) string {
	if c, ok := bmxx80.Identify(bus, addr); ok {
		return c
	}
	if c, ok := mcp9808.Identify(bus, addr); ok {
		return c
	}
	if c, ok := aht20.Identify(bus, addr); ok {
		return c
	}
	if c, ok := sht.Identify(bus, addr); ok {
		return c
	}
	if c, ok := ds2482.Identify(bus, addr); ok {
		return c
	}
	return ""
}

// UnknownHint says what a chip with no ID register answering at addr may
// be: " (no ID register: …)" naming the TMP102/LM75-class types that can
// have that address, to choose from by the part number printed on the chip;
// "" where none can.
func UnknownHint(addr uint16) string {
	var types []string
	for _, m := range tmp102.Models() {
		if slices.Contains(Chips[m].Addresses, addr) {
			types = append(types, m)
		}
	}
	if len(types) == 0 {
		return ""
	}
	return " (no ID register: set type to the part number printed on the chip, one of " + strings.Join(types, ", ") + ")"
}

// ScanW1 lists the kernel's 1-Wire temperature devices under sysfs and
// reads each once (a conversion each: up to 750 ms per device).
func ScanW1(ctx context.Context, sysfs string, now func() time.Time) ([]W1Found, error) {
	names, err := sensors.ListW1(sysfs)
	if err != nil {
		return nil, err
	}
	out := make([]W1Found, 0, len(names))
	for _, name := range names {
		f := W1Found{Address: name}
		w, err := sensors.NewW1(sysfs, name, now)
		if err == nil {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			rs, rerr := w.Read(rctx)
			cancel()
			if rerr != nil {
				f.Err = rerr
			} else if len(rs) > 0 {
				f.Celsius = rs[0].Raw
				f.OK = true
			}
		} else {
			f.Err = err
		}
		out = append(out, f)
	}
	return out, nil
}

// W1Found is one kernel 1-Wire device and its reading.
type W1Found struct {
	Address string
	Celsius float64
	OK      bool
	Err     error
}

// PermissionHint explains a permission error on a bus or sysfs tree.
func PermissionHint(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, fs.ErrPermission) || strings.Contains(err.Error(), "permission denied") {
		return "permission denied: add the user to groups i2c and gpio (sudo usermod -aG i2c,gpio $USER), then log in again"
	}
	return ""
}

// DevDir is where I²C bus device files live.
const DevDir = "/dev"
