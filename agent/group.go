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
// (schedule, filters, status); the first member to ask in a round triggers
// the read, the others take their share of its result.
type group struct {
	open     func() (sensors.Sensor, error) // the bulk reader; readings carry the device in Sensor
	interval time.Duration
	now      func() time.Time

	mu      sync.Mutex
	sensor  sensors.Sensor
	running chan struct{} // closed when the read in flight ends
	at      time.Time     // when the last read ended
	rs      []reading.Reading
	err     error
}

// member is one device's view of a group; it implements sensors.Sensor.
type member struct {
	g      *group
	device string
}

func (m *member) Read(ctx context.Context) ([]reading.Reading, error) {
	rs, err := m.g.read(ctx)
	var out []reading.Reading
	for _, r := range rs {
		if r.Sensor == m.device {
			r.Sensor = ""
			out = append(out, r)
		}
	}
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

// read returns the result of the current round: a read that ended less than
// half an interval ago, the read in flight, or a new one.
func (g *group) read(ctx context.Context) ([]reading.Reading, error) {
	g.mu.Lock()
	if g.running == nil && !g.at.IsZero() && g.now().Sub(g.at) < g.interval/2 {
		rs, err := g.rs, g.err
		g.mu.Unlock()
		return rs, err
	}
	if g.running == nil {
		g.running = make(chan struct{})
		go g.do(g.running)
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

// do performs one bulk read, bounded by the interval (at least 2 s), and
// publishes its result to every waiting member.
func (g *group) do(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), max(g.interval, 2*time.Second))
	defer cancel()
	var rs []reading.Reading
	var err error
	g.mu.Lock()
	s := g.sensor
	g.mu.Unlock()
	if s == nil {
		s, err = g.open()
	}
	if err == nil {
		rs, err = s.Read(ctx)
	}
	g.mu.Lock()
	if s != nil {
		g.sensor = s
	}
	g.rs, g.err, g.at = rs, err, g.now()
	g.running = nil
	g.mu.Unlock()
	close(done)
}
