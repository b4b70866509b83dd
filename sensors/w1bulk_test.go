package sensors

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

// w1BulkTestdata holds fake /sys/bus/w1/devices trees, one per scenario:
//   - datasheet: one bus with ten DS18B20s, one per row of the datasheet's
//     temperature/data table, and a DS2401
//   - mixed: one bus with a DS18B20 at 9 bits (conv_time 95), a DS18S20, a
//     DS28EA00, a CRC failure, a power-on-reset value and a device that is
//     not configured
//   - twobus: two buses with therm_bulk_read, two DS18B20s each
//   - oldkernel: one bus without therm_bulk_read
const w1BulkTestdata = "testdata/w1bulk"

// fakeW1Therm is an in-memory sysfs tree, loaded from a testdata tree, that
// behaves like the kernel's w1_therm for the files W1Bulk uses:
//   - therm_bulk_read accepts exactly "trigger\n" (the kernel checks the
//     size), marks every bulk-capable device its master lists (not
//     DS28EA00) as converting (-1), and reads -1 while one is, 1 while one
//     has a result not yet read, 0 otherwise. A conversion completes at the
//     end of the write when blocking (as in the kernel, which sleeps in the
//     write), or else after pendingPolls reads of -1.
//   - w1_slave returns nothing while its device converts, the fixture
//     without a conversion after a bulk conversion, and the fixture after a
//     conversion of its own (counted, and lasting convTime) otherwise.
//   - conv_time reports convTime in ms (at least 1): the fake runs at a
//     scaled-down conversion time and says so, as the kernel would.
type fakeW1Therm struct {
	root          string
	convTime      time.Duration
	blocking      bool
	pendingPolls  int
	ignoreTrigger bool          // the kernel could not start the conversion (bus mutex)
	denyWrite     bool          // therm_bulk_read is not writable (not root)
	gate          chan struct{} // when set, a trigger write blocks until it is closed
	entered       chan struct{} // closed when a trigger write blocks on gate
	enteredOnce   sync.Once

	mu          sync.Mutex
	files       map[string][]byte
	queue       map[string][]string // per device: w1_slave contents to return first
	flag        map[string]int      // per device: w1_therm's convert_triggered
	polls       map[string]int      // per master: -1 reads left
	triggers    map[string]int      // per master
	stateReads  map[string]int      // per master
	conversions map[string]int      // per device: conversions of its own
	early       int                 // w1_slave reads while the device was converting
	dirReads    int                 // ReadDir calls
	log         []string
}

