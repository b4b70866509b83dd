package sensors

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// w1NoBulkFile is why a bus without therm_bulk_read cannot convert in bulk.
const w1NoBulkFile = "no therm_bulk_read (kernel before 5.8, or not the first bus with a thermometer)"

// errW1BulkTimeout is a bulk conversion that never completed; the message
// wrapping it says how long W1Bulk waited.
var errW1BulkTimeout = errors.New("bulk conversion timed out")

// W1BusStatus is whether the thermometers of one kernel 1-Wire bus master
// are converted in one bulk conversion (W1Bulk.Buses, W1BulkAccess).
type W1BusStatus struct {
	Master string // the bus master, e.g. w1_bus_master1
	// Devices counts the bulk-capable thermometers concerned: those of the
	// W1Bulk on this bus, or for W1BulkAccess every one the master lists.
	Devices int
	// ConvTime is the slowest of their conversion times (750 ms at 12
	// bits), which a bulk conversion takes once and a fallback once per
	// device.
	ConvTime time.Duration
	// Err is nil when bulk conversion works (W1Bulk) or therm_bulk_read is
	// writable (W1BulkAccess); otherwise why not. It wraps the cause:
	// fs.ErrPermission (no udev rule), syscall.EROFS (a read-only /sys, as
	// systemd's ProtectKernelTunables= makes it), fs.ErrNotExist (no
	// therm_bulk_read), or a conversion that failed.
	Err error
}

// Bulk reports whether the bus converts in bulk.
func (s W1BusStatus) Bulk() bool { return s.Err == nil }

// Reason says in a few words why the bus does not convert in bulk ("" when
// it does): "permission denied", "read-only file system", "no
// therm_bulk_read (...)", "bulk conversion timed out", or the error itself.
// It is the same for the same cause on every Read.
func (s W1BusStatus) Reason() string {
	switch err := s.Err; {
	case err == nil:
		return ""
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	case errors.Is(err, syscall.EROFS):
		return "read-only file system"
	case errors.Is(err, fs.ErrNotExist):
		return w1NoBulkFile
	case errors.Is(err, errW1BulkTimeout):
		return errW1BulkTimeout.Error() // the same words however long it waited
	default:
		return strings.TrimPrefix(err.Error(), "w1: "+s.Master+": ")
	}
}

// String is the sentence to show a user: "bulk conversion on
// w1_bus_master1: 3 sensors in one 750 ms conversion", or "bulk conversion
// unavailable on w1_bus_master1: permission denied; readings take 3 × 750
// ms; see docs/hardware.md".
func (s W1BusStatus) String() string {
	conv := cmp.Or(s.ConvTime, w1DefaultConvTime)
	if s.Bulk() {
		return fmt.Sprintf("bulk conversion on %s: %d %s in one %v conversion", s.Master, s.Devices, plural(s.Devices, "sensor"), conv)
	}
	return fmt.Sprintf("bulk conversion unavailable on %s: %s; readings take %d × %v; see docs/hardware.md",
		s.Master, s.Reason(), s.Devices, conv)
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// W1BulkAccess reports, for every bus master under sysfs
// (DefaultW1SysfsDir when "") that lists a bulk-capable thermometer,
// whether this process could start a bulk conversion there: whether its
// therm_bulk_read exists and may be opened for writing. It writes nothing
// and converts nothing. The result is sorted by master; the error is that
// of listing sysfs.
func W1BulkAccess(sysfs string) ([]W1BusStatus, error) {
	return w1BulkAccess(osW1FS{}, cmp.Or(sysfs, DefaultW1SysfsDir))
}

func w1BulkAccess(fsys w1fs, sysfs string) ([]W1BusStatus, error) {
	masterOf, err := listW1Masters(fsys, sysfs)
	if err != nil {
		return nil, err
	}
	byMaster := map[string]*W1BusStatus{}
	for dev, m := range masterOf {
		family, err := parseW1Address(dev)
		if err != nil || family == W1FamilyDS28EA00 {
			continue // not a thermometer, or one w1_therm never converts in bulk
		}
		st := byMaster[m]
		if st == nil {
			st = &W1BusStatus{Master: m}
			byMaster[m] = st
		}
		st.Devices++
		conv := w1DefaultConvTime
		if data, err := fsys.ReadFile(filepath.Join(sysfs, dev, "conv_time")); err == nil {
			if d, err := parseW1ConvTime(data); err == nil {
				conv = d
			}
		}
		st.ConvTime = max(st.ConvTime, conv)
	}
	out := make([]W1BusStatus, 0, len(byMaster))
	for _, st := range byMaster {
		if err := fsys.CanWrite(filepath.Join(sysfs, st.Master, "therm_bulk_read")); err != nil {
			st.Err = fmt.Errorf("w1: %s: therm_bulk_read: %w", st.Master, err)
		}
		out = append(out, *st)
	}
	slices.SortFunc(out, func(a, b W1BusStatus) int { return strings.Compare(a.Master, b.Master) })
	return out, nil
}
