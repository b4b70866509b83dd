package sensors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kelvin-gw/kelvin/internal/ctxsleep"
	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/reading"
)

// Timing of a bulk conversion.
const (
	// w1BulkPollEvery is how often therm_bulk_read is read while a
	// conversion is pending.
	w1BulkPollEvery = 15 * time.Millisecond
	// w1BulkMargin is how long past the slowest device's conv_time a bulk
	// conversion may take (bus mutex contention, a slow master) before
	// W1Bulk gives up on it.
	w1BulkMargin = time.Second
	// w1DefaultConvTime is the conversion time assumed when a device's
	// conv_time cannot be read: 12 bits, or any DS18S20.
	w1DefaultConvTime = 750 * time.Millisecond
	// w1BulkTrigger is the command w1_therm accepts in therm_bulk_read. The
	// kernel compares the write's size with sizeof("trigger"), 8: the
	// newline is required, "trigger" alone is silently ignored.
	w1BulkTrigger = "trigger\n"
	// w1RelistEvery is how long W1Bulk keeps using a listing of the bus
	// masters while every device reads well (see W1Bulk).
	w1RelistEvery = time.Minute
)

// w1fs is the file access of W1Bulk: osW1FS on a real sysfs tree, a fake
// w1_therm in tests. Every method may block in the kernel.
type w1fs interface {
	ReadFile(name string) ([]byte, error)
	// WriteFile writes data to the existing file name; it never creates
	// one.
	WriteFile(name string, data []byte) error
	// ReadDir returns the names in directory name.
	ReadDir(name string) ([]string, error)
	// CanWrite reports whether this process may write the existing file
	// name, without writing to it: nil, or the error an open for writing
	// returns (fs.ErrPermission, EROFS, fs.ErrNotExist, ...).
	CanWrite(name string) error
}

// osW1FS is w1fs on the real filesystem.
type osW1FS struct{}

func (osW1FS) ReadFile(name string) ([]byte, error) { return readSysfs(name) }

