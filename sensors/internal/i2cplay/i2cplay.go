// Package i2cplay is what the I²C drivers' playback tests share: a fixed
// clock, a bus that fails chosen transfers like a NACK, a recorder of the
// waits a driver asks for, and the closing check that every recorded
// operation was used. It is imported by tests only.
package i2cplay

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c/i2ctest"
)

// T0 is the time the drivers' tests stamp readings with (through Now): a
// fixed time, never compared with the wall clock.
var T0 = time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)

// Now returns T0: the injected clock of a driver under test.
func Now() time.Time { return T0 }

// ErrNACK is what periph's Linux bus returns when the device NACKs
// (EREMOTEIO formatted with %v).
var ErrNACK = errors.New("sysfs-i2c: remote I/O error")

// NACKBus passes transfers to a playback, except those whose 1-based number
// is in NACK: they fail with ErrNACK, without consuming a playback op.
type NACKBus struct {
	i2ctest.Playback
	NACK map[int]bool
	n    int
}

// Tx fails the transfers listed in NACK and plays back the others.
func (b *NACKBus) Tx(addr uint16, w, r []byte) error {
	b.n++
	if b.NACK[b.n] {
		return ErrNACK
	}
	return b.Playback.Tx(addr, w, r)
}

// Waits records the waits a driver asks for and returns at once.
type Waits []time.Duration

// Sleep records d and returns ctx.Err(): the driver's injected sleep.
func (w *Waits) Sleep(ctx context.Context, d time.Duration) error {
	*w = append(*w, d)
	return ctx.Err()
}

// Equal reports whether the recorded waits are exactly want.
func (w *Waits) Equal(want ...time.Duration) bool { return slices.Equal(*w, want) }

// Close closes a playback bus and fails the test if it reports an error,
// such as a recorded operation that was never used.
func Close(t testing.TB, b interface{ Close() error }) {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}
