package hw

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"periph.io/x/conn/v3/i2c"

	"github.com/kelvin-gw/kelvin/sensors"
	"github.com/kelvin-gw/kelvin/sensors/ds2482"
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

// Scan budgets. A probe on a working bus is a few clock cycles (a NACK at
// 100 kHz takes about 0.1 ms, with the ioctl well under a millisecond), so
// a probe still running after probeLimit means a bus that does not answer:
// SDA or SCL held low, no pull-ups, or a controller that is not there (the
// kernel's bit-banged and hardware drivers wait about a second each time,
// and 117 addresses make two minutes). busBudget bounds the probing of a bus
// whose probes are each just under the limit.
const (
	probeLimit = 250 * time.Millisecond
	busBudget  = 3 * time.Second
)

// ErrBusDead is the reason ScanBus gives up a bus that does not answer.
var ErrBusDead = errors.New("bus does not answer")

// ScanBus probes every address of bus n with a one-byte read (what
// i2cdetect -r does; it writes nothing) and identifies what answers from
// its ID registers. Identification that has to write (the Sensirion serial
// number command, the DS2482 reset) runs only at the addresses those chips
// can have, after the read-only probes found nothing else there.
//
// A bus that does not answer is given up quickly: when one probe takes
// longer than 250 ms, or probing all addresses more than 3 s, the result's
// Err wraps ErrBusDead. The probe still under way is left to end in the
// kernel; the bus is closed once it has and forgotten by b at once, so a
// later Close does not wait for it. When ctx is done, Err is ctx.Err().
func (b *Buses) ScanBus(ctx context.Context, n int) BusResult {
	res := BusResult{Bus: n}
	bus, err := b.Get(n)
	if err != nil {
		res.Err = err
		return res
	}
	deadline := time.NewTimer(busBudget)
	defer deadline.Stop()
	var answered []uint16
	for addr := uint16(0x03); addr <= 0x77; addr++ {
		ok, err := probe(ctx, bus, addr, deadline.C)
		if err != nil {
			b.forget(n, bus)
			switch {
			case errors.Is(err, errProbeSlow):
				err = fmt.Errorf("i2c: /dev/i2c-%d: %w: a one-byte read of 0x%02x took longer than %v (SDA or SCL held low? pull-ups missing?)", n, ErrBusDead, addr, probeLimit)
			case errors.Is(err, errBudget):
				err = fmt.Errorf("i2c: /dev/i2c-%d: %w: probing 0x03–0x%02x took longer than %v (SDA or SCL held low? pull-ups missing?)", n, ErrBusDead, addr, busBudget)
			}
			res.Err = err
			return res
		}
		if ok {
			answered = append(answered, addr)
		}
	}
	for _, addr := range answered {
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

// errProbeSlow and errBudget say why probe gave up.
var (
	errProbeSlow = errors.New("probe too slow")
	errBudget    = errors.New("bus budget spent")
)

// probe reads one byte from addr in a goroutine of its own, so that a read
// stuck in the kernel cannot hold the scan: it reports whether the address
// answered, or errProbeSlow, errBudget (budget fired) or ctx.Err() with the
// read possibly still under way.
func probe(ctx context.Context, bus i2c.Bus, addr uint16, budget <-chan time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	done := make(chan error, 1)
	go func() {
		var one [1]byte
		done <- bus.Tx(addr, nil, one[:])
	}()
	limit := time.NewTimer(probeLimit)
	defer limit.Stop()
	select {
	case err := <-done:
		return err == nil, nil
	case <-limit.C:
		return false, errProbeSlow
	case <-budget:
		return false, errBudget
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// forget drops bus n from b and closes it once a probe that may still be
// under way there has returned (periph's Close waits for it), without
// waiting here. A later Get opens the bus again.
func (b *Buses) forget(n int, bus i2c.Bus) {
	b.mu.Lock()
	bc, ok := b.buses[n]
	if ok && bc == bus {
		delete(b.buses, n)
	}
	b.mu.Unlock()
	if ok && bc == bus {
		go bc.Close()
	}
}

// identify names the chip at addr, in the families' order (read-only
// probes first), then a DS2482 bridge.
func identify(bus i2c.Bus, addr uint16) string {
	for _, f := range families {
		if f.identify == nil {
			continue
		}
		if c, ok := f.identify(bus, addr); ok {
			return c
		}
	}
	if c, ok := ds2482.Identify(bus, addr); ok {
		return c
	}
	return ""
}

// UnknownHint says what a chip with no ID register answering at addr may
// be: " (no ID register: …)" naming the chip types without one that can
// have that address (the TMP102/LM75 class), to choose from by the part number printed on the chip;
// "" where none can.
func UnknownHint(addr uint16) string {
	var types []string
	for _, c := range Chips() {
		if !c.Identified && slices.Contains(c.Addresses, addr) {
			types = append(types, c.Type)
		}
	}
	slices.Sort(types)
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
			w.Close()
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