func (osW1FS) WriteFile(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// CanWrite opens name for writing and closes it at once: on sysfs the
// open checks the permissions (and a read-only mount), and only a write
// would reach the driver.
func (osW1FS) CanWrite(name string) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

func (osW1FS) ReadDir(name string) ([]string, error) {
	entries, err := os.ReadDir(name)
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, err
}

// keptW1FS is osW1FS keeping the files it reads or writes open between
// calls (sysfsFile): w1_slave, therm_bulk_read and w1_master_slaves cost
// one pread or pwrite each instead of an open, a read or write, and a
// close. It keeps at most two descriptors per file name W1Bulk uses (its
// devices' and their masters'), until drop or Close.
type keptW1FS struct {
	osW1FS

	mu    sync.Mutex
	files map[keptKey]*sysfsFile
}

// keptKey names a kept file: its path and how it is opened.
type keptKey struct {
	name  string
	flags int
}

func newKeptW1FS() *keptW1FS { return &keptW1FS{files: map[keptKey]*sysfsFile{}} }

func (k *keptW1FS) file(name string, flags int) *sysfsFile {
	k.mu.Lock()
	defer k.mu.Unlock()
	key := keptKey{name, flags}
	f, ok := k.files[key]
	if !ok {
		f = newSysfsFile(name, flags)
		k.files[key] = f
	}
	return f
}

func (k *keptW1FS) ReadFile(name string) ([]byte, error) {
	return k.file(name, os.O_RDONLY).ReadFile()
}

func (k *keptW1FS) WriteFile(name string, data []byte) error {
	return k.file(name, os.O_WRONLY).WriteFile(data)
}

// drop closes the kept descriptors of name: the next read opens it afresh.
func (k *keptW1FS) drop(name string) {
	k.mu.Lock()
	var fs []*sysfsFile
	for key, f := range k.files {
		if key.name == name {
			fs = append(fs, f)
			delete(k.files, key)
		}
	}
	k.mu.Unlock()
	for _, f := range fs {
		f.Close()
	}
}

// Close closes every kept descriptor; the files are opened again if used
// again.
func (k *keptW1FS) Close() error {
	k.mu.Lock()
	fs := k.files
	k.files = map[keptKey]*sysfsFile{}
	k.mu.Unlock()
	for _, f := range fs {
		f.Close()
	}
	return nil
}

// W1BulkStats counts what a W1Bulk did since NewW1Bulk; see W1Bulk.Stats.
type W1BulkStats struct {
	// BulkConversions counts the bulk conversions used: one per bus per
	// Read when therm_bulk_read worked.
	BulkConversions uint64
	// Fallbacks counts the bulk conversions given up, per bus and Read:
	// no therm_bulk_read (older kernel, or the master of a second bus),
	// no permission to write it, a conversion that never completed, or
	// the bus list that could not be read (then once for the whole Read).
	// The devices concerned were read one at a time.
	Fallbacks uint64
	// SingleReads counts the device reads that started their own
	// conversion (up to 750 ms each): after a fallback, on a device
	// without bulk support (DS28EA00) or whose master was not found, and
	// the re-read after a power-on-reset value.
	SingleReads uint64
	// LastFallback is why the latest fallback happened, nil before the
	// first one. It starts with "w1: " and wraps the cause (e.g.
	// fs.ErrNotExist, fs.ErrPermission).
	LastFallback error
}

// W1Bulk reads several DS18B20-family devices on the kernel's 1-Wire buses
// with one bulk conversion per bus, through the w1 master's therm_bulk_read
// file (w1_therm, Linux 5.8 and later): N devices on a bus take about one
// conversion time (750 ms at 12 bits) per Read instead of N. Build it with
// NewW1Bulk.
//
// Read lists the masters (<sysfs>/w1_bus_master*/w1_master_slaves) and
// groups the devices by bus; the buses are converted and read concurrently.
// The listing is reused for up to a minute (w1RelistEvery) while every
// device reads well, and made again at the next Read after a device failed
// or the listing itself did: at 1 Hz, listing the directory on every Read
// cost more than reading the devices.
// On each bus with therm_bulk_read it writes "trigger\n" (the kernel issues
// SKIP ROM + CONVERT T and blocks the write for the slowest device's
// conv_time), polls therm_bulk_read every 15 ms until it reads 1, waits
// until the slowest of its devices' conv_time has passed since the trigger
// (a signal can cut the kernel's wait short), and then reads each device's
// w1_slave, which now returns the converted scratchpad without a
// conversion of its own. Devices that cannot take part are read one at a
// time, each read converting: DS28EA00 (w1_therm gives it no bulk
// support), devices no master lists, and every device of a bus whose bulk
// conversion is unavailable or gives up (see W1BulkStats.Fallbacks). A bulk
// conversion gives up when therm_bulk_read still reads -1 one second past
// the slowest conv_time, or reads 0 (nothing triggered); fallbacks are
// counted in Stats, never logged, and are not errors. Buses tells, per bus,
// whether the latest Read converted it in bulk and why not, and
// OnBusChange reports when that changes, so the caller can say so.
//
// Power-on reset: a device still showing 85 °C with byte 6 = 0x0C after a
// bulk conversion is read once more on its own (a conversion of its own)
// after the other devices of its bus; only when that read fails too is it
// reported, with that read's error. A device read on its own is re-read
// once at once, as W1.Read does.
//
// Caveats of the kernel interface:
//   - The trigger converts every bulk-capable device on the bus, and the
//     values of devices nobody reads are kept until they are read: use one
//     W1Bulk for all the devices of a bus that share an interval, and do
//     not also read them with W1. A W1 read of a device during a pending
//     bulk conversion returns an empty file (ErrBadData).
//   - therm_bulk_read is root-writable only (mode 0644): without root, or a
//     udev rule granting write access (packaging/60-kelvin-w1.rules), every
//     Read falls back and LastFallback wraps fs.ErrPermission; under a
//     systemd unit with ProtectKernelTunables=yes and no ReadWritePaths=
//     for the master, it wraps EROFS.
//   - w1_therm counts bulk-capable devices in one counter for all masters
//     and creates therm_bulk_read only on the master of the first one: on
//     a second bus the file is missing and its devices are read one at a
//     time.
//
// Files: each device's w1_slave and each master's therm_bulk_read stay open
// between Reads (one pread or pwrite each per Read; see sysfsFile), at most
// one descriptor per device and two per master. They are opened afresh
// after a failed read, when the kernel reports a device gone, and when a
// new listing of the masters differs from the previous one; Close closes
// them (the agent does at shutdown and reload).
//
// Goroutines: the kernel operations of a Read run in one goroutine that
// W1Bulk keeps between Reads (started by the first Read, stopped by Close,
// started again by a Read after Close), so that Read can return when ctx
// is done while a file operation blocks in the kernel; with several buses,
// each further bus converts in a goroutine of its own for that round
// (every bus, when devices no master lists are read too). A round reuses
// that goroutine, its grown stack and its buffers: at 1 Hz with the
// masters' listing reused, a Read allocates only the readings it returns.
// When that goroutine is still blocked in a round whose Read gave up (or
// busy with another goroutine's Read), a Read runs in a goroutine of its
// own.
//
// Read may be called from several goroutines; like W1, it keeps at most one
// kernel operation per device and per bus outstanding (ErrBusy otherwise).
type W1Bulk struct {
	sysfs     string
	devs      []*W1 // in the order given to NewW1Bulk
	now       func() time.Time
	fs        w1fs
	pollEvery time.Duration
	margin    time.Duration

	all     []int  // every index of devs: the orphans when the listing failed
	trigger []byte // w1BulkTrigger, converted once

	scanBusy atomic.Bool // listing the masters

	mu       sync.Mutex
	layout   *w1Layout                // the latest listing, grouped (see groups); nil: list again
	listedAt time.Time                // when layout was listed
	listed   map[string]string        // the latest listing made, kept when layout is dropped
	convs    map[string]time.Duration // per device: conv_time, read once per listing
	busBusy  map[string]*atomic.Bool  // per master: a trigger or poll in flight
	stats    W1BulkStats
	buses    map[string]W1BusStatus // per master: the latest Read's outcome
	onBus    func(W1BusStatus)      // see OnBusChange; nil: nobody asks
	worker   *w1Worker              // runs the rounds; nil until the first Read and after Close
}

var _ Sensor = (*W1Bulk)(nil)

// NewW1Bulk returns a sensor reading the devices at addresses (kernel names
// like 28-0316a2b8ff01, in the order Read returns them) under sysfs
// (DefaultW1SysfsDir when ""); now is the clock stamped on readings (nil
// means wallclock.Now). It fails for an empty list, an invalid address
// (ValidW1Address) or one listed twice, returning every problem at once,
// and does not touch the filesystem: buses are found at each Read.
func NewW1Bulk(sysfs string, addresses []string, now func() time.Time) (*W1Bulk, error) {
	if len(addresses) == 0 {
		return nil, errors.New("w1: bulk read: no device addresses")
	}
	if sysfs == "" {
		sysfs = DefaultW1SysfsDir
	}
	if now == nil {
		now = wallclock.Now
	}
	b := &W1Bulk{
		sysfs:     sysfs,
		now:       now,
		fs:        newKeptW1FS(),
		pollEvery: w1BulkPollEvery,
		margin:    w1BulkMargin,
		trigger:   []byte(w1BulkTrigger),
		busBusy:   map[string]*atomic.Bool{},
		buses:     map[string]W1BusStatus{},
	}
	var errs []error
	seen := map[string]bool{}
	for _, a := range addresses {
		w, err := NewW1(sysfs, a, now)
		switch {
		case err != nil:
			errs = append(errs, err)
		case seen[a]:
			errs = append(errs, fmt.Errorf("w1: address %q: listed twice", a))
		default:
			seen[a] = true
			w.readFile = func(name string) ([]byte, error) { return b.fs.ReadFile(name) }
			w.drop = func() { b.drop(w.path) }
			w.slave, w.close = nil, nil // Close closes b.fs
			b.all = append(b.all, len(b.devs))
			b.devs = append(b.devs, w)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return b, nil
}

// Close closes the files W1Bulk keeps open between Reads (each device's
// w1_slave, the masters' therm_bulk_read and w1_master_slaves) and stops
// the goroutine that runs its rounds. Kernel operations still blocked close
// their files when they return, and that goroutine ends after them. A Read
// after Close opens the files again and starts a new goroutine. It returns
// nil.
func (b *W1Bulk) Close() error {
	b.mu.Lock()
	w := b.worker
	b.worker = nil
	b.mu.Unlock()
	if w != nil {
		close(w.quit)
	}
	if c, ok := b.fs.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

// drop makes the next read of name open it afresh, when b.fs keeps files
// open.
func (b *W1Bulk) drop(name string) {
	if d, ok := b.fs.(interface{ drop(string) }); ok {
		d.drop(name)
	}
}

// Addresses returns the device names, in the order of NewW1Bulk and of the
// readings Read returns. The slice is a copy.
func (b *W1Bulk) Addresses() []string {
	a := make([]string, len(b.devs))
	for i, d := range b.devs {
		a[i] = d.address
	}
	return a
}

// Stats returns the counts since NewW1Bulk. It is safe for concurrent use.
func (b *W1Bulk) Stats() W1BulkStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

// Buses returns, for every bus master a Read has tried to convert in bulk,
// how that went the last time, sorted by master. It is safe for concurrent
// use.
func (b *W1Bulk) Buses() []W1BusStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]W1BusStatus, 0, len(b.buses))
	for _, m := range slices.Sorted(maps.Keys(b.buses)) {
		out = append(out, b.buses[m])
	}
	return out
}

// OnBusChange makes Read call f whenever a bus's W1BusStatus changes in a
// way worth telling: the first Read of the bus, bulk conversion lost or
// back, or another reason to fall back. f is called from the goroutine
// reading that bus, buses concurrently, so it must be quick and safe for
// concurrent use. Call OnBusChange before the first Read.
func (b *W1Bulk) OnBusChange(f func(W1BusStatus)) { b.onBus = f }

// setBus records the outcome of a bulk conversion on a bus and calls the
// OnBusChange function when it changed.
func (b *W1Bulk) setBus(st W1BusStatus) {
	b.mu.Lock()
	old, seen := b.buses[st.Master]
	b.buses[st.Master] = st
	f := b.onBus
	b.mu.Unlock()
	if f != nil && (!seen || old.Reason() != st.Reason()) {
		f(st)
	}
}

// w1Result is the outcome of one device in one Read.
type w1Result struct {
	celsius float64
	time    time.Time
	err     error // a *DeviceError, or nil
}

// Read converts and reads every device (see W1Bulk) and returns one
// temperature reading in °C per device read successfully, in the order of
// NewW1Bulk, with Sensor set to the device address and Time to now() when
// that device's read completed.
//
// Readings and an error together: the readings are good; the error lists
// the devices that failed. It joins (errors.Join) one *DeviceError per
// failed device, which names the address and wraps the sentinel: iterate
// with its Unwrap() []error, or test with errors.Is / Reason. When every
// device fails, the readings are nil.
//
// When ctx is done first, Read returns nil and ctx.Err() at once; kernel
// operations still blocked finish in the background with their results
// dropped, and until they do the next Reads fail the devices concerned
// with ErrBusy.
func (b *W1Bulk) Read(ctx context.Context) ([]reading.Reading, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	buses, orphans, err := b.groups(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		b.fallback(err)
	}

	// The kernel operations of a round run in another goroutine (the
	// worker, see w1Worker), which reads or writes every file in turn,
	// blocking, and Read waits for it or for ctx: a blocked read cannot
	// be interrupted, so only another goroutine lets Read return on time
	// and leave it behind; it stops after the operation in flight (every
	// step checks ctx), whose device or bus stays busy until the kernel
	// returns.
	results, owner := b.runRound(ctx, w1Round{ctx, buses, orphans})
	if owner != nil {
		defer owner.release()
	}
	if err := ctx.Err(); results == nil || err != nil {
		return nil, err
	}

	var out []reading.Reading
	var errs []error
	n := 0
	for _, r := range results {
		if r.err == nil {
			n++
		}
	}
	if n > 0 {
		out = make([]reading.Reading, 0, n)
	}
	for i, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		out = append(out, reading.Reading{
			Sensor:   b.devs[i].address,
			Quantity: reading.Temperature,
			Value:    r.celsius,
			Raw:      r.celsius,
			Unit:     reading.UnitOf(reading.Temperature),
			Time:     r.time,
		})
	}
	if len(errs) > 0 { // a device gone or moved: list the masters again
		b.mu.Lock()
		b.layout = nil
		b.mu.Unlock()
	}
	return out, errors.Join(errs...)
}