func newFakeW1Therm(t testing.TB, tree string) *fakeW1Therm {
	t.Helper()
	k := &fakeW1Therm{
		root:        filepath.Join(w1BulkTestdata, tree),
		convTime:    time.Millisecond,
		files:       map[string][]byte{},
		queue:       map[string][]string{},
		flag:        map[string]int{},
		polls:       map[string]int{},
		triggers:    map[string]int{},
		stateReads:  map[string]int{},
		conversions: map[string]int{},
		entered:     make(chan struct{}),
	}
	err := filepath.WalkDir(k.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		k.files[path], err = os.ReadFile(path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// path returns the path of a file of the tree.
func (k *fakeW1Therm) path(elem ...string) string {
	return filepath.Join(append([]string{k.root}, elem...)...)
}

func notExist(op, name string) error { return &fs.PathError{Op: op, Path: name, Err: syscall.ENOENT} }

func (k *fakeW1Therm) ReadFile(name string) ([]byte, error) {
	dir, base := filepath.Dir(name), filepath.Base(name)
	k.mu.Lock()
	data, ok := k.files[name]
	if !ok {
		k.mu.Unlock()
		return nil, notExist("open", name)
	}
	switch base {
	case "therm_bulk_read":
		defer k.mu.Unlock()
		m := filepath.Base(dir)
		k.stateReads[m]++
		if k.polls[m] > 0 {
			k.polls[m]--
			return []byte("-1\n"), nil
		}
		if !k.blocking && k.gate == nil {
			k.complete(m)
		}
		return fmt.Appendf(nil, "%d\n", k.state(m)), nil
	case "conv_time":
		k.mu.Unlock()
		return fmt.Appendf(nil, "%d\n", max(1, k.convTime.Milliseconds())), nil
	case "w1_slave":
		dev := filepath.Base(dir)
		if q := k.queue[dev]; len(q) > 0 && k.flag[dev] != -1 {
			data, k.queue[dev] = []byte(q[0]), q[1:]
		}
		switch k.flag[dev] {
		case -1:
			k.early++
			k.log = append(k.log, "empty "+dev)
			k.mu.Unlock()
			return []byte{}, nil
		case 1:
			k.flag[dev] = 0
			k.log = append(k.log, "read "+dev)
			k.mu.Unlock()
			return data, nil
		}
		k.conversions[dev]++
		k.log = append(k.log, "convert "+dev)
		k.mu.Unlock()
		if k.convTime > 0 {
			time.Sleep(k.convTime) // the conversion, not a wait for something
		}
		return data, nil
	}
	k.mu.Unlock()
	return data, nil
}

func (k *fakeW1Therm) WriteFile(name string, data []byte) error {
	if filepath.Base(name) != "therm_bulk_read" {
		return &fs.PathError{Op: "open", Path: name, Err: syscall.EACCES}
	}
	m := filepath.Base(filepath.Dir(name))
	k.mu.Lock()
	if _, ok := k.files[name]; !ok {
		k.mu.Unlock()
		return notExist("open", name)
	}
	if k.denyWrite {
		k.mu.Unlock()
		return &fs.PathError{Op: "open", Path: name, Err: syscall.EACCES}
	}
	if string(data) != "trigger\n" || k.ignoreTrigger {
		k.mu.Unlock()
		return nil // w1_therm logs and returns the size
	}
	k.triggers[m]++
	k.log = append(k.log, "trigger "+m)
	for _, d := range k.bulkSlaves(m) {
		k.flag[d] = -1
	}
	k.polls[m] = k.pendingPolls
	k.mu.Unlock()
	if k.gate != nil {
		k.enteredOnce.Do(func() { close(k.entered) })
		<-k.gate
	}
	if k.blocking && k.convTime > 0 {
		time.Sleep(k.convTime) // the conversion, not a wait for something
	}
	if k.blocking || k.gate != nil {
		k.mu.Lock()
		k.complete(m)
		k.mu.Unlock()
	}
	return nil
}

func (k *fakeW1Therm) CanWrite(name string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch _, ok := k.files[name]; {
	case !ok:
		return notExist("open", name)
	case k.denyWrite && filepath.Base(name) == "therm_bulk_read":
		return &fs.PathError{Op: "open", Path: name, Err: syscall.EACCES}
	}
	return nil
}

func (k *fakeW1Therm) ReadDir(name string) ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dirReads++
	seen := map[string]bool{}
	for p := range k.files {
		if rel, ok := strings.CutPrefix(p, name+string(filepath.Separator)); ok {
			first, _, _ := strings.Cut(rel, string(filepath.Separator))
			seen[first] = true
		}
	}
	if len(seen) == 0 {
		return nil, notExist("open", name)
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	return names, nil
}

// bulkSlaves returns the devices of master that take part in a bulk
// conversion. k.mu is held.
func (k *fakeW1Therm) bulkSlaves(master string) []string {
	var devs []string
	for line := range strings.Lines(string(k.files[k.path(master, "w1_master_slaves")])) {
		d := strings.TrimSpace(line)
		family, err := parseW1Address(d)
		if _, ok := k.files[k.path(d, "w1_slave")]; ok && err == nil && family != W1FamilyDS28EA00 {
			devs = append(devs, d)
		}
	}
	return devs
}

// complete ends the conversion on master. k.mu is held.
func (k *fakeW1Therm) complete(master string) {
	k.polls[master] = 0
	for _, d := range k.bulkSlaves(master) {
		if k.flag[d] == -1 {
			k.flag[d] = 1
		}
	}
}

// state is what therm_bulk_read shows. k.mu is held.
func (k *fakeW1Therm) state(master string) int {
	s := 0
	for _, d := range k.bulkSlaves(master) {
		switch k.flag[d] {
		case -1:
			return -1
		case 1:
			s = 1
		}
	}
	return s
}

// stateOf returns what therm_bulk_read of master shows now, and how often
// it was read.
func (k *fakeW1Therm) stateOf(master string) (state, reads int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.state(master), k.stateReads[master]
}

func (k *fakeW1Therm) remove(elem ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.files, k.path(elem...))
}

// counts returns copies of the counters.
func (k *fakeW1Therm) counts() (triggers, conversions map[string]int, early int, log []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return copyCounts(k.triggers), copyCounts(k.conversions), k.early, slices.Clone(k.log)
}

func copyCounts(m map[string]int) map[string]int {
	c := map[string]int{}
	for k, v := range m {
		if v != 0 {
			c[k] = v
		}
	}
	return c
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// newTestW1Bulk returns a W1Bulk on k's tree that reads through k.
func newTestW1Bulk(t testing.TB, k *fakeW1Therm, addresses ...string) *W1Bulk {
	t.Helper()
	b, err := NewW1Bulk(k.root, addresses, fixedClock)
	if err != nil {
		t.Fatal(err)
	}
	b.fs = k
	b.pollEvery = time.Millisecond
	t.Cleanup(func() { b.Close() })
	return b
}

func w1Temp(address string, celsius float64) reading.Reading {
	return reading.Reading{Sensor: address, Quantity: "temperature", Value: celsius, Raw: celsius, Unit: "°C", Time: w1TestTime}
}

// deviceErrors splits the error of a W1Bulk.Read into its device errors.
func deviceErrors(t *testing.T, err error) []*DeviceError {
	t.Helper()
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %v is not a join of device errors", err)
	}
	var des []*DeviceError
	for _, e := range j.Unwrap() {
		de, ok := e.(*DeviceError)
		if !ok {
			t.Fatalf("error %v (%T) is not a *DeviceError", e, e)
		}
		des = append(des, de)
	}
	return des
}

// TestW1BulkDatasheet reads the ten rows of the DS18B20 datasheet's
// temperature/data table after one bulk conversion that stays pending for
// three polls.
func TestW1BulkDatasheet(t *testing.T) {
	t.Parallel()
	k := newFakeW1Therm(t, "datasheet")
	k.pendingPolls = 3
	want := []reading.Reading{
		w1Temp("28-000000000001", +125),     // 07D0
		w1Temp("28-000000000002", +85),      // 0550, byte 6 = 0x10: a real 85 °C
		w1Temp("28-000000000003", +25.0625), // 0191
		w1Temp("28-000000000004", +10.125),  // 00A2
		w1Temp("28-000000000005", +0.5),     // 0008
		w1Temp("28-000000000006", 0),        // 0000
		w1Temp("28-000000000007", -0.5),     // FFF8
		w1Temp("28-000000000008", -10.125),  // FF5E
		w1Temp("28-000000000009", -25.0625), // FE6F
		w1Temp("28-00000000000a", -55),      // FC90
	}
	var addresses []string
	for _, r := range want {
		addresses = append(addresses, r.Sensor)
	}
	b := newTestW1Bulk(t, k, addresses...)
	for round := 1; round <= 2; round++ {
		got, err := b.Read(context.Background())
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("round %d: got\n%+v\nwant\n%+v", round, got, want)
		}
		triggers, conversions, early, _ := k.counts()
		if want := map[string]int{"w1_bus_master1": round}; !equalCounts(triggers, want) {
			t.Errorf("round %d: triggers %v, want %v: one per bus per Read", round, triggers, want)
		}
		if len(conversions) != 0 {
			t.Errorf("round %d: devices converted on their own: %v", round, conversions)
		}
		if early != 0 {
			t.Errorf("round %d: %d device reads before therm_bulk_read read 1", round, early)
		}
		if _, got := k.stateOf("w1_bus_master1"); got != 4*round {
			want := 4 * round
			t.Errorf("round %d: therm_bulk_read read %d times, want %d (3 pending, 1 done)", round, got, want)
		}
		if s, want := b.Stats(), (W1BulkStats{BulkConversions: uint64(round)}); s != want {
			t.Errorf("round %d: Stats %+v, want %+v", round, s, want)
		}
	}
}

// TestW1BulkBlockingTrigger models the kernel precisely: the trigger write
// blocks for the conversion and therm_bulk_read reads 1 at once after it.
func TestW1BulkBlockingTrigger(t *testing.T) {
	t.Parallel()
	k := newFakeW1Therm(t, "datasheet")
	k.blocking = true
	b := newTestW1Bulk(t, k, "28-000000000003", "28-00000000000a")
	got, err := b.Read(context.Background())
	want := []reading.Reading{w1Temp("28-000000000003", 25.0625), w1Temp("28-00000000000a", -55)}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("Read = %+v, %v; want %+v", got, err, want)
	}
	_, _, early, log := k.counts()
	if wantLog := []string{"trigger w1_bus_master1", "read 28-000000000003", "read 28-00000000000a"}; !slices.Equal(log, wantLog) || early != 0 {
		t.Errorf("kernel saw %q (%d early reads), want %q", log, early, wantLog)
	}
	if _, n := k.stateOf("w1_bus_master1"); n != 1 {
		t.Errorf("therm_bulk_read read %d times, want 1", n)
	}
}

