package sensors

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestW1BulkBusStatus: Buses and OnBusChange tell, per bus, whether a Read
// converted it in bulk and why not, once per change: a bus whose
// therm_bulk_read this process may not write is reported with the
// sentence the user sees, not again on the next Read, and again when the
// permission comes (a udev rule applied after the start).
func TestW1BulkBusStatus(t *testing.T) {
	t.Parallel()
	k := newFakeW1Therm(t, "twobus")
	k.denyWrite = true
	b := newTestW1Bulk(t, k, "28-000000000003", "28-000000000004", "28-000000000008", "28-000000000009")
	var mu sync.Mutex
	var told []string
	b.OnBusChange(func(st W1BusStatus) {
		mu.Lock()
		defer mu.Unlock()
		told = append(told, st.String())
	})
	read := func() []string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := b.Read(ctx); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		out := slices.Sorted(slices.Values(told))
		told = nil
		return out
	}

	denied := []string{
		"bulk conversion unavailable on w1_bus_master1: permission denied; readings take 2 × 1ms; see docs/hardware.md",
		"bulk conversion unavailable on w1_bus_master2: permission denied; readings take 2 × 1ms; see docs/hardware.md",
	}
	if got := read(); !slices.Equal(got, denied) {
		t.Errorf("first Read told %q, want %q", got, denied)
	}
	for _, st := range b.Buses() {
		if st.Bulk() || !errors.Is(st.Err, fs.ErrPermission) || st.Devices != 2 {
			t.Errorf("Buses: %+v, want 2 devices and an error wrapping fs.ErrPermission", st)
		}
	}
	if got := read(); len(got) != 0 {
		t.Errorf("second Read told %q again", got)
	}

	k.mu.Lock()
	k.denyWrite = false
	k.mu.Unlock()
	back := []string{
		"bulk conversion on w1_bus_master1: 2 sensors in one 1ms conversion",
		"bulk conversion on w1_bus_master2: 2 sensors in one 1ms conversion",
	}
	if got := read(); !slices.Equal(got, back) {
		t.Errorf("after the permission came: told %q, want %q", got, back)
	}
	if got := b.Buses(); len(got) != 2 || !got[0].Bulk() || !got[1].Bulk() || got[0].Master != "w1_bus_master1" {
		t.Errorf("Buses = %+v, want both buses converting in bulk, sorted", got)
	}
}

// TestW1BusStatusReason: each cause of a fallback has its few words; a
// conversion that failed keeps its own message without the prefix.
func TestW1BusStatusReason(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error {
		return fmt.Errorf("w1: w1_bus_master1: trigger a bulk conversion: %w",
			&fs.PathError{Op: "open", Path: "/sys/bus/w1/devices/w1_bus_master1/therm_bulk_read", Err: err})
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{wrap(syscall.EACCES), "permission denied"},
		{wrap(syscall.EPERM), "permission denied"},
		{wrap(syscall.EROFS), "read-only file system"},
		{wrap(syscall.ENOENT), "no therm_bulk_read (kernel before 5.8, or not the first bus with a thermometer)"},
		{errors.New("w1: w1_bus_master1: therm_bulk_read reads 0 after the trigger: no conversion started"),
			"therm_bulk_read reads 0 after the trigger: no conversion started"},
		{fmt.Errorf("w1: w1_bus_master1: therm_bulk_read still reads -1 1.02s after the trigger: %w", errW1BulkTimeout),
			"bulk conversion timed out"},
	} {
		st := W1BusStatus{Master: "w1_bus_master1", Devices: 10, Err: tc.err}
		if got := st.Reason(); got != tc.want {
			t.Errorf("Reason of %v = %q, want %q", tc.err, got, tc.want)
		}
	}
	st := W1BusStatus{Master: "w1_bus_master1", Devices: 10, Err: wrap(syscall.EROFS)}
	if got, want := st.String(), "bulk conversion unavailable on w1_bus_master1: read-only file system; readings take 10 × 750ms; see docs/hardware.md"; got != want {
		t.Errorf("String = %q, want %q (750 ms when the conversion time is unknown)", got, want)
	}
	st = W1BusStatus{Master: "w1_bus_master1", Devices: 1, ConvTime: 94 * time.Millisecond}
	if got, want := st.String(), "bulk conversion on w1_bus_master1: 1 sensor in one 94ms conversion"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

// TestW1BulkAccess: what `kelvin scan` reports per bus, against fake
// w1_therm trees: writable, not writable for this process, missing
// (an old kernel), and a bus with only a DS28EA00 or no thermometer at
// all left out.
func TestW1BulkAccess(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		tree  string
		deny  bool
		want  []string
		cause error
	}{
		{tree: "twobus", want: []string{
			"bulk conversion on w1_bus_master1: 2 sensors in one 1ms conversion",
			"bulk conversion on w1_bus_master2: 2 sensors in one 1ms conversion",
		}},
		{tree: "datasheet", deny: true, cause: fs.ErrPermission, want: []string{
			"bulk conversion unavailable on w1_bus_master1: permission denied; readings take 10 × 1ms; see docs/hardware.md",
		}},
		// mixed: a DS18B20, a DS18S20 and four more DS18B20s count; the
		// DS28EA00 (no bulk support in w1_therm) does not.
		{tree: "mixed", want: []string{"bulk conversion on w1_bus_master1: 6 sensors in one 1ms conversion"}},
		{tree: "oldkernel", cause: fs.ErrNotExist, want: []string{
			"bulk conversion unavailable on w1_bus_master1: no therm_bulk_read (kernel before 5.8, or not the first bus with a thermometer); readings take 2 × 1ms; see docs/hardware.md",
		}},
	} {
		t.Run(tc.tree, func(t *testing.T) {
			k := newFakeW1Therm(t, tc.tree)
			k.denyWrite = tc.deny
			sts, err := w1BulkAccess(k, k.root)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, st := range sts {
				got = append(got, st.String())
				if tc.cause != nil && !errors.Is(st.Err, tc.cause) {
					t.Errorf("%s: Err = %v, want it to wrap %v", st.Master, st.Err, tc.cause)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
			if tr, _, _, _ := k.counts(); len(tr) != 0 {
				t.Errorf("W1BulkAccess triggered conversions: %v", tr)
			}
		})
	}
	if _, err := W1BulkAccess(t.TempDir() + "/none"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("W1BulkAccess of a missing tree: %v, want fs.ErrNotExist", err)
	}
}

// TestW1BulkTimeoutToldOnce: a bus whose conversions time out is reported
// once, though each timeout's message says how long it waited.
func TestW1BulkTimeoutToldOnce(t *testing.T) {
	t.Parallel()
	k := newFakeW1Therm(t, "datasheet")
	k.pendingPolls = 1 << 30
	b := newTestW1Bulk(t, k, "28-000000000001", "28-000000000002")
	b.margin = 20 * time.Millisecond
	var told []string
	b.OnBusChange(func(st W1BusStatus) { told = append(told, st.String()) }) // one bus: one goroutine
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		b.Read(ctx)
		cancel()
	}
	want := []string{"bulk conversion unavailable on w1_bus_master1: bulk conversion timed out; readings take 2 × 1ms; see docs/hardware.md"}
	if !slices.Equal(told, want) {
		t.Errorf("told %q, want %q", told, want)
	}
	if s := b.Stats(); s.Fallbacks != 3 {
		t.Errorf("Fallbacks = %d, want 3", s.Fallbacks)
	}
}
