package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
	"github.com/kelvin-gw/kelvin/sensors"
)

// group shares one bulk read among the sensors of one bus that have the same
// interval: a 1-Wire bus converts every device at once, so ten DS18B20s
// take one conversion time instead of ten. Each member keeps its own runner
// (filters, status); the first member to ask in a round triggers the read,
// the others take their share of its result. The members with the group's
// interval are read by one runner's loop (runner.lead); a member with a
// longer interval has a loop of its own.
type group struct {
	open     func() (sensors.Sensor, error) // the bulk reader; readings carry the device in Sensor
	interval time.Duration
	now      func() time.Time

	reads sync.WaitGroup // bulk reads in flight; see wait

	mu      sync.Mutex
	ctx     context.Context // the agent's: bounds every bulk read; see start
	sensor  sensors.Sensor
	running chan struct{} // closed when the read in flight ends
	at      time.Time     // when the last read ended
	rs      []reading.Reading
	err     error
	rctx    *readCtx // the bulk read's context, reused from round to round
}

// member is one device's view of a group; it implements sensors.Sensor.
// One runner reads it: out is reused from read to read.
type member struct {
	g      *group
	device string
	out    []reading.Reading
}

// Read returns the member's share of the round's bulk read. The slice is
// the member's own and valid until its next Read.
func (m *member) Read(ctx context.Context) ([]reading.Reading, error) {
	rs, err := m.g.read(ctx)
	out := m.out[:0]
	for _, r := range rs {
		if r.Sensor == m.device {
			r.Sensor = ""
			out = append(out, r)
		}
	}
	m.out = out
	if len(out) > 0 {
		return out, nil
	}
	if derr := deviceError(err, m.device); derr != nil {
		return nil, derr
	}
	if err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%s: not in the bus's reading: %w", m.device, sensors.ErrNoDevice)
}

// deviceError picks the part of a bulk read's error that is device's: the
// *sensors.DeviceError naming it, wherever it is in err's tree.
func deviceError(err error, device string) error {
	switch e := err.(type) {
	case nil:
		return nil
	case *sensors.DeviceError:
		if e.Address == device {
			return e
		}
	case interface{ Unwrap() []error }:
		for _, p := range e.Unwrap() {
			if d := deviceError(p, device); d != nil {
				return d
			}
		}
		return nil
	}
	return deviceError(errors.Unwrap(err), device)
}

// start makes ctx, the agent's reading context, the parent of every bulk
// read: when it is done a read in flight is cancelled.
func (g *group) start(ctx context.Context) {
	g.mu.Lock()
	g.ctx = ctx
	g.mu.Unlock()
}

// close closes the bulk reader, when it keeps files open (sensors.W1Bulk
// keeps each device's w1_slave open between reads), after wait: at
// shutdown and before a reload, so a reload does not leak descriptors.
func (g *group) close() {
	g.mu.Lock()
	s := g.sensor
	g.sensor = nil
	g.mu.Unlock()
	if c, ok := s.(interface{ Close() error }); ok {
		c.Close()
	}
}

// wait returns once no bulk read is in flight. After the members stopped
// reading, the agent waits for it before it closes the buses, so that a
// shutdown or a reload never closes (or reopens) a bus under a read.
func (g *group) wait() { g.reads.Wait() }

// read returns the result of the current round: a read that ended less than
// half an interval ago, the read in flight, or a new one. The member that
// finds none does the read itself, in its own goroutine: the runners of a
// group wake at the same instant, and the first of them reads for all.
// It returns when the read ends, which its own timeout bounds, whatever
// ctx does; the others wait for it until their ctx is done.
func (g *group) read(ctx context.Context) ([]reading.Reading, error) {
	g.mu.Lock()
	if g.running == nil && !g.at.IsZero() && g.now().Sub(g.at) < g.interval/2 {
		rs, err := g.rs, g.err
		g.mu.Unlock()
		return rs, err
	}
	if g.running == nil {
		g.running = make(chan struct{})
		base := g.ctx
		if base == nil {
			base = ctx
		}
		g.reads.Add(1)
		g.mu.Unlock()
		return g.do(base)
	}
	running := g.running
	g.mu.Unlock()
	select {
	case <-running:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.rs, g.err
}

// do performs one bulk read, bounded by base and by the interval (at least
// 2 s: the runner's read timeout, which members rely on), publishes its
// result to every waiting member and returns it. base is the agent's
// context, not a member's: one member giving up must not cancel the read
// the others wait for. The deadline's context is reused from round to
// round (readCtx): one read at a time, as running guarantees.
func (g *group) do(base context.Context) ([]reading.Reading, error) {
	defer g.reads.Done()
	var rs []reading.Reading
	var err error
	g.mu.Lock()
	s := g.sensor
	g.rctx = armReadCtx(g.rctx, base, max(g.interval, 2*time.Second))
	ctx := g.rctx
	g.mu.Unlock()
	if s == nil {
		s, err = g.open()
	}
	if err == nil {
		rs, err = s.Read(ctx)
	}
	ctx.disarm()
	g.mu.Lock()
	defer g.mu.Unlock()
	if s != nil {
		g.sensor = s
	}
	g.rs, g.err, g.at = rs, err, g.now()
	close(g.running)
	g.running = nil
	return rs, err
}
