package mqtt

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/buffer"
	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/publish"
	"github.com/kelvin-gw/kelvin/reading"
)

// drainBacklog is the backlog each iteration of BenchmarkDrain sends: below
// the ~20k lines past which mosquitto_pub -l at QoS 1 disconnects before
// every message is acknowledged.
const drainBacklog = 20_000

// BenchmarkDrain measures how fast a backlog in the durable buffer reaches
// a loopback mosquitto at QoS 1 (kelvin: buffer cursor → Forward → this
// client, acknowledged batches), against mosquitto_pub -l -q 1 sending the
// same payloads to the same broker (the baseline). Both are counted by a
// subscriber (QoS 0, so its own acknowledgements are not the bottleneck),
// never by what the publisher claims. With -count, Go runs every repeat of
// the first sub-benchmark, then every repeat of the second: they do not
// interleave, so compare runs made close together.
func BenchmarkDrain(b *testing.B) {
	m := testenv.StartMosquitto(b)
	sub := subscribe(b, m.URL, "kelvin/bench/#", 0)
	sub.keep = false
	rs := make([]reading.Reading, drainBacklog)
	var lines bytes.Buffer
	for i := range rs {
		rs[i] = reading.Reading{Agent: "bench", Sensor: "air", Quantity: reading.Temperature, Unit: reading.UnitOf(reading.Temperature),
			Value: 20 + float64(i%1000)/100, Raw: 20.5, Time: time.Unix(1_800_000_000, 0).Add(time.Duration(i) * time.Second), Seq: uint64(i + 1)}
		lines.Write(rs[i].AppendJSON(nil))
		lines.WriteByte('\n')
	}

	b.Run("kelvin", func(b *testing.B) {
		cfg := DefaultConfig()
		cfg.URL = m.URL
		c := start(b, cfg, "bench")
		c.waitConnected(b)
		var sent int64
		b.ResetTimer()
		var elapsed time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			l, err := buffer.Open(filepath.Join(b.TempDir(), strconv.Itoa(i)), buffer.Config{MaxBytes: 64 << 20}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			cur, err := l.Cursor("mqtt")
			if err != nil {
				b.Fatal(err)
			}
			if err := l.Append(rs); err != nil {
				b.Fatal(err)
			}
			base := sub.count.Load()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			b.StartTimer()
			t0 := time.Now()
			go func() { done <- publish.Forward(ctx, cur, c.Client, publish.ForwardOptions{}, nil) }()
			testenv.WaitFor(b, "the backlog at the subscriber", func() bool { return sub.count.Load() >= base+drainBacklog })
			elapsed += time.Since(t0)
			b.StopTimer()
			cancel()
			<-done
			l.Close()
			sent += drainBacklog
		}
		b.ReportMetric(float64(sent)/elapsed.Seconds(), "msgs/s")
		b.ReportMetric(0, "ns/op")
	})

	b.Run("mosquitto_pub", func(b *testing.B) {
		pub := testenv.Require(b, "mosquitto_pub", "mosquitto-clients")
		file := filepath.Join(b.TempDir(), "lines")
		if err := os.WriteFile(file, lines.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
		var sent int64
		var elapsed time.Duration
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			in, err := os.Open(file)
			if err != nil {
				b.Fatal(err)
			}
			cmd := exec.Command(pub, "-h", "127.0.0.1", "-p", strconv.Itoa(m.Port), "-q", "1", "-t", "kelvin/bench/air", "-l")
			cmd.Stdin = in
			base := sub.count.Load()
			b.StartTimer()
			t0 := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("mosquitto_pub: %v\n%s", err, out)
			}
			testenv.WaitFor(b, "the lines at the subscriber", func() bool { return sub.count.Load() >= base+drainBacklog })
			elapsed += time.Since(t0)
			b.StopTimer()
			in.Close()
			sent += drainBacklog
		}
		b.ReportMetric(float64(sent)/elapsed.Seconds(), "msgs/s")
		b.ReportMetric(0, "ns/op")
	})
}