// TestW1BulkMixed reads a bus with every kind of device: good ones of three
// families, one the kernel cannot bulk-convert, a CRC failure and a
// power-on-reset value; the good readings come with an error naming the
// two failed devices.
func TestW1BulkMixed(t *testing.T) {
	t.Parallel()
	k := newFakeW1Therm(t, "mixed")
	k.pendingPolls = 1
	b := newTestW1Bulk(t, k,
		"28-0316a2b8ff01", "28-0000000000f6", "28-00000000000b", "42-000000000001", "10-000000000001", "28-0000000000f1")
	got, err := b.Read(context.Background())
	want := []reading.Reading{
		w1Temp("28-0316a2b8ff01", 25.875), // real capture 019E
		w1Temp("28-00000000000b", 25),     // 0197 at 9 bits: 0190
		w1Temp("42-000000000001", 10.125), // DS28EA00 00A2
		w1Temp("10-000000000001", 25),     // DS18S20 0032, COUNT_REMAIN 12
	}
	if !slices.Equal(got, want) {
		t.Errorf("readings\n%+v\nwant\n%+v", got, want)
	}
	des := deviceErrors(t, err)
	if len(des) != 2 {
		t.Fatalf("error %v: want 2 device errors", err)
	}
	for i, w := range []struct {
		address, reason, msg string
		sentinel             error
	}{
		{"28-0000000000f6", "power_on_reset", "w1: 28-0000000000f6: DS18B20 read 85 °C with byte 6 = 0x0c: power-on reset value", ErrPowerOnReset},
		{"28-0000000000f1", "crc", "w1: 28-0000000000f1: kernel reported crc=c9 NO, byte 8 is 8a: crc mismatch", ErrCRC},
	} {
		de := des[i]
		if de.Address != w.address || de.Error() != w.msg || Reason(de) != w.reason || !errors.Is(de, w.sentinel) {
			t.Errorf("device error %d: %q (address %s, reason %s), want %q", i, de, de.Address, Reason(de), w.msg)
		}
	}
	if !errors.Is(err, ErrCRC) || !errors.Is(err, ErrPowerOnReset) {
		t.Errorf("errors.Is does not see through the joined error %v", err)
	}
	var de *DeviceError
	if !errors.As(err, &de) || de.Address != "28-0000000000f6" {
		t.Errorf("errors.As found %v", de)
	}

	triggers, conversions, early, log := k.counts()
	if want := map[string]int{"w1_bus_master1": 1}; !equalCounts(triggers, want) {
		t.Errorf("triggers %v, want %v", triggers, want)
	}
	// The DS28EA00 converts on its own; the power-on-reset device converts
	// once more, after every other device was read.
	if want := map[string]int{"42-000000000001": 1, "28-0000000000f6": 1}; !equalCounts(conversions, want) {
		t.Errorf("conversions %v, want %v", conversions, want)
	}
	if last := log[len(log)-1]; last != "convert 28-0000000000f6" || early != 0 {
		t.Errorf("kernel saw %q (%d early reads); want the power-on-reset re-read last", log, early)
	}
	if s, want := b.Stats(), (W1BulkStats{BulkConversions: 1, SingleReads: 2}); s != want {
		t.Errorf("Stats %+v, want %+v", s, want)
	}
	// 28-0316a2b8ff02 shares the bus but is not configured: its result
	// waits, and therm_bulk_read keeps reading 1 until someone reads it.
	if s, _ := k.stateOf("w1_bus_master1"); s != 1 {
		t.Errorf("therm_bulk_read after the Read: %d, want 1", s)
	}
	if _, err := b.Read(context.Background()); !errors.Is(err, ErrCRC) {
		t.Errorf("second Read: %v", err)
	}
	if triggers, _, _, _ := k.counts(); triggers["w1_bus_master1"] != 2 {
		t.Errorf("second Read: %d triggers in all, want 2", triggers["w1_bus_master1"])
	}
}

