package hw

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
)

// regBus is an I²C bus of register-mapped devices: a write of one byte
// selects a register, a read returns from it; an address with no device
// NACKs.
type regBus struct {
	devices map[uint16]map[byte][]byte
	txs     int
}

var errNACK = errors.New("i2c: NACK")

func (b *regBus) String() string                  { return "fake-i2c" }
func (b *regBus) SetSpeed(physic.Frequency) error { return nil }
func (b *regBus) Close() error                    { return nil }
func (b *regBus) Tx(addr uint16, w, r []byte) error {
	b.txs++
	regs, ok := b.devices[addr]
	if !ok {
		return errNACK
	}
	var reg byte
	if len(w) > 0 {
		reg = w[0]
	}
	clear(r)
	copy(r, regs[reg])
	return nil
}

var _ i2c.BusCloser = (*regBus)(nil)

// TestScanBusIdentifiesChips: every address is probed; chips are named
// from their ID registers with the datasheets' values — chip ID register
// 0xD0: 0x58 BMP280, 0x60 BME280 (Bosch); MCP9808 manufacturer ID 0x0054
// (register 0x06) and device ID 0x0400 (register 0x07, Microchip) — and a
// device that answers but has none of them is listed unnamed.
func TestScanBusIdentifiesChips(t *testing.T) {
	bus := &regBus{devices: map[uint16]map[byte][]byte{
		0x18: {0x06: {0x00, 0x54}, 0x07: {0x04, 0x00}}, // MCP9808
		0x50: {},                                       // an EEPROM: answers, no ID
		0x76: {0xD0: {0x58}},                           // BMP280
		0x77: {0xD0: {0x60}},                           // BME280
	}}
	b := &Buses{buses: map[int]i2c.BusCloser{}, open: func(n int) (i2c.BusCloser, error) {
		if n != 1 {
			return nil, fmt.Errorf("no bus %d", n)
		}
		return bus, nil
	}}
	res := b.ScanBus(context.Background(), 1)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	got := map[uint16]string{}
	for _, f := range res.Found {
		got[f.Addr] = f.Chip
	}
	want := map[uint16]string{0x18: "mcp9808", 0x50: "", 0x76: "bmp280", 0x77: "bme280"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("found %v, want %v", got, want)
	}
	if res := b.ScanBus(context.Background(), 2); res.Err == nil {
		t.Error("scan of a bus that does not open: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if res := b.ScanBus(ctx, 1); !errors.Is(res.Err, context.Canceled) {
		t.Errorf("canceled scan: %v", res.Err)
	}
}

// slowBus fails every transfer after d, as the kernel's bit-banged driver
// does on a bus whose SCL never rises (about a second each).
type slowBus struct {
	d   time.Duration
	txs atomic.Int32
}

func (b *slowBus) String() string                  { return "slow-i2c" }
func (b *slowBus) SetSpeed(physic.Frequency) error { return nil }
func (b *slowBus) Close() error                    { return nil }
func (b *slowBus) Tx(addr uint16, w, r []byte) error {
	b.txs.Add(1)
	time.Sleep(b.d)
	return errors.New("sysfs-i2c: connection timed out")
}

// stuckBus blocks every transfer until released, and Close until the
// transfer under way has returned, as periph's sysfs bus does.
type stuckBus struct {
	release chan struct{}
	txs     atomic.Int32
	closed  atomic.Bool
}

func (b *stuckBus) String() string                  { return "stuck-i2c" }
func (b *stuckBus) SetSpeed(physic.Frequency) error { return nil }
func (b *stuckBus) Close() error {
	<-b.release
	b.closed.Store(true)
	return nil
}
func (b *stuckBus) Tx(addr uint16, w, r []byte) error {
	b.txs.Add(1)
	<-b.release
	return errNACK
}

// TestScanDeadBuses scans, as kelvin scan does, a working bus, one whose
// probes each fail after a second, one whose probe never returns, one that
// NACKs every address, and one answering every probe just under the probe
// limit. The dead ones are given up after one probe (250 ms) or the bus
// budget (3 s) and named as such, the others scanned in full, and the whole
// scan takes seconds, not the two minutes 117 one-second probes would. Close
// does not wait for the stuck probe.
func TestScanDeadBuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := &slowBus{d: time.Second}
		stuck := &stuckBus{release: make(chan struct{})}
		// 190 ms, not 200: the budget (3 s) must not fire at the instant a
		// probe returns, or the select that sees both picks either.
		sluggish := &slowBus{d: 190 * time.Millisecond}
		buses := map[int]i2c.BusCloser{
			0: &regBus{devices: map[uint16]map[byte][]byte{0x48: {}}}, // a TMP75: no ID register
			1: slow,
			2: stuck,
			3: &regBus{},
			4: sluggish,
		}
		b := &Buses{buses: map[int]i2c.BusCloser{}, open: func(n int) (i2c.BusCloser, error) { return buses[n], nil }}
		start := time.Now()
		var took []time.Duration
		var results []BusResult
		for n := range 5 {
			t0 := time.Now()
			results = append(results, b.ScanBus(t.Context(), n))
			took = append(took, time.Since(t0))
		}
		if r := results[0]; r.Err != nil || len(r.Found) != 1 || r.Found[0].Addr != 0x48 || r.Found[0].Chip != "" {
			t.Errorf("working bus: %+v", r)
		}
		for n, want := range map[int]string{
			1: "i2c: /dev/i2c-1: bus does not answer: a one-byte read of 0x03 took longer than 250ms (SDA or SCL held low? pull-ups missing?)",
			2: "i2c: /dev/i2c-2: bus does not answer: a one-byte read of 0x03 took longer than 250ms (SDA or SCL held low? pull-ups missing?)",
			4: "i2c: /dev/i2c-4: bus does not answer: probing 0x03–0x12 took longer than 3s (SDA or SCL held low? pull-ups missing?)",
		} {
			if err := results[n].Err; !errors.Is(err, ErrBusDead) || err.Error() != want {
				t.Errorf("bus %d: %v, want %q", n, err, want)
			}
		}
		if r := results[3]; r.Err != nil || len(r.Found) != 0 {
			t.Errorf("bus that NACKs everything: %+v", r)
		}
		if slow.txs.Load() != 1 || stuck.txs.Load() != 1 {
			t.Errorf("probes on the dead buses: %d and %d, want 1 each", slow.txs.Load(), stuck.txs.Load())
		}
		for n, want := range map[int]time.Duration{1: 250 * time.Millisecond, 2: 250 * time.Millisecond, 3: 0, 4: 3 * time.Second} {
			if took[n] != want {
				t.Errorf("bus %d took %v, want %v", n, took[n], want)
			}
		}
		if total := time.Since(start); total > 4*time.Second {
			t.Errorf("the scan took %v", total)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		close(stuck.release)   // the kernel gives up at last
		time.Sleep(sluggish.d) // and 0x12's probe, under way at the budget, ends
		synctest.Wait()
		if !stuck.closed.Load() {
			t.Error("the stuck bus was not closed after its probe returned")
		}
	})
}
