package hw

import (
	"context"
	"errors"
	"fmt"
	"testing"

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