func TestW1BulkPowerOnResetRereads(t *testing.T) {
	t.Parallel()
	por := w1SlavePOR
	good := w1SlaveGood
	empty := ""
	for _, tc := range []struct {
		name        string
		files       []string
		want        float64
		err         error
		conversions int
	}{
		{"reset then good", []string{por, good}, 25.875, nil, 1},
		{"reset twice", []string{por, por}, 0, ErrPowerOnReset, 1},
		{"reset then empty", []string{por, empty}, 0, ErrBadData, 1},
		{"good", []string{good}, 25.875, nil, 0},
		{"empty is not re-read", []string{empty, good}, 0, ErrBadData, 0},
	} {
		k := newFakeW1Therm(t, "datasheet")
		k.queue["28-000000000003"] = tc.files
		b := newTestW1Bulk(t, k, "28-000000000003")
		got, err := b.Read(context.Background())
		switch {
		case tc.err == nil && (err != nil || len(got) != 1 || got[0].Value != tc.want):
			t.Errorf("%s: Read = %+v, %v; want %v °C", tc.name, got, err, tc.want)
		case tc.err != nil && (!errors.Is(err, tc.err) || got != nil):
			t.Errorf("%s: Read = %+v, %v; want error %v", tc.name, got, err, tc.err)
		}
		if _, conversions, _, _ := k.counts(); conversions["28-000000000003"] != tc.conversions {
			t.Errorf("%s: %d conversions of its own, want %d", tc.name, conversions["28-000000000003"], tc.conversions)
		}
	}
}

// TestW1BulkTwoBuses triggers each bus once and keeps the order of the
// addresses given, whatever their bus.
func TestW1BulkTwoBuses(t *testing.T) {
	t.Parallel()
	k := newFakeW1Therm(t, "twobus")
	k.pendingPolls = 2
	b := newTestW1Bulk(t, k, "28-000000000008", "28-000000000003", "28-000000000009", "28-000000000004")
	got, err := b.Read(context.Background())
	want := []reading.Reading{
		w1Temp("28-000000000008", -10.125),
		w1Temp("28-000000000003", 25.0625),
		w1Temp("28-000000000009", -25.0625),
		w1Temp("28-000000000004", 10.125),
	}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("Read = %+v, %v\nwant %+v", got, err, want)
	}
	triggers, conversions, early, _ := k.counts()
	if want := map[string]int{"w1_bus_master1": 1, "w1_bus_master2": 1}; !equalCounts(triggers, want) {
		t.Errorf("triggers %v, want %v", triggers, want)
	}
	if len(conversions) != 0 || early != 0 {
		t.Errorf("conversions of their own %v, %d early reads; want none", conversions, early)
	}
	if s, want := b.Stats(), (W1BulkStats{BulkConversions: 2}); s != want {
		t.Errorf("Stats %+v, want %+v", s, want)
	}
}

// TestW1BulkFallback covers every reason to read a bus one device at a
// time.
func TestW1BulkFallback(t *testing.T) {
	t.Parallel()
	all := []reading.Reading{
		w1Temp("28-000000000003", 25.0625),
		w1Temp("28-000000000004", 10.125),
		w1Temp("28-000000000008", -10.125),
		w1Temp("28-000000000009", -25.0625),
	}
	for _, tc := range []struct {
		name        string
		setup       func(*fakeW1Therm, *W1Bulk)
		want        []reading.Reading
		errs        error // every device fails with it, when set
		triggers    map[string]int
		conversions int
		reason      string // LastFallback
		cause       error  // LastFallback wraps it
	}{
		{
			// w1_therm creates therm_bulk_read on the first bus only.
			name:        "second bus without therm_bulk_read",
			setup:       func(k *fakeW1Therm, _ *W1Bulk) { k.remove("w1_bus_master2", "therm_bulk_read") },
			want:        all,
			triggers:    map[string]int{"w1_bus_master1": 1},
			conversions: 2,
			reason:      "w1: w1_bus_master2: no therm_bulk_read (kernel before 5.8, or not the first bus with a thermometer): open testdata/w1bulk/twobus/w1_bus_master2/therm_bulk_read: no such file or directory",
			cause:       fs.ErrNotExist,
		},
		{
			name:        "not root",
			setup:       func(k *fakeW1Therm, _ *W1Bulk) { k.denyWrite = true },
			want:        all,
			triggers:    map[string]int{},
			conversions: 4,
			reason:      ": trigger a bulk conversion: open testdata/w1bulk/twobus/w1_bus_master",
			cause:       fs.ErrPermission,
		},
		{
			name:        "trigger ignored by the kernel",
			setup:       func(k *fakeW1Therm, _ *W1Bulk) { k.ignoreTrigger = true },
			want:        all,
			triggers:    map[string]int{},
			conversions: 4,
			reason:      "therm_bulk_read reads 0 after the trigger: no conversion started",
		},
		{
			// The devices still convert when W1Bulk gives up: the kernel
			// returns empty files.
			name: "conversion never completes",
			setup: func(k *fakeW1Therm, b *W1Bulk) {
				k.pendingPolls = 1 << 30
				b.margin = 20 * time.Millisecond
			},
			errs:     ErrBadData,
			triggers: map[string]int{"w1_bus_master1": 1, "w1_bus_master2": 1},
			reason:   "after the trigger: bulk conversion timed out",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := newFakeW1Therm(t, "twobus")
			b := newTestW1Bulk(t, k, "28-000000000003", "28-000000000004", "28-000000000008", "28-000000000009")
			tc.setup(k, b)
			got, err := b.Read(context.Background())
			if tc.errs != nil {
				des := deviceErrors(t, err)
				if got != nil || len(des) != 4 {
					t.Fatalf("Read = %+v, %v; want 4 device errors", got, err)
				}
				for _, de := range des {
					if !errors.Is(de, tc.errs) {
						t.Errorf("%v, want %v", de, tc.errs)
					}
				}
			} else if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("Read = %+v, %v\nwant %+v", got, err, tc.want)
			}
			triggers, conversions, _, _ := k.counts()
			if !equalCounts(triggers, tc.triggers) {
				t.Errorf("triggers %v, want %v", triggers, tc.triggers)
			}
			n := 0
			for _, c := range conversions {
				n += c
			}
			if n != tc.conversions {
				t.Errorf("%d conversions of their own (%v), want %d", n, conversions, tc.conversions)
			}
			s := b.Stats()
			if s.Fallbacks == 0 || s.LastFallback == nil || !strings.Contains(s.LastFallback.Error(), tc.reason) ||
				tc.cause != nil && !errors.Is(s.LastFallback, tc.cause) {
				t.Errorf("Stats %+v, want a fallback %q wrapping %v", s, tc.reason, tc.cause)
			}
			if !strings.HasPrefix(s.LastFallback.Error(), "w1: w1_bus_master") {
				t.Errorf("LastFallback %q does not name the bus", s.LastFallback)
			}
			if want := uint64(tc.conversions); tc.errs == nil && s.SingleReads != want {
				t.Errorf("Stats.SingleReads %d, want %d", s.SingleReads, want)
			}
		})
	}
}