// w1Round is what a round reads: the groups of W1Bulk.groups, and the
// context of the Read it is for.
type w1Round struct {
	ctx     context.Context
	buses   []w1BusDevs
	orphans []int
}

// States of a w1Worker.
const (
	w1Idle      int32 = iota // waiting for a round; its results are free
	w1Running                // a Read handed it a round and waits for it
	w1Finished               // the round ended; its Read reads the results
	w1Abandoned              // its Read returned (ctx); the round goes on
)

// w1Worker is the goroutine that runs W1Bulk's rounds, kept from one Read
// to the next: a round then starts no goroutine and allocates nothing (its
// stack has grown once, the results slice and the channels are reused).
// The Read that moves state from w1Idle to w1Running owns it, and its
// results, until it sets it back to w1Idle; when that Read gives up on the
// round, the worker sets it back to w1Idle once the round ends.
type w1Worker struct {
	rounds  chan w1Round  // a round to run, from its owner
	done    chan struct{} // (1) the owner's round ended; never sent for an abandoned one
	quit    chan struct{} // closed by Close: end after the round in flight
	stopped chan struct{} // closed when the goroutine has ended
	state   atomic.Int32
	results []w1Result // the round's outcome per device
}

// startWorker returns the worker, starting it if there is none.
func (b *W1Bulk) startWorker() *w1Worker {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.worker == nil {
		w := &w1Worker{
			rounds:  make(chan w1Round),
			done:    make(chan struct{}, 1),
			quit:    make(chan struct{}),
			stopped: make(chan struct{}),
			results: make([]w1Result, len(b.devs)),
		}
		go b.work(w)
		b.worker = w
	}
	return b.worker
}

