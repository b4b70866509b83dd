package sensors

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// w1BenchDevices is how many devices BenchmarkW1BulkRound reads per round:
// the agent's CPU benchmark (scripts/bench.sh) runs 8.
const w1BenchDevices = 8

// w1BenchAddresses returns n DS18B20 addresses.
func w1BenchAddresses(n int) []string {
	a := make([]string, n)
	for i := range a {
		a[i] = fmt.Sprintf("28-%012x", i+1)
	}
	return a
}

// bulkFileW1FS is the files of a real tree (keptW1FS) with the master's
// therm_bulk_read behaving as the kernel's: the trigger write really
// writes the file and then blocks for the conversion (convTime), and a
// read returns "1\n" (converted, results not read yet). A regular file
// cannot show what was not written to it.
type bulkFileW1FS struct {
	*keptW1FS
	convTime time.Duration
	done     []byte
}

func (f *bulkFileW1FS) ReadFile(name string) ([]byte, error) {
	if filepath.Base(name) == "therm_bulk_read" {
		return f.done, nil
	}
	return f.keptW1FS.ReadFile(name)
}

func (f *bulkFileW1FS) WriteFile(name string, data []byte) error {
	err := f.keptW1FS.WriteFile(name, data)
	if err == nil && filepath.Base(name) == "therm_bulk_read" {
		time.Sleep(f.convTime) // the conversion, as the kernel blocks the write
	}
	return err
}

// newW1BulkBench returns a W1Bulk reading n devices in a tree of regular
// files under a temporary directory, the devices on a master with
// therm_bulk_read (bus) or on no master at all (each read on its own, as
// in scripts/bench.sh's tree).
func newW1BulkBench(tb testing.TB, n int, bus bool) *W1Bulk {
	tb.Helper()
	root := tb.TempDir()
	addresses := w1BenchAddresses(n)
	for _, a := range addresses {
		dir := filepath.Join(root, a)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "w1_slave"), []byte(w1SlaveGood), 0o644); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "conv_time"), []byte("1\n"), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	b, err := NewW1Bulk(root, addresses, fixedClock)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	if !bus {
		return b
	}
	master := filepath.Join(root, "w1_bus_master1")
	if err := os.MkdirAll(master, 0o755); err != nil {
		tb.Fatal(err)
	}
	var list []byte
	for _, a := range addresses {
		list = append(list, a+"\n"...)
	}
	if err := os.WriteFile(filepath.Join(master, "w1_master_slaves"), list, 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(master, "therm_bulk_read"), []byte("0\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	b.fs = &bulkFileW1FS{keptW1FS: b.fs.(*keptW1FS), convTime: time.Millisecond, done: []byte("1\n")}
	return b
}

// TestW1BulkRoundAllocs: with the masters' listing reused, a Read of 8
// devices allocates only the readings it returns, on no master and on one
// converting in bulk: the worker, its results, the groups, the file
// buffers and the parse are reused or allocation-free.
func TestW1BulkRoundAllocs(t *testing.T) {
	for _, bus := range []bool{false, true} {
		b := newW1BulkBench(t, w1BenchDevices, bus)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		read := func() {
			if got, err := b.Read(ctx); err != nil || len(got) != w1BenchDevices {
				t.Fatalf("Read = %d readings, %v", len(got), err)
			}
		}
		read() // lists the masters, opens the files, starts the worker
		if n := testing.AllocsPerRun(20, read); n != 1 {
			t.Errorf("bus %v: %v allocations per Read, want 1 (the readings)", bus, n)
		}
		if s := b.Stats(); bus && (s.BulkConversions == 0 || s.Fallbacks != 0) {
			t.Errorf("Stats %+v, want bulk conversions only", s)
		}
	}
}

// BenchmarkW1BulkRound is one W1Bulk.Read of 8 DS18B20s whose files are
// regular files, kept open as sysfs attributes are: orphans reads each
// device on its own (no master lists them, as in scripts/bench.sh), bus
// converts them in one bulk conversion (a trigger blocking 1 ms, then a
// read of each w1_slave). The listing of the masters is reused across
// rounds, as at 1 Hz. allocs/op is what a round costs the garbage
// collector; ns/op is mostly system calls (and bus's 1 ms conversion).
func BenchmarkW1BulkRound(b *testing.B) {
	for _, bus := range []bool{false, true} {
		name := "orphans"
		if bus {
			name = "bus"
		}
		b.Run(name, func(b *testing.B) {
			w := newW1BulkBench(b, w1BenchDevices, bus)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			b.ReportAllocs()
			for b.Loop() {
				if got, err := w.Read(ctx); err != nil || len(got) != w1BenchDevices {
					b.Fatalf("Read = %d readings, %v", len(got), err)
				}
			}
			if s := w.Stats(); bus && (s.BulkConversions == 0 || s.Fallbacks != 0) {
				b.Fatalf("Stats %+v, want bulk conversions only", s)
			}
		})
	}
}