// TestW1BulkOldKernel reads real files (no fake): a bus without
// therm_bulk_read is read one device at a time, and W1Bulk creates nothing.
func TestW1BulkOldKernel(t *testing.T) {
	t.Parallel()
	sysfs := filepath.Join(w1BulkTestdata, "oldkernel")
	b, err := NewW1Bulk(sysfs, []string{"28-0316a2b8ff02", "28-0316a2b8ff01"}, fixedClock)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Read(context.Background())
	want := []reading.Reading{w1Temp("28-0316a2b8ff02", 31.25), w1Temp("28-0316a2b8ff01", 25.875)}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("Read = %+v, %v; want %+v", got, err, want)
	}
	s := b.Stats()
	if s.Fallbacks != 1 || s.SingleReads != 2 || s.BulkConversions != 0 || !errors.Is(s.LastFallback, fs.ErrNotExist) {
		t.Errorf("Stats %+v", s)
	}
	if _, err := os.Stat(filepath.Join(sysfs, "w1_bus_master1", "therm_bulk_read")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("therm_bulk_read: %v; want it still missing", err)
	}
}

func TestW1BulkMissingDevice(t *testing.T) {
	t.Parallel()
	k := newFakeW1Therm(t, "datasheet")
	b := newTestW1Bulk(t, k, "28-0000000000fa", "28-000000000003")
	got, err := b.Read(context.Background())
	if want := []reading.Reading{w1Temp("28-000000000003", 25.0625)}; !slices.Equal(got, want) {
		t.Errorf("readings %+v, want %+v", got, want)
	}
	des := deviceErrors(t, err)
	want := "w1: 28-0000000000fa: not on the bus: no device (open testdata/w1bulk/datasheet/28-0000000000fa/w1_slave: no such file or directory)"
	if len(des) != 1 || des[0].Address != "28-0000000000fa" || des[0].Error() != want ||
		!errors.Is(err, ErrNoDevice) || !errors.Is(err, fs.ErrNotExist) || Reason(err) != "no_device" {
		t.Errorf("error %q, want %q", err, want)
	}
	if s, want := b.Stats(), (W1BulkStats{BulkConversions: 1, SingleReads: 1}); s != want {
		t.Errorf("Stats %+v, want %+v", s, want)
	}

	// No 1-Wire bus at all: every device fails, and the Read counts as a
	// fallback.
	b, err = NewW1Bulk(filepath.Join(t.TempDir(), "w1"), []string{"28-000000000003", "10-000000000001"}, fixedClock)
	if err != nil {
		t.Fatal(err)
	}
	got, err = b.Read(context.Background())
	if des := deviceErrors(t, err); got != nil || len(des) != 2 || Reason(des[0]) != "no_device" || Reason(des[1]) != "no_device" {
		t.Errorf("Read without sysfs = %+v, %v", got, err)
	}
	if s := b.Stats(); s.Fallbacks != 1 || !errors.Is(s.LastFallback, fs.ErrNotExist) ||
		!strings.HasPrefix(s.LastFallback.Error(), "w1: list the bus masters: ") {
		t.Errorf("Stats %+v", s)
	}
}

// TestW1BulkReusesListing: the masters are listed at the first Read, then
// again only once the listing is w1RelistEvery old or after a Read in which
// a device failed.
func TestW1BulkReusesListing(t *testing.T) {
	t.Parallel()
	k := newFakeW1Therm(t, "twobus")
	b := newTestW1Bulk(t, k, "28-000000000003", "28-000000000004", "28-000000000008", "28-000000000009")
	var mu sync.Mutex
	now := w1TestTime
	b.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	listings := func() int { k.mu.Lock(); defer k.mu.Unlock(); return k.dirReads }
	read := func(wantErr bool) {
		t.Helper()
		if _, err := b.Read(context.Background()); (err != nil) != wantErr {
			t.Fatalf("Read: %v, want an error: %v", err, wantErr)
		}
	}
	for range 3 {
		read(false)
	}
	if n := listings(); n != 1 {
		t.Errorf("%d listings after 3 Reads, want 1", n)
	}
	mu.Lock()
	now = now.Add(w1RelistEvery)
	mu.Unlock()
	read(false)
	if n := listings(); n != 2 {
		t.Errorf("%d listings after the listing got old, want 2", n)
	}
	k.remove("28-000000000004", "w1_slave")
	read(true) // with the listing it had
	read(true) // listed again
	if n := listings(); n != 3 {
		t.Errorf("%d listings after a device failed, want 3", n)
	}
	if s := b.Stats(); s.BulkConversions != 12 || s.Fallbacks != 0 {
		t.Errorf("Stats %+v, want 12 bulk conversions (2 buses × 6 Reads) and no fallback", s)
	}
}

