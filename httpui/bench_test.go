package httpui

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

// BenchmarkPublishFanout publishes readings to n websocket clients reading
// on loopback, end to end: an iteration is one reading delivered to every
// client. Publishing goes in windows of 32 readings, each waiting until
// every client got it, so no client ever falls behind the hub.
func BenchmarkPublishFanout(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			s := New(Config{MaxClients: n, MaxConnections: n + 8, MaxConnectionsPerAddress: n + 8}, nil, nil, nil) // all on 127.0.0.1
			addr := serve(b, s, nil)
			const window = 32
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

// BenchmarkFanoutLatency paces readings at 20 per second (20 sensors at
// 1 Hz) to n websocket clients on loopback and reports the latency from
// Publish to each client's receipt (p50, p99, max), and the CPU time and
// heap per client. Clients run in this process, so CPU and heap count both
// ends of each connection. Run it with -benchtime=200x (10 s).
func BenchmarkFanoutLatency(b *testing.B) {
	for _, n := range []int{100, 500} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			runtime.GC()
			var m0 runtime.MemStats
			runtime.ReadMemStats(&m0)
			s := New(Config{MaxClients: n, MaxConnections: n + 8, MaxConnectionsPerAddress: n + 8}, nil, nil, nil) // all on 127.0.0.1
			addr := serve(b, s, nil)
			sent := make([]atomic.Int64, b.N+1) // unix ns of each seq's Publish
			lat := make([][]time.Duration, n)
			var wg sync.WaitGroup
			for i := range n {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { c.CloseNow() })
				lat[i] = make([]time.Duration, 0, b.N)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for len(lat[i]) < b.N {
						_, msg, err := c.Read(context.Background())
						if err != nil {
							return
						}
						at := time.Now()
						seq := seqOf(msg)
						if seq > 0 && seq < len(sent) {
							lat[i] = append(lat[i], at.Sub(time.Unix(0, sent[seq].Load())))
						}
					}
				}()
			}
			testenv.WaitFor(b, "every client registered", func() bool { return s.Clients() == n })
			runtime.GC()
			var m1 runtime.MemStats
			runtime.ReadMemStats(&m1)
			cpu0 := cpuTime()
			r := reading.Reading{Agent: "greenhouse-1", Sensor: "28-0316a2b8ff01", Quantity: reading.Temperature,
				Value: 21.4375, Raw: 21.5, Unit: "°C", Time: t0}
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			b.ResetTimer()
			for i := 1; i <= b.N; i++ {
				<-tick.C
				r.Seq = uint64(i)
				sent[i].Store(time.Now().UnixNano())
				s.Publish(r)
			}
			wg.Wait()
			b.StopTimer()
			cpu := cpuTime() - cpu0
			var all []time.Duration
			for i := range lat {
				if len(lat[i]) != b.N {
					b.Fatalf("client %d got %d of %d readings", i, len(lat[i]), b.N)
				}
				all = append(all, lat[i]...)
			}
			slices.Sort(all)
			q := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))]) / 1e3 }
			b.ReportMetric(q(0.50), "p50-µs")
			b.ReportMetric(q(0.99), "p99-µs")
			b.ReportMetric(float64(all[len(all)-1])/1e3, "max-µs")
			b.ReportMetric(float64(cpu)/float64(n)/float64(b.N)*20/1e3, "cpu-µs/client/s")
			b.ReportMetric(float64(m1.HeapInuse-m0.HeapInuse)/float64(n)/1024, "heap-KiB/client")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// seqOf finds the seq of a reading's JSON without decoding it.
func seqOf(msg []byte) int {
	i := bytes.LastIndex(msg, []byte(`"seq":`))
	if i < 0 {
		return 0
	}
	n := 0
	for _, c := range msg[i+6:] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// cpuTime is this process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkServePage is the server's share of a first paint: the page, its
// script and its style, gzipped as a browser asks for them, through the
// handler (no network). It reports the bytes sent for the three.
func BenchmarkServePage(b *testing.B) {
	s := New(Config{}, nil, nil, nil)
	h := s.Handler()
	var sent int
	for b.Loop() {
		sent = 0
		for _, p := range []string{"/", "/app.js", "/style.css"} {
			req := httptest.NewRequest("GET", p, nil)
			req.Host = "localhost"
			req.Header.Set("Accept-Encoding", "gzip, deflate, br")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatalf("GET %s: %d", p, w.Code)
			}
			sent += w.Body.Len()
		}
	}
	b.ReportMetric(float64(sent), "bytes-sent")
}