// work runs the rounds handed to w until Close.
func (b *W1Bulk) work(w *w1Worker) {
	defer close(w.stopped)
	for {
		select {
		case r := <-w.rounds:
			b.round(r, w.results)
			if !w.state.CompareAndSwap(w1Running, w1Finished) {
				w.state.Store(w1Idle) // abandoned: nobody reads the results
				continue
			}
			w.done <- struct{}{}
		case <-w.quit:
			return
		}
	}
}

// runRound runs r in the worker and returns the results and, when they are
// the worker's, the worker, to release once they are read; or nil results
// when ctx was done first. While the worker is busy (still blocked in the
// kernel in a round its Read gave up on, or running another Read's round)
// r runs in a goroutine of its own instead, with results of its own, as
// every round once did: the busy flags then fail the devices and buses
// still blocked with ErrBusy.
func (b *W1Bulk) runRound(ctx context.Context, r w1Round) (results []w1Result, owner *w1Worker) {
	if w := b.startWorker(); w.state.CompareAndSwap(w1Idle, w1Running) {
		select {
		case w.rounds <- r:
		case <-w.quit: // closed since: it may be gone
			w.state.Store(w1Idle)
			return b.runRoundAlone(ctx, r)
		case <-ctx.Done():
			w.state.Store(w1Idle)
			return nil, nil
		}
		select {
		case <-w.done:
			return w.results, w
		case <-ctx.Done():
			if w.state.CompareAndSwap(w1Running, w1Abandoned) {
				return nil, nil
			}
			<-w.done // it ended meanwhile: take its signal back
			w.state.Store(w1Idle)
			return nil, nil
		}
	}
	return b.runRoundAlone(ctx, r)
}