// readAsync runs b.Read(ctx) in a goroutine.
func readAsync(b *W1Bulk, ctx context.Context) chan error {
	errc := make(chan error, 1)
	go func() {
		_, err := b.Read(ctx)
		errc <- err
	}()
	return errc
}

// receive returns the error from errc, for at most 10 s.
func receive(t *testing.T, errc chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return after its context was cancelled")
		return nil
	}
}

func TestW1BulkCancelWhilePending(t *testing.T) {
	t.Parallel()
	k := newFakeW1Therm(t, "datasheet")
	k.pendingPolls = 1 << 30
	b := newTestW1Bulk(t, k, "28-000000000003", "28-000000000004")
	ctx, cancel := context.WithCancel(context.Background())
	errc := readAsync(b, ctx)
	testenv.WaitFor(t, "a poll of therm_bulk_read", func() bool {
		_, n := k.stateOf("w1_bus_master1")
		return n >= 2
	})
	cancel()
	if err := receive(t, errc); err != context.Canceled {
		t.Errorf("Read after cancel: %v, want context.Canceled", err)
	}
	if _, _, early, log := k.counts(); early != 0 || len(log) != 1 {
		t.Errorf("kernel saw %q; want the trigger only", log)
	}
	if s := b.Stats(); s != (W1BulkStats{}) {
		t.Errorf("Stats %+v, want none", s)
	}

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if got, err := b.Read(ctx); got != nil || err != context.Canceled {
		t.Errorf("Read with a cancelled context: %v, %v", got, err)
	}
}

// TestW1BulkCancelBlockedTrigger blocks the trigger write in the kernel: Read
// returns on cancel, the next Read fails the bus's devices with ErrBusy
// instead of writing again, and once the write finishes Reads work again.
func TestW1BulkCancelBlockedTrigger(t *testing.T) {
	t.Parallel()
	k := newFakeW1Therm(t, "twobus")
	k.gate = make(chan struct{})
	b := newTestW1Bulk(t, k, "28-000000000003", "28-000000000004")
	ctx, cancel := context.WithCancel(context.Background())
	errc := readAsync(b, ctx)
	select {
	case <-k.entered:
	case err := <-errc:
		t.Fatalf("Read returned %v without writing the trigger", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no trigger written within 10 s")
	}
	cancel()
	if err := receive(t, errc); err != context.Canceled {
		t.Errorf("Read after cancel: %v, want context.Canceled", err)
	}

	got, err := b.Read(context.Background())
	des := deviceErrors(t, err)
	want := "w1: 28-000000000003: w1_bus_master1: the previous bulk conversion is still blocked in the kernel: previous read still pending"
	if got != nil || len(des) != 2 || des[0].Error() != want || Reason(des[1]) != "busy" {
		t.Errorf("Read during a blocked trigger = %+v, %v; want %q", got, err, want)
	}

	close(k.gate)
	var readings []reading.Reading
	testenv.WaitFor(t, "a Read that is not busy", func() bool {
		readings, err = b.Read(context.Background())
		return !errors.Is(err, ErrBusy)
	})
	if want := []reading.Reading{w1Temp("28-000000000003", 25.0625), w1Temp("28-000000000004", 10.125)}; err != nil || !slices.Equal(readings, want) {
		t.Errorf("Read after the trigger finished = %+v, %v; want %+v", readings, err, want)
	}
	if triggers, _, early, _ := k.counts(); triggers["w1_bus_master1"] != 2 || early != 0 {
		t.Errorf("triggers %v, %d early reads; want 2 and none", triggers, early)
	}
}

// abandonBlockedRead starts a Read whose read of device 0 blocks in the
// "kernel", cancels it once that read blocked, and checks that Read
// returned context.Canceled. The device read stays blocked until release
// is called (once or more; the test's cleanup does too).
func abandonBlockedRead(t *testing.T, ctx context.Context, k *fakeW1Therm, b *W1Bulk) (release func()) {
	t.Helper()
	gate, entered := make(chan struct{}), make(chan struct{}, 1)
	var blocked atomic.Bool
	blocked.Store(true)
	b.devs[0].readFile = func(name string) ([]byte, error) {
		if blocked.Load() {
			entered <- struct{}{}
			<-gate
		}
		return k.ReadFile(name)
	}
	release = sync.OnceFunc(func() { blocked.Store(false); close(gate) })
	t.Cleanup(release)
	rctx, cancel := context.WithCancel(ctx)
	errc := readAsync(b, rctx)
	waitChan(t, "the device read to block", entered)
	cancel()
	if err := receive(t, errc); err != context.Canceled {
		t.Errorf("Read after cancel: %v, want context.Canceled", err)
	}
	return release
}

// waitChan fails t unless c receives (or is closed) within 10 s.
func waitChan(t *testing.T, what string, c chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("waited 10 s for %s", what)
	}
}

