package sensors

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// w1SlaveOther is a second good w1_slave (31.25 °C), to tell a re-read
// from a stale one.
const w1SlaveOther = "f4 01 4b 46 7f ff 0c 10 c7 : crc=c7 YES\nf4 01 4b 46 7f ff 0c 10 c7 t=31250\n"

// w1KeptAddress is the device of newKeptW1.
const w1KeptAddress = "28-0316a2b8ff01"

// writeW1Device writes <root>/<address>/w1_slave, in place when it exists
// (os.WriteFile truncates the same inode), as sysfs shows new contents in
// the same file.
func writeW1Device(t *testing.T, root, address, content string) string {
	t.Helper()
	dir := filepath.Join(root, address)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "w1_slave")
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// newKeptW1 returns a W1 reading a w1_slave of its own (w1SlaveGood) in a
// temporary tree, and the tree.
func newKeptW1(t *testing.T) (string, *W1) {
	t.Helper()
	root := t.TempDir()
	writeW1Device(t, root, w1KeptAddress, w1SlaveGood)
	w, err := NewW1(root, w1KeptAddress, fixedClock)
	if err != nil {
		t.Fatal(err)
	}
	return root, w
}

// readW1 reads w once and returns its value.
func readW1(t *testing.T, w *W1) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs, err := w.Read(ctx)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return rs[0].Value
}

// TestW1KeptOpenRereads: W1 keeps w1_slave open, and each Read reads it
// again from the start (one pread): contents rewritten in place between
// reads are seen at once, on the same descriptor; Close closes it.
func TestW1KeptOpenRereads(t *testing.T) {
	t.Parallel()
	root, w := newKeptW1(t)
	if got := readW1(t, w); got != 25.875 {
		t.Errorf("first Read %v °C, want 25.875", got)
	}
	if n := testenv.OpenUnder(t, root); n != 1 {
		t.Errorf("%d descriptors open on the tree after a Read, want 1 (w1_slave kept open)", n)
	}
	writeW1Device(t, root, w1KeptAddress, w1SlaveOther)
	if got := readW1(t, w); got != 31.25 {
		t.Errorf("Read after the file was rewritten in place: %v °C, want 31.25", got)
	}
	// A shorter content than before must not show the old tail.
	writeW1Device(t, root, w1KeptAddress, w1SlaveGood[:len(w1SlaveGood)-1])
	if _, err := w.Read(context.Background()); err == nil || !strings.Contains(err.Error(), "no final newline") {
		t.Errorf("Read of a truncated file: %v, want a malformed w1_slave", err)
	}
	writeW1Device(t, root, w1KeptAddress, w1SlaveGood)
	if got := readW1(t, w); got != 25.875 {
		t.Errorf("Read after the file was fixed: %v °C, want 25.875", got)
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if n := testenv.OpenUnder(t, root); n != 0 {
		t.Errorf("%d descriptors open on the tree after Close, want 0", n)
	}
}

// TestW1KeptOpenDeviceRemoved: a device removed between two reads fails
// with the same error as a read that opens the file afresh. The kernel
// fails the kept descriptor with ENODEV (kernfs); a regular file cannot,
// so the test makes the kept descriptor's pread fail that way.
func TestW1KeptOpenDeviceRemoved(t *testing.T) {
	t.Parallel()
	root, w := newKeptW1(t)
	readW1(t, w)
	if err := os.RemoveAll(filepath.Join(root, w1KeptAddress)); err != nil {
		t.Fatal(err)
	}
	var preads int
	w.slave.pread = func(fd int, p []byte, off int64) (int, error) {
		preads++
		return 0, syscall.ENODEV // kernfs_seq_start: the node is gone
	}
	_, err := w.Read(context.Background())
	fresh, _ := NewW1(root, w1KeptAddress, fixedClock)
	_, want := fresh.Read(context.Background())
	if err == nil || want == nil || err.Error() != want.Error() {
		t.Errorf("Read of a removed device: %v; want the error of a fresh open, %v", err, want)
	}
	if want := "w1: 28-0316a2b8ff01: not on the bus: no device (open "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want prefix %q", err, want)
	}
	if preads != 1 {
		t.Errorf("%d preads on the kept descriptor, want 1", preads)
	}
	if n := testenv.OpenUnder(t, root); n != 0 {
		t.Errorf("%d descriptors open on the tree, want 0", n)
	}

	// Plugged in again: the next Read opens the new file.
	w.slave.pread = syscall.Pread
	writeW1Device(t, root, w1KeptAddress, w1SlaveOther)
	if got := readW1(t, w); got != 31.25 {
		t.Errorf("Read after the device came back: %v °C, want 31.25", got)
	}
	w.Close()
}

// newW1Tree writes a sysfs tree with one master listing addresses (no
// therm_bulk_read: every device is read on its own), each device reading
// w1SlaveGood.
func newW1Tree(t *testing.T, addresses ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, a := range addresses {
		writeW1Device(t, root, a, w1SlaveGood)
	}
	writeW1Listing(t, root, "w1_bus_master1", addresses...)
	return root
}