// release hands the worker's results back after its owner read them.
func (w *w1Worker) release() { w.state.Store(w1Idle) }

// runRoundAlone is runRound in a goroutine started for r.
func (b *W1Bulk) runRoundAlone(ctx context.Context, r w1Round) (results []w1Result, owner *w1Worker) {
	results = make([]w1Result, len(b.devs))
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.round(r, results)
	}()
	select {
	case <-done:
		return results, nil
	case <-ctx.Done():
		return nil, nil
	}
}

// round runs the kernel operations of r, in this goroutine and one more
// per bus beyond the first (buses convert at the same time), and stores
// each device's outcome in results.
func (b *W1Bulk) round(r w1Round, results []w1Result) {
	clear(results)
	switch {
	case len(r.buses) == 0:
		b.readEach(r.ctx, r.orphans, true, true, results) // each converting, as W1.Read does
	case len(r.buses) == 1 && len(r.orphans) == 0:
		b.readBus(r.ctx, &r.buses[0], results)
	default:
		b.roundConcurrent(r, results)
	}
}

// roundConcurrent is round with several groups: every bus but the last in
// a goroutine of its own, the last in this one unless there are orphans,
// which are read in this one.
func (b *W1Bulk) roundConcurrent(r w1Round, results []w1Result) {
	var wg sync.WaitGroup
	for k := range r.buses {
		bus := &r.buses[k]
		if k == len(r.buses)-1 && len(r.orphans) == 0 {
			b.readBus(r.ctx, bus, results)
			break
		}
		wg.Go(func() { b.readBus(r.ctx, bus, results) })
	}
	b.readEach(r.ctx, r.orphans, true, true, results) // each converting, as W1.Read does
	wg.Wait()
}