// TestW1BulkCancelBlockedDeviceRead blocks one device's w1_slave read in
// the kernel: Read returns on cancel, and while the worker is still blocked
// in that abandoned round the next Read does not wait for it: it runs in a
// goroutine of its own, fails that device with ErrBusy and reads the
// others. Once the kernel returns, the device reads again and the worker
// runs the rounds again.
func TestW1BulkCancelBlockedDeviceRead(t *testing.T) {
	t.Parallel()
	k := newFakeW1Therm(t, "datasheet")
	b := newTestW1Bulk(t, k, "28-000000000003", "28-000000000004")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := b.Read(ctx); err != nil {
		t.Fatal(err)
	}
	w := b.worker
	if w == nil || w.state.Load() != w1Idle {
		t.Fatalf("no idle worker after a Read: %+v", w)
	}

	release := abandonBlockedRead(t, ctx, k, b)
	if s := w.state.Load(); s != w1Abandoned {
		t.Fatalf("worker state %d, want %d (abandoned, blocked in the kernel)", s, w1Abandoned)
	}

	got, err := b.Read(ctx)
	if des := deviceErrors(t, err); len(des) != 1 || des[0].Address != "28-000000000003" || !errors.Is(err, ErrBusy) ||
		len(got) != 1 || got[0] != w1Temp("28-000000000004", 10.125) {
		t.Errorf("Read while the worker is blocked = %+v, %v; want 28-000000000004 read and 28-000000000003 busy", got, err)
	}
	if s := w.state.Load(); s != w1Abandoned {
		t.Errorf("worker state %d after that Read, want still %d: the Read did not run on its own", s, w1Abandoned)
	}

	release()
	testenv.WaitFor(t, "the worker to end its abandoned round", func() bool { return w.state.Load() == w1Idle })
	got, err = b.Read(ctx)
	if want := []reading.Reading{w1Temp("28-000000000003", 25.0625), w1Temp("28-000000000004", 10.125)}; err != nil || !slices.Equal(got, want) {
		t.Errorf("Read after the kernel returned = %+v, %v; want %+v", got, err, want)
	}
	if b.worker != w || w.state.Load() != w1Idle {
		t.Errorf("the worker was replaced or not released: %p, was %p, state %d", b.worker, w, w.state.Load())
	}
}

// TestW1BulkCloseStopsWorker: Close stops the worker (after the round it
// is blocked in, if any), and a Read after Close starts a new one.
func TestW1BulkCloseStopsWorker(t *testing.T) {
	t.Parallel()
	k := newFakeW1Therm(t, "datasheet")
	b := newTestW1Bulk(t, k, "28-000000000003", "28-000000000004")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if b.worker != nil {
		t.Fatal("a worker before the first Read")
	}
	if _, err := b.Read(ctx); err != nil {
		t.Fatal(err)
	}
	first := b.worker
	b.Close()
	waitChan(t, "the worker to stop after Close", first.stopped)
	if b.worker != nil {
		t.Error("a worker after Close")
	}

	got, err := b.Read(ctx)
	if err != nil || len(got) != 2 {
		t.Fatalf("Read after Close = %+v, %v", got, err)
	}
	second := b.worker
	if second == nil || second == first {
		t.Fatalf("Read after Close: worker %p, the first was %p", second, first)
	}

	// Blocked in the kernel: it stops once the kernel returns.
	release := abandonBlockedRead(t, ctx, k, b)
	b.Close()
	select {
	case <-second.stopped:
		t.Error("the worker stopped while blocked in the kernel")
	default:
	}
	release()
	waitChan(t, "the worker to stop once the kernel returned", second.stopped)
}

