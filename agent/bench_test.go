package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/reading"
	"github.com/kelvin-gw/kelvin/sensors"
)

// countingSensor returns a new value on every read, instantly: a
// triangle wave with no jumps, so the outlier filter keeps every sample.
type countingSensor struct{ n int }

func (c *countingSensor) Read(context.Context) ([]reading.Reading, error) {
	c.n++
	step := c.n % 200
	if step >= 100 {
		step = 200 - step
	}
	return []reading.Reading{{Quantity: reading.Temperature, Raw: 20 + float64(step)/16, Time: wallclock.Now()}}, nil
}

// BenchmarkReadingPath measures the whole path of a reading: sensor read →
// filter chain → durable buffer → MQTT publish at QoS 1 to a real mosquitto
// (acknowledged) and websocket fan-out to one page client. It reports
// delivered readings per second; b.N readings are read, then the benchmark
// waits until the broker acknowledged all of them.
func BenchmarkReadingPath(b *testing.B) {
	broker := testenv.StartMosquitto(b)
	port := testenv.FreePort(b)
	cfg, err := Parse("bench.yaml", []byte(fmt.Sprintf(`
agent: { id: bench, data_dir: %s }
sensors:
  - id: air
    type: sim
    interval: 1h
    filters: [ {outlier: {window: 7, mads: 3}}, {median: 5}, {ema: 0.3}, {round: 2} ]
buffer: { sync: 100ms, max_bytes: 256MiB }
mqtt: { url: %q, qos: 1 }
http: { listen: "127.0.0.1:%d" }
`, b.TempDir(), broker.URL, port)), os.LookupEnv)
	if err != nil {
		b.Fatal(err)
	}
	a, err := New(cfg, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	r := a.runners[0]
	fake := &countingSensor{}
	r.open = func() (sensors.Sensor, error) { return fake, nil }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, nil) }()
	defer func() { cancel(); <-done }()

	// One page client reading everything.
	var ws *websocket.Conn
	testenv.WaitFor(b, "the page's websocket", func() bool {
		ws, _, err = websocket.Dial(ctx, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil)
		return err == nil
	})
	defer ws.CloseNow()
	go func() {
		for {
			if _, _, err := ws.Read(ctx); err != nil {
				return
			}
		}
	}()
	testenv.WaitFor(b, "the MQTT output to connect", func() bool { return a.outputs[0].Status().Connected })
	base := a.outputs[0].Status().Sent
	appended0 := a.store.log.Stats().Appended
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		r.readOnce(ctx)
	}
	// Wait for every reading the chain let through (the buffer counts
	// them) to be acknowledged by the broker.
	// Polled every millisecond, as when the figures in BENCHMARKS.md were
	// taken; bounded, so that a broker gone away fails the benchmark.
	want := base + (a.store.log.Stats().Appended - appended0)
	for deadline := time.Now().Add(time.Minute); a.outputs[0].Status().Sent < want; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("the broker acknowledged %d of %d readings", a.outputs[0].Status().Sent-base, want-base)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "readings/s")
}

// bulkBench is a bus of n devices read in one call, at once.
type bulkBench struct{ rs []reading.Reading }

func (b *bulkBench) Read(context.Context) ([]reading.Reading, error) {
	now := wallclock.Now()
	for i := range b.rs {
		b.rs[i].Time = now
	}
	return b.rs, nil
}

// BenchmarkGroupRound measures one round of a bus group of 8 DS18B20s as
// the agent runs it, without the store: the first member's runner leads
// the others (runner.lead), reads the bus once, checks and filters every
// member's reading and emits them in one call. One op is one round.
func BenchmarkGroupRound(b *testing.B) {
	const n = 8
	bus := &bulkBench{}
	for i := range n {
		bus.rs = append(bus.rs, reading.Reading{Sensor: fmt.Sprintf("28-%012x", i+1), Quantity: reading.Temperature, Raw: 21.5})
	}
	now := wallclock.Now()
	clock := func() time.Time { return now }
	g := &group{open: func() (sensors.Sensor, error) { return bus, nil }, interval: time.Second, now: clock}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	g.start(ctx)
	var runners []*runner
	for i := range n {
		cfg := &SensorConfig{ID: fmt.Sprintf("t%d", i), Type: "ds18b20", Address: bus.rs[i].Sensor, Interval: time.Second}
		m := &member{g: g, device: cfg.Address}
		r, err := newRunner(cfg, func() (sensors.Sensor, error) { return m, nil }, func([]reading.Reading) {}, clock, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		if len(runners) > 0 {
			runners[0].lead(r)
		}
		runners = append(runners, r)
	}
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second)
		if err := runners[0].readOnce(ctx); err != nil {
			b.Fatal(err)
		}
	}
	g.wait()
}