// w1BusDevs is one master and the indexes (into W1Bulk.devs) of the
// devices it lists. It is made at a listing and only read after.
type w1BusDevs struct {
	master string
	file   string // its therm_bulk_read
	bulk   []int  // the devices that take part in a bulk conversion
	single []int  // the devices read one at a time, converting: DS28EA00
	all    []int  // bulk then single: when the bulk conversion falls back
}

// w1Layout is one listing of the masters, the devices grouped (see
// groups). It is made at a listing and only read after: a round abandoned
// in the kernel may still read it while the next listing replaces it.
type w1Layout struct {
	buses   []w1BusDevs
	orphans []int
}

// groups splits the devices by master, sorted by master name; orphans are
// the devices no master lists. It lists the masters when the latest listing
// is missing (the first Read, or one after a device failed) or older than
// w1RelistEvery, and returns the groups of the latest listing otherwise,
// without allocating. On an error every device is an orphan.
func (b *W1Bulk) groups(ctx context.Context) (buses []w1BusDevs, orphans []int, err error) {
	b.mu.Lock()
	l := b.layout
	if l != nil && b.now().Sub(b.listedAt) >= w1RelistEvery {
		l = nil
	}
	b.mu.Unlock()
	if l != nil {
		return l.buses, l.orphans, nil
	}
	masterOf, err := await(ctx, &b.scanBusy, func() (map[string]string, error) {
		return listW1Masters(b.fs, b.sysfs)
	})
	if err != nil {
		if err == ErrBusy {
			err = fmt.Errorf("w1: list the bus masters: the previous listing is still blocked in the kernel: %w", ErrBusy)
		}
		return nil, b.all, err
	}
	l = b.group(masterOf)
	b.mu.Lock()
	changed := !maps.Equal(b.listed, masterOf)
	b.layout, b.listed, b.listedAt = l, masterOf, b.now()
	b.convs = nil // read conv_time again
	b.mu.Unlock()
	if changed {
		// A device gone, moved or back: every file opens afresh at its
		// next read.
		if c, ok := b.fs.(interface{ Close() error }); ok {
			c.Close()
		}
	}
	return l.buses, l.orphans, nil
}

// group groups the devices by the master masterOf gives them.
func (b *W1Bulk) group(masterOf map[string]string) *w1Layout {
	l := &w1Layout{}
	byMaster := map[string][]int{}
	for i, d := range b.devs {
		if m, ok := masterOf[d.address]; ok {
			byMaster[m] = append(byMaster[m], i)
		} else {
			l.orphans = append(l.orphans, i)
		}
	}
	for _, m := range slices.Sorted(maps.Keys(byMaster)) {
		bus := w1BusDevs{master: m, file: filepath.Join(b.sysfs, m, "therm_bulk_read")}
		for _, i := range byMaster[m] {
			if b.devs[i].family == W1FamilyDS28EA00 {
				bus.single = append(bus.single, i) // w1_therm: bulk_read = false
			} else {
				bus.bulk = append(bus.bulk, i)
			}
		}
		bus.all = slices.Concat(bus.bulk, bus.single)
		l.buses = append(l.buses, bus)
	}
	return l
}

// listW1Masters reads <sysfs>/w1_bus_master*/w1_master_slaves and returns
// the master of every device listed (the first master, sorted by name, if
// one is listed twice). A master whose list cannot be read is skipped.
func listW1Masters(fsys w1fs, sysfs string) (map[string]string, error) {
	names, err := fsys.ReadDir(sysfs)
	if err != nil {
		return nil, fmt.Errorf("w1: list the bus masters: %w", err)
	}
	slices.Sort(names)
	masterOf := map[string]string{}
	for _, m := range names {
		if !strings.HasPrefix(m, "w1_bus_master") {
			continue
		}
		data, err := readSysfsVia(fsys, filepath.Join(sysfs, m, "w1_master_slaves"))
		if err != nil {
			continue
		}
		// One device name per line; "not found.\n" when the bus is empty.
		for line := range strings.Lines(string(data)) {
			a := strings.TrimSpace(line)
			if _, dup := masterOf[a]; a != "" && !dup {
				masterOf[a] = m
			}
		}
	}
	return masterOf, nil
}