// TestW1BulkConcurrentReads reads two buses from several goroutines at
// once: the worker and the Reads that find it busy share devices and buses
// only through the busy flags, and every reading returned is right (run
// with -race).
func TestW1BulkConcurrentReads(t *testing.T) {
	t.Parallel()
	k := newFakeW1Therm(t, "twobus")
	b := newTestW1Bulk(t, k, "28-000000000008", "28-000000000003", "28-000000000009", "28-000000000004")
	want := map[string]float64{
		"28-000000000008": -10.125, "28-000000000003": 25.0625, "28-000000000009": -25.0625, "28-000000000004": 10.125,
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var good atomic.Int64
	for range 4 {
		wg.Go(func() {
			for range 25 {
				got, _ := b.Read(ctx)
				for _, r := range got {
					if r.Value != want[r.Sensor] {
						t.Errorf("%s read %v °C, want %v", r.Sensor, r.Value, want[r.Sensor])
					}
				}
				good.Add(int64(len(got)))
			}
		})
	}
	wg.Wait()
	if good.Load() == 0 {
		t.Error("no reading in 100 concurrent Reads")
	}
}

func TestNewW1Bulk(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addresses []string
		err       string
	}{
		{nil, "w1: bulk read: no device addresses"},
		{[]string{"28-0316a2b8ff01", "29-0316a2b8ff01", "28-0316a2b8ff01", "w1_bus_master1"},
			`w1: address "29-0316a2b8ff01": family 0x29 is not a temperature sensor (want 10, 22, 28, 3b or 42)` + "\n" +
				`w1: address "28-0316a2b8ff01": listed twice` + "\n" +
				`w1: address "w1_bus_master1": want family-serial like 28-0316a2b8ff01`},
	} {
		if _, err := NewW1Bulk("", tc.addresses, nil); err == nil || err.Error() != tc.err {
			t.Errorf("NewW1Bulk(%q) = %v, want %s", tc.addresses, err, tc.err)
		}
	}
	in := []string{"28-0316a2b8ff02", "42-000000000001"}
	b, err := NewW1Bulk("", in, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := b.Addresses()
	a[0] = "changed"
	if got := b.Addresses(); !slices.Equal(got, in) {
		t.Errorf("Addresses() = %q, want %q", got, in)
	}
	if b.sysfs != DefaultW1SysfsDir || b.devs[1].path != "/sys/bus/w1/devices/42-000000000001/w1_slave" {
		t.Errorf("default sysfs %q, path %q", b.sysfs, b.devs[1].path)
	}
}

func TestW1BulkConvTime(t *testing.T) {
	t.Parallel()
	b, err := NewW1Bulk(filepath.Join(w1BulkTestdata, "mixed"), []string{"28-0316a2b8ff01"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for address, want := range map[string]time.Duration{
		"28-0316a2b8ff01": 750 * time.Millisecond, // 12 bits
		"28-00000000000b": 95 * time.Millisecond,  // 9 bits
		"10-000000000001": 750 * time.Millisecond, // DS18S20
		"28-0000000000fa": 750 * time.Millisecond, // no conv_time: the default
	} {
		if got := b.convTime(address); got != want {
			t.Errorf("convTime(%s) = %v, want %v", address, got, want)
		}
	}
}

func TestParseW1BulkFiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"-1\n", -1, true}, {"0\n", 0, true}, {"1\n", 1, true}, {"1", 1, true},
		{"", 0, false}, {"2\n", 0, false}, {"trigger\n", 0, false}, {" 1\n", 0, false}, {"1\n\n", 0, false},
	} {
		got, err := parseW1BulkState([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want || err != nil && !errors.Is(err, ErrBadData) {
			t.Errorf("parseW1BulkState(%q) = %d, %v", tc.in, got, err)
		}
	}
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"750\n", 750 * time.Millisecond}, {"95\n", 95 * time.Millisecond}, {"1\n", time.Millisecond},
		{"10000\n", 10 * time.Second}, {"10001\n", 0}, {"0\n", 0}, {"-19\n", 0}, {"", 0}, {"75O\n", 0},
	} {
		got, err := parseW1ConvTime([]byte(tc.in))
		if got != tc.want || (err == nil) != (tc.want != 0) || err != nil && !errors.Is(err, ErrBadData) {
			t.Errorf("parseW1ConvTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestOSW1FS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "therm_bulk_read")
	var fsys w1fs = osW1FS{}
	if err := fsys.WriteFile(file, []byte("trigger\n")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("WriteFile of a missing file: %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(file); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("WriteFile created the file: %v", err)
	}
	if err := os.WriteFile(file, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fsys.WriteFile(file, []byte("trigger\n")); err != nil {
		t.Fatal(err)
	}
	if got, err := fsys.ReadFile(file); string(got) != "trigger\n" || err != nil {
		t.Errorf("ReadFile = %q, %v", got, err)
	}
	if names, err := fsys.ReadDir(dir); !slices.Equal(names, []string{"therm_bulk_read"}) || err != nil {
		t.Errorf("ReadDir = %q, %v", names, err)
	}
	if _, err := fsys.ReadDir(file); err == nil {
		t.Error("ReadDir of a file: no error")
	}
	if err := fsys.CanWrite(file); err != nil {
		t.Errorf("CanWrite of a writable file: %v", err)
	}
	if err := fsys.CanWrite(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CanWrite of a missing file: %v, want fs.ErrNotExist", err)
	}
	// Root may write any plain file; a sysfs attribute without a store
	// method refuses to open for writing even to root (kernfs), and a
	// read-only /sys (a container) refuses too.
	if err := fsys.CanWrite("/sys/kernel/uevent_seqnum"); err == nil {
		t.Error("CanWrite of /sys/kernel/uevent_seqnum: no error")
	}
	if got, _ := fsys.ReadFile(file); string(got) != "trigger\n" {
		t.Errorf("CanWrite changed the file: %q", got)
	}
}

// FuzzParseW1BulkFiles feeds therm_bulk_read and conv_time contents to their
// parsers: they accept only what the kernel prints, and every error wraps
// ErrBadData.
func FuzzParseW1BulkFiles(f *testing.F) {
	for _, s := range []string{"-1\n", "0\n", "1\n", "750\n", "95\n", "-19\n", "trigger\n", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if s, err := parseW1BulkState(data); err != nil {
			if !errors.Is(err, ErrBadData) {
				t.Fatalf("error %v does not wrap ErrBadData", err)
			}
		} else if got := fmt.Sprintf("%d\n", s); got != string(data) && got != string(data)+"\n" {
			t.Fatalf("parseW1BulkState(%q) = %d", data, s)
		}
		if d, err := parseW1ConvTime(data); err != nil {
			if !errors.Is(err, ErrBadData) {
				t.Fatalf("error %v does not wrap ErrBadData", err)
			}
		} else if d < time.Millisecond || d > 10*time.Second || d%time.Millisecond != 0 {
			t.Fatalf("parseW1ConvTime(%q) = %v", data, d)
		}
	})
}

// BenchmarkW1BulkVsSequential reads N devices per op through the fake
// w1_therm with the conversion time scaled down from 750 ms to 75 ms, slept
// for real: bulk is one W1Bulk.Read (one trigger, blocking for one
// conversion, as in the kernel), sequential is one W1.Read per device (a
// conversion each). Expect ≈ 75 ms per op for bulk whatever N, ≈ N × 75 ms
// for sequential.
func BenchmarkW1BulkVsSequential(b *testing.B) {
	const conv = 75 * time.Millisecond
	for _, n := range []int{1, 4, 10} {
		addresses := make([]string, n)
		for i := range addresses {
			addresses[i] = fmt.Sprintf("28-%012x", i+1)
		}
		b.Run(fmt.Sprintf("N=%d/bulk", n), func(b *testing.B) {
			k := newFakeW1Therm(b, "datasheet")
			k.convTime, k.blocking = conv, true
			w := newTestW1Bulk(b, k, addresses...)
			w.pollEvery = w1BulkPollEvery
			for b.Loop() {
				if got, err := w.Read(context.Background()); err != nil || len(got) != n {
					b.Fatalf("Read = %d readings, %v", len(got), err)
				}
			}
		})
		b.Run(fmt.Sprintf("N=%d/sequential", n), func(b *testing.B) {
			k := newFakeW1Therm(b, "datasheet")
			k.convTime = conv
			var ws []*W1
			for _, a := range addresses {
				w, err := NewW1(k.root, a, fixedClock)
				if err != nil {
					b.Fatal(err)
				}
				w.readFile = k.ReadFile
				ws = append(ws, w)
			}
			for b.Loop() {
				for _, w := range ws {
					if _, err := w.Read(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
