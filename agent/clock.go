package agent

import (
	"context"
	"hash/crc32"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/publish"
	"github.com/kelvin-gw/kelvin/reading"
)

// Clock tells whether the wall clock can be trusted, and places readings
// on the monotonic clock so that their time can be corrected once it can.
// A Raspberry Pi has no real-time clock: it boots with the time it shut
// down at (or 1970) until NTP synchronises it.
type Clock struct {
	// Synced reports whether the wall clock is synchronised.
	Synced func() bool
	// Boottime is CLOCK_BOOTTIME in nanoseconds: monotonic, counted from
	// the boot, the same in every process of that boot.
	Boottime func() int64
	// BootID identifies the boot (a hash of the kernel's boot id):
	// Boottime values compare only within one boot.
	BootID uint32
	// Now is the wall clock.
	Now func() time.Time
}

// clockFloor is a time the wall clock cannot be before when it is right:
// this code did not exist earlier.
var clockFloor = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// SystemClock is the machine's clock: synchronised when the kernel says so
// (adjtimex: systemd-timesyncd, chrony and ntpd clear STA_UNSYNC once they
// have set the time) and the time is not before clockFloor. Where the
// kernel cannot tell (not Linux), it trusts the clock.
func SystemClock() *Clock {
	c := &Clock{Now: wallclock.Now, Boottime: boottimeFrom(boottime)}
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		c.BootID = crc32.ChecksumIEEE([]byte(strings.TrimSpace(string(b))))
	}
	c.Synced = syncedFrom(func(now time.Time) bool { return kernelSynced() && !now.Before(clockFloor) })
	return c
}

// How often Synced asks the kernel again: while the clock is synchronised
// it stays about right for far longer than a minute even if NTP is lost;
// while it is not (a Pi that just booted), the moment NTP sets it matters.
const (
	syncedCheckEvery   = time.Minute
	unsyncedCheckEvery = time.Second
)

// syncedFrom returns a Synced that calls check (adjtimex, a system call that
// wakes the runtime's sysmon) at most once a minute while the clock is
// synchronised and once a second while it is not, rather than for every
// reading or every round.
func syncedFrom(check func(now time.Time) bool) func() bool {
	var mu sync.Mutex
	var checked time.Time
	var synced bool
	return func() bool {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		every := unsyncedCheckEvery
		if synced {
			every = syncedCheckEvery
		}
		if due(checked, now, every) {
			checked, synced = now, check(now)
		}
		return synced
	}
}

// due reports whether something last done at last (zero: never) is to be
// done again at now, every apart; a clock that went back makes it due.
func due(last, now time.Time, every time.Duration) bool {
	d := now.Sub(last)
	return last.IsZero() || d >= every || d < 0
}

// boottimeEvery is how often boottimeFrom reads CLOCK_BOOTTIME.
const boottimeEvery = time.Minute

// boottimeFrom returns a Boottime that calls read (CLOCK_BOOTTIME, a system
// call: Go's vDSO use covers CLOCK_MONOTONIC only) at most once a minute and
// in between adds the monotonic clock's progress to the last value. The two
// clocks differ only by time spent suspended (a Pi never suspends), which
// the next read takes in: a reading taken within a minute after a resume
// may be placed earlier by the time suspended, and the values never go
// back. Once a second, it was a system call in every round while the clock
// is not synchronised.
func boottimeFrom(read func() int64) func() int64 {
	var mu sync.Mutex
	var at time.Time
	var base int64
	return func() int64 {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		if due(at, now, boottimeEvery) {
			at, base = now, read()
			return base
		}
		return base + int64(now.Sub(at))
	}
}

// TrustedClock never marks readings: for machines whose clock is right
// without NTP telling the kernel (agent.clock: trust).
func TrustedClock() *Clock {
	return &Clock{Synced: func() bool { return true }, Boottime: func() int64 { return 0 }, Now: wallclock.Now}
}

// mark stamps readings taken while the clock is not synchronised.
func (c *Clock) mark(rs []reading.Reading) {
	if c.Synced() {
		return
	}
	mono := c.Boottime()
	for i := range rs {
		rs[i].Clock, rs[i].Mono, rs[i].Boot = reading.ClockUnsynced, mono, c.BootID
	}
}

// correct gives readings taken on an unsynchronised clock their true time,
// once the clock is synchronised, from how long ago on the monotonic clock
// they were taken. Readings of an earlier boot cannot be placed and stay
// marked unsynced.
func (c *Clock) correct(rs []reading.Reading) {
	synced := false
	checked := false
	var now time.Time
	var mono int64
	for i := range rs {
		r := &rs[i]
		if r.Clock != reading.ClockUnsynced || r.Boot != c.BootID || r.Mono == 0 {
			continue
		}
		if !checked {
			checked, synced = true, c.Synced()
			now, mono = c.Now(), c.Boottime()
		}
		if !synced {
			return
		}
		r.Time = now.Add(-time.Duration(mono - r.Mono)).UTC()
		r.Clock = reading.ClockCorrected
	}
}

// correctingSource corrects the time of each batch it hands out.
type correctingSource struct {
	publish.Source
	clock *Clock
}

func (s correctingSource) Next(ctx context.Context, n int) ([]reading.Reading, error) {
	rs, err := s.Source.Next(ctx, n)
	s.clock.correct(rs)
	return rs, err
}