// readBus converts the devices of one bus in one bulk conversion when it
// can and reads them into out.
func (b *W1Bulk) readBus(ctx context.Context, bus *w1BusDevs, out []w1Result) {
	master, bulk, single := bus.master, bus.bulk, bus.single
	if len(bulk) > 0 {
		conv, err := b.convert(ctx, master, bus.file, bulk)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, ErrBusy):
			for _, i := range bulk {
				out[i] = w1Result{err: &DeviceError{Bus: "w1", Address: b.devs[i].address, Err: err}}
			}
			bulk = nil
		case err != nil:
			err = fmt.Errorf("w1: %s: %w", master, err)
			b.fallback(err)
			b.setBus(W1BusStatus{Master: master, Devices: len(bulk), ConvTime: conv, Err: err})
			bulk, single = nil, bus.all
		default:
			b.count(func(s *W1BulkStats) { s.BulkConversions++ })
			b.setBus(W1BusStatus{Master: master, Devices: len(bulk), ConvTime: conv})
		}
	}
	b.readEach(ctx, bulk, false, false, out)
	b.readEach(ctx, single, true, true, out) // each converting, as W1.Read does
	// A device that missed the bulk conversion converts on its own, after
	// the others were read.
	var por []int
	for _, i := range bulk {
		if errors.Is(out[i].err, ErrPowerOnReset) {
			por = append(por, i)
		}
	}
	b.readEach(ctx, por, true, false, out)
}

// readEach reads the devices devs one after the other into out, in the
// caller's goroutine, blocking for as long as the kernel does. With
// converting, each read counts in SingleReads (it converts on its own);
// with reread, a power-on-reset value is read once more at once. It stops
// before the next device once ctx is done.
func (b *W1Bulk) readEach(ctx context.Context, devs []int, converting, reread bool, out []w1Result) {
	for _, i := range devs {
		if ctx.Err() != nil {
			return
		}
		if converting {
			b.count(func(s *W1BulkStats) { s.SingleReads++ })
		}
		out[i] = b.readDevice(i)
		if reread && errors.Is(out[i].err, ErrPowerOnReset) && ctx.Err() == nil {
			b.count(func(s *W1BulkStats) { s.SingleReads++ })
			out[i] = b.readDevice(i)
		}
	}
}

// readDevice reads and parses one device's w1_slave once, blocking for as
// long as the kernel does.
func (b *W1Bulk) readDevice(i int) w1Result {
	c, err := b.devs[i].readBlocking()
	if err != nil {
		return w1Result{err: err}
	}
	return w1Result{celsius: c, time: b.now()}
}

// convert runs one bulk conversion on master for the devices bulk: it
// writes the trigger to file (the master's therm_bulk_read), polls
// therm_bulk_read until it reads 1, and waits until the slowest device's
// conv_time has passed since the trigger. It returns that conversion time
// (w1DefaultConvTime when the trigger never ran) and an error (without a
// "w1: <master>: " prefix) saying why the conversion cannot be used:
// ctx.Err(), an error wrapping ErrBusy (a previous trigger or poll still
// blocked), or any other reason to fall back.
func (b *W1Bulk) convert(ctx context.Context, master, file string, bulk []int) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return w1DefaultConvTime, err
	}
	// The bus stays busy from the trigger to the end of the wait, also
	// when Read gave up on it while the kernel blocked.
	busy := b.busFlag(master)
	if !busy.CompareAndSwap(false, true) {
		return w1DefaultConvTime, fmt.Errorf("%s: the previous bulk conversion is still blocked in the kernel: %w", master, ErrBusy)
	}
	defer busy.Store(false)
	var conv time.Duration // the slowest device's conversion time
	for _, i := range bulk {
		conv = max(conv, b.convTime(b.devs[i].address))
	}
	at := time.Now() // when the trigger was written
	err := b.fs.WriteFile(file, b.trigger)
	switch {
	case ctx.Err() != nil:
		return conv, ctx.Err()
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		return conv, fmt.Errorf("%s: %w", w1NoBulkFile, err)
	default:
		return conv, fmt.Errorf("trigger a bulk conversion: %w", err)
	}
	deadline := at.Add(conv + b.margin)
	for {
		data, err := b.fs.ReadFile(file)
		state := 0
		if err == nil {
			state, err = parseW1BulkState(data)
		}
		switch {
		case ctx.Err() != nil:
			return conv, ctx.Err()
		case err != nil:
			return conv, fmt.Errorf("read therm_bulk_read: %w", err)
		case state == 1:
			return conv, ctxsleep.Sleep(ctx, time.Until(at.Add(conv)))
		case state == 0:
			return conv, errors.New("therm_bulk_read reads 0 after the trigger: no conversion started")
		case !time.Now().Before(deadline):
			return conv, fmt.Errorf("therm_bulk_read still reads -1 %v after the trigger: %w",
				time.Since(at).Round(time.Millisecond), errW1BulkTimeout)
		}
		if err := ctxsleep.Sleep(ctx, b.pollEvery); err != nil {
			return conv, err
		}
	}
}