// writeW1Listing writes master's w1_master_slaves in place.
func writeW1Listing(t *testing.T, root, master string, addresses ...string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, master), 0o755); err != nil {
		t.Fatal(err)
	}
	list := strings.Join(addresses, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(root, master, "w1_master_slaves"), []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readW1Bulk reads b once and returns the value per device.
func readW1Bulk(t *testing.T, b *W1Bulk) map[string]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs, err := b.Read(ctx)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	got := map[string]float64{}
	for _, r := range rs {
		got[r.Sensor] = r.Value
	}
	return got
}

// TestW1BulkKeptOpen: W1Bulk keeps one descriptor per device open between
// Reads, sees contents rewritten in place, reopens every file when the bus
// listing changes, and closes them all on Close.
//
// A file replaced by a rename stands for a device unplugged and plugged in
// again: the kernel fails the old descriptor (ENODEV) and W1Bulk reopens,
// but a regular file keeps reading its old inode, so the fake sees the new
// file only once something reopens it: here, the listing that changed.
func TestW1BulkKeptOpen(t *testing.T) {
	t.Parallel()
	addresses := []string{"28-000000000001", "28-000000000002", "28-000000000003"}
	root := newW1Tree(t, addresses...)
	before := testenv.OpenUnder(t, root)
	b, err := NewW1Bulk(root, addresses, fixedClock)
	if err != nil {
		t.Fatal(err)
	}
	now := w1TestTime
	b.now = func() time.Time { return now }
	for range 2 {
		if got := readW1Bulk(t, b); len(got) != 3 || got[addresses[0]] != 25.875 {
			t.Fatalf("Read = %v, want 25.875 °C from each device", got)
		}
	}
	if n := testenv.OpenUnder(t, root); n != before+len(addresses) {
		t.Errorf("%d descriptors open on the tree, want %d (one w1_slave per device)", n, before+len(addresses))
	}

	// Rewritten in place: the next Read sees it.
	writeW1Device(t, root, addresses[0], w1SlaveOther)
	if got := readW1Bulk(t, b); got[addresses[0]] != 31.25 {
		t.Errorf("Read after a rewrite in place: %v °C, want 31.25", got[addresses[0]])
	}

	// Replaced by a rename: the kept descriptor still reads the old file
	// until the listing changes.
	tmp := filepath.Join(root, "new")
	if err := os.WriteFile(tmp, []byte(w1SlaveGood), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(root, addresses[0], "w1_slave")); err != nil {
		t.Fatal(err)
	}
	if got := readW1Bulk(t, b); got[addresses[0]] != 31.25 {
		t.Errorf("Read after a rename, listing unchanged: %v °C, want the kept file's 31.25", got[addresses[0]])
	}
	writeW1Listing(t, root, "w1_bus_master1", addresses[1:]...)
	writeW1Listing(t, root, "w1_bus_master2", addresses[0])
	now = now.Add(w1RelistEvery)
	if got := readW1Bulk(t, b); got[addresses[0]] != 25.875 {
		t.Errorf("Read after the listing changed: %v °C, want the new file's 25.875", got[addresses[0]])
	}
	if n := testenv.OpenUnder(t, root); n != before+len(addresses) {
		t.Errorf("%d descriptors open on the tree after the reopen, want %d", n, before+len(addresses))
	}

	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if n := testenv.OpenUnder(t, root); n != before {
		t.Errorf("%d descriptors open on the tree after Close, want %d", n, before)
	}
}

// TestW1BulkKeptOpenDeviceRemoved: a device removed between two Reads
// fails with the error it failed with when every read opened the file, and
// its descriptor is closed; the others keep being read.
func TestW1BulkKeptOpenDeviceRemoved(t *testing.T) {
	t.Parallel()
	addresses := []string{"28-000000000001", "28-000000000002"}
	root := newW1Tree(t, addresses...)
	b, err := NewW1Bulk(root, addresses, fixedClock)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	readW1Bulk(t, b)
	if err := os.RemoveAll(filepath.Join(root, addresses[0])); err != nil {
		t.Fatal(err)
	}
	slave := filepath.Join(root, addresses[0], "w1_slave")
	b.fs.(*keptW1FS).file(slave, os.O_RDONLY).pread = func(int, []byte, int64) (int, error) {
		return 0, syscall.ENODEV // kernfs: the node is gone
	}
	rs, err := b.Read(context.Background())
	des := deviceErrors(t, err)
	want := "w1: 28-000000000001: not on the bus: no device (open " + slave + ": no such file or directory)"
	if len(rs) != 1 || rs[0].Sensor != addresses[1] || len(des) != 1 || des[0].Error() != want {
		t.Errorf("Read after a device was removed = %+v, %v; want %s read and %q", rs, err, addresses[1], want)
	}
	if n := testenv.OpenUnder(t, root); n != 1 {
		t.Errorf("%d descriptors open on the tree, want 1 (the device still there)", n)
	}
}
