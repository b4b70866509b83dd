package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
	"github.com/kelvin-gw/kelvin/sensors"
)

// bulkFake is a bus that reads every device in one call; one device fails.
type bulkFake struct {
	reads atomic.Int32
	gate  chan struct{}
}

func (b *bulkFake) Read(ctx context.Context) ([]reading.Reading, error) {
	b.reads.Add(1)
	if b.gate != nil {
		<-b.gate
	}
	rs := []reading.Reading{
		{Sensor: "28-000000000001", Quantity: reading.Temperature, Raw: 21.5, Value: 21.5},
		{Sensor: "28-000000000002", Quantity: reading.Temperature, Raw: -10.125, Value: -10.125},
	}
	return rs, errors.Join(fmt.Errorf("ds2482: 28-000000000003: %w", sensors.ErrCRC))
}

func TestGroupSharesOneReadPerRound(t *testing.T) {
	b := &bulkFake{gate: make(chan struct{})}
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	g := &group{open: func() (sensors.Sensor, error) { return b, nil }, interval: 10 * time.Second, now: clock}

	devices := []string{"28-000000000001", "28-000000000002", "28-000000000003"}
	type result struct {
		rs  []reading.Reading
		err error
	}
	results := make([]chan result, len(devices))
	for i, d := range devices {
		results[i] = make(chan result, 1)
		go func() {
			rs, err := (&member{g: g, device: d}).Read(context.Background())
			results[i] <- result{rs, err}
		}()
	}
	waitFor(t, 5*time.Second, "the bulk read to start", func() bool { return b.reads.Load() == 1 })
	close(b.gate)
	r0, r1, r2 := <-results[0], <-results[1], <-results[2]
	if r0.err != nil || len(r0.rs) != 1 || r0.rs[0].Raw != 21.5 || r0.rs[0].Sensor != "" {
		t.Errorf("device 1: %+v", r0)
	}
	if r1.err != nil || len(r1.rs) != 1 || r1.rs[0].Raw != -10.125 {
		t.Errorf("device 2: %+v", r1)
	}
	if !errors.Is(r2.err, sensors.ErrCRC) || len(r2.rs) != 0 {
		t.Errorf("device 3: %+v, want a CRC error and no reading", r2)
	}
	// Within the same round a member gets the cached result...
	if _, err := (&member{g: g, device: devices[0]}).Read(context.Background()); err != nil || b.reads.Load() != 1 {
		t.Errorf("same round: err %v, %d bus reads", err, b.reads.Load())
	}
	// ...and the next round reads the bus again.
	mu.Lock()
	now = now.Add(10 * time.Second)
	mu.Unlock()
	if _, err := (&member{g: g, device: devices[1]}).Read(context.Background()); err != nil || b.reads.Load() != 2 {
		t.Errorf("next round: err %v, %d bus reads", err, b.reads.Load())
	}
}