// convTime returns a device's conversion time from its conv_time file, or
// w1DefaultConvTime when that cannot be read. The file is read once per
// listing of the masters (at most w1RelistEvery apart): it changes only
// when someone writes the device's resolution.
func (b *W1Bulk) convTime(address string) time.Duration {
	b.mu.Lock()
	d, ok := b.convs[address]
	b.mu.Unlock()
	if ok {
		return d
	}
	d = w1DefaultConvTime
	if data, err := readSysfsVia(b.fs, filepath.Join(b.sysfs, address, "conv_time")); err == nil {
		if v, err := parseW1ConvTime(data); err == nil {
			d = v
		}
	}
	b.mu.Lock()
	if b.convs == nil {
		b.convs = map[string]time.Duration{}
	}
	b.convs[address] = d
	b.mu.Unlock()
	return d
}

// readSysfsVia reads name once through fsys without keeping it open: for
// the files read once per listing.
func readSysfsVia(fsys w1fs, name string) ([]byte, error) {
	if k, ok := fsys.(*keptW1FS); ok {
		return k.osW1FS.ReadFile(name)
	}
	return fsys.ReadFile(name)
}

// parseW1BulkState parses the contents of therm_bulk_read, "%d\n" in
// w1_therm: -1 while a bulk conversion is pending, 1 when it completed and
// a device is still unread, 0 when none was triggered. Errors wrap
// ErrBadData.
func parseW1BulkState(data []byte) (int, error) {
	switch string(bytes.TrimSuffix(data, []byte("\n"))) {
	case "-1":
		return -1, nil
	case "0":
		return 0, nil
	case "1":
		return 1, nil
	}
	return 0, fmt.Errorf("therm_bulk_read %q is not -1, 0 or 1: %w", data, ErrBadData)
}

// parseW1ConvTime parses the contents of a device's conv_time file,
// milliseconds as "%d\n" (negative when w1_therm fails: -ENODEV). It accepts
// 1 to 10000 ms; errors wrap ErrBadData.
func parseW1ConvTime(data []byte) (time.Duration, error) {
	ms, err := strconv.Atoi(string(bytes.TrimSuffix(data, []byte("\n"))))
	if err != nil || ms < 1 || ms > 10000 {
		return 0, fmt.Errorf("conv_time %q is not 1 to 10000 ms: %w", data, ErrBadData)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// busFlag returns the busy flag of master.
func (b *W1Bulk) busFlag(master string) *atomic.Bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.busBusy[master]
	if !ok {
		f = new(atomic.Bool)
		b.busBusy[master] = f
	}
	return f
}

// fallback records that a bulk conversion was given up.
func (b *W1Bulk) fallback(err error) {
	b.count(func(s *W1BulkStats) {
		s.Fallbacks++
		s.LastFallback = err
	})
}

// count updates the stats.
func (b *W1Bulk) count(f func(*W1BulkStats)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(&b.stats)
}

// await runs op in a goroutine of its own and returns its result, or
// ctx.Err() (that very value) as soon as ctx is done: op then finishes in
// the background and its result is dropped. busy keeps at most one op
// outstanding: while the previous one runs, await returns ErrBusy (that
// very value) without starting op.
func await[T any](ctx context.Context, busy *atomic.Bool, op func() (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	if !busy.CompareAndSwap(false, true) {
		return zero, ErrBusy
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1) // buffered: an abandoned op never blocks
	go func() {
		v, err := op()
		busy.Store(false) // before the send, so the next call never sees a finished op as busy
		done <- result{v, err}
	}()
	select {
	case <-ctx.Done():
		return zero, ctx.Err()
	case r := <-done:
		return r.v, r.err
	}
}
