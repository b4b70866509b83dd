package httpui

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kelvin-gw/kelvin/reading"
)

// BenchmarkPublishFanout publishes readings to n websocket clients reading
// on loopback, end to end: an iteration is one reading delivered to every
// client. Publishing goes in windows of half a client queue, each waiting
// until every client got it, so no client is ever dropped.
func BenchmarkPublishFanout(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			s := New(Config{MaxClients: n}, nil, nil, nil)
			addr := serve(b, s, nil)
			const window = clientQueue / 2
			got := make(chan struct{}, n)
			for range n {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { c.CloseNow() })
				go func() {
					for count := 1; ; count++ {
						if _, _, err := c.Read(context.Background()); err != nil {
							return
						}
						if count%window == 0 {
							got <- struct{}{}
						}
					}
				}()
			}
			r := reading.Reading{Agent: "greenhouse-1", Sensor: "28-0316a2b8ff01", Quantity: reading.Temperature,
				Value: 21.4375, Raw: 21.5, Unit: "°C", Time: t0}
			b.ReportAllocs()
			start := time.Now()
			i := 0
			for b.Loop() {
				i++
				r.Seq = uint64(i)
				s.Publish(r)
				if i%window == 0 {
					for range n {
						<-got
					}
				}
			}
			if s.Clients() != n {
				b.Fatalf("%d of %d clients left", s.Clients(), n)
			}
			b.ReportMetric(float64(i)/time.Since(start).Seconds(), "readings/s")
			b.ReportMetric(float64(i*n)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}
