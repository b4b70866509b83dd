// Command fleetload simulates a fleet of Kelvin gateways for the fleet
// view: N gateways × M sensors publishing Kelvin-format readings at a rate
// to mosquitto (or producing to Kafka), with a controlled share of
// duplicates, gaps (seqs never sent: the losses the fleet must count),
// reordering and restarts (a skipped block of seqs, announced in the
// gateway's status object over MQTT, and over Kafka, as Kelvin does, in a
// restart header on each sensor's first reading after the restart). With -ws it also follows the fleet page's
// websocket and reports the latency from publish to websocket; with -pid
// the fleet process's CPU share and resident memory.
//
//	go run ./scripts/fleetload -gateways 1000 -sensors 10 -duration 60s \
//	    -ws ws://127.0.0.1:8080/fleet/ws -api http://127.0.0.1:8080/api/fleet -pid $(pgrep -n kelvin)
//
// With -serve-kfake PORT it publishes nothing and runs a kfake cluster
// (franz-go's in-memory Kafka) on 127.0.0.1:PORT instead, for a fleet and
// another fleetload -kafka to use:
//
//	go run ./scripts/fleetload -serve-kfake 19092 -partitions 6 &
//	go run ./scripts/fleetload -kafka 127.0.0.1:19092 -gateways 200 -duration 20s ...
//
// It is a benchmark tool, not part of the agent binary.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kelvin-gw/kelvin/reading"
)

type options struct {
	url, kafka, topic, ws, api, format string
	gateways, sensors, conns, follow   int
	rate                               float64
	duration, settle                   time.Duration
	dup, gap, reorder, restart         float64
	pid                                int
	seed                               uint64
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "tcp://127.0.0.1:1883", "MQTT broker")
	flag.StringVar(&o.kafka, "kafka", "", "Kafka seed brokers (comma-separated): produce there instead of MQTT")
	flag.StringVar(&o.topic, "kafka-topic", "kelvin.readings", "Kafka topic")
	flag.StringVar(&o.format, "format", "json", "payload format: json, influx or senml")
	flag.IntVar(&o.gateways, "gateways", 100, "simulated gateways")
	flag.IntVar(&o.sensors, "sensors", 10, "sensors per gateway")
	flag.IntVar(&o.conns, "conns", 20, "MQTT connections the gateways share")
	flag.Float64Var(&o.rate, "rate", 1, "readings per second per sensor")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "how long to publish")
	flag.DurationVar(&o.settle, "settle", 0, "after publishing, wait this long (longer than the fleet's loss_after) and compare its loss count with the injected gaps")
	flag.Float64Var(&o.dup, "dup", 0.01, "share of readings sent twice")
	flag.Float64Var(&o.gap, "gap", 0.001, "share of seqs never sent (injected losses)")
	flag.Float64Var(&o.reorder, "reorder", 0.01, "share of readings held back and sent after the next one")
	flag.Float64Var(&o.restart, "restart", 0.0005, "chance per gateway per second of a restart: a block of 100 seqs skipped and announced")
	flag.StringVar(&o.ws, "ws", "", "the fleet's websocket (ws://HOST:PORT/fleet/ws): measure publish → websocket latency")
	flag.IntVar(&o.follow, "follow", 200, "gateways the websocket follows (at most 200 per client)")
	flag.StringVar(&o.api, "api", "", "the fleet's /api/fleet, read at the end")
	flag.IntVar(&o.pid, "pid", 0, "the fleet process: report its CPU share and RSS")
	flag.Uint64Var(&o.seed, "seed", 1, "random seed")
	serveKfake := flag.Int("serve-kfake", 0, "instead of publishing, run a kfake cluster (franz-go's in-memory Kafka) on 127.0.0.1 at this port with -kafka-topic, until interrupted")
	partitions := flag.Int("partitions", 6, "with -serve-kfake: the topic's partitions")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *serveKfake != 0 {
		if err := serve(ctx, *serveKfake, o.topic, *partitions); err != nil {
			log.Fatal(err)
		}
		return
	}
	if _, err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

// serve runs a one-broker kfake cluster on 127.0.0.1:port with topic
// until ctx is done: the Kafka of the fleet's Kafka checks, run as its own
// process.
func serve(ctx context.Context, port int, topic string, partitions int) error {
	c, err := kfake.NewCluster(kfake.Ports(port), kfake.SeedTopics(int32(partitions), topic))
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Printf("kfake on %v, topic %s with %d partitions\n", c.ListenAddrs(), topic, partitions)
	<-ctx.Done()
	return nil
}

// sink publishes one payload for a gateway; restart, when not nil, is the
// restart header of a sensor's first reading after a restart (Kafka only).
type sink interface {
	send(gw int, topic string, payload []byte, retained bool, restart []byte)
	close()
}

type mqttSink struct{ cs []*mqttConn }

// mqttConn is one connection and its publishes not yet seen acknowledged:
// close waits for them, or the last ones of a run would be cut off with
// the connection (paho's Disconnect does not wait for them).
type mqttConn struct {
	c       paho.Client
	mu      sync.Mutex
	pending []paho.Token
	prune   int // prune pending once it is this long
}

func newMQTTSink(o options) (*mqttSink, error) {
	s := &mqttSink{}
	for i := range o.conns {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(o.url).SetClientID(fmt.Sprintf("fleetload-%d", i)).
			SetMaxResumePubInFlight(1000).SetWriteTimeout(10 * time.Second))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return nil, fmt.Errorf("connect %s: %v", o.url, tok.Error())
		}
		s.cs = append(s.cs, &mqttConn{c: c, prune: 4096})
	}
	return s, nil
}

func (s *mqttSink) send(gw int, topic string, payload []byte, retained bool, _ []byte) {
	c := s.cs[gw%len(s.cs)]
	tok := c.c.Publish(topic, 1, retained, payload) // QoS 1, not waited for: paho pipelines
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = append(c.pending, tok)
	if len(c.pending) >= c.prune {
		c.pending = slices.DeleteFunc(c.pending, func(t paho.Token) bool {
			select {
			case <-t.Done():
				return true
			default:
				return false
			}
		})
		c.prune = max(4096, 2*len(c.pending))
	}
}

func (s *mqttSink) close() {
	failed := 0
	for _, c := range s.cs {
		c.mu.Lock()
		for _, t := range c.pending {
			if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
				failed++
			}
		}
		c.mu.Unlock()
		c.c.Disconnect(1000)
	}
	if failed > 0 {
		fmt.Printf("%d publishes not acknowledged by the broker\n", failed)
	}
}

type kafkaSink struct {
	cl    *kgo.Client
	topic string
}

func (s *kafkaSink) send(_ int, topic string, payload []byte, _ bool, restart []byte) {
	if strings.HasSuffix(topic, "/status") {
		return // statuses are MQTT only
	}
	key := strings.TrimPrefix(topic, "kelvin/")
	agent, sensor, _ := strings.Cut(key, "/")
	// The headers Kelvin's Kafka output sets (quantity left out).
	h := []kgo.RecordHeader{{Key: "agent", Value: []byte(agent)}, {Key: "sensor", Value: []byte(sensor)}}
	if restart != nil {
		h = append(h, kgo.RecordHeader{Key: reading.RestartHeader, Value: restart})
	}
	s.cl.Produce(context.Background(), &kgo.Record{Topic: s.topic, Key: []byte(key), Value: payload, Headers: h}, nil)
}

func (s *kafkaSink) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.cl.Flush(ctx)
	s.cl.Close()
}

// gateway is one simulated gateway's state.
type gateway struct {
	id    string
	next  []uint64 // per sensor
	held  []*reading.Reading
	trail []int64 // seqs not sent since the sensor's last reading: a loss only once a later one reveals it
	// restart is, per sensor, the restart header its next reading sent
	// carries (nil: none), as Kelvin's Kafka output sets it.
	restart [][]byte
}

// counts is what a run published: sent counts each distinct reading
// once, dups the copies sent again, gaps the seqs never sent that a later
// reading reveals, trailing those after a sensor's last reading, skipped
// the seqs restarts announced as skipped.
type counts struct {
	sent, dups, gaps, trailing, reordered, restarts, skipped atomic.Int64
}

// run publishes as o says, reports, and returns what it published; the
// sink is closed (its last messages flushed) when it returns.
func run(ctx context.Context, o options) (*counts, error) {
	format, err := reading.ParseFormat(o.format)
	if err != nil || format == reading.FormatValue {
		return nil, fmt.Errorf("-format: want json, influx or senml")
	}
	var s sink
	if o.kafka != "" {
		cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(o.kafka, ",")...), kgo.DefaultProduceTopic(o.topic))
		if err != nil {
			return nil, err
		}
		s = &kafkaSink{cl: cl, topic: o.topic}
	} else if s, err = newMQTTSink(o); err != nil {
		return nil, err
	}
	defer s.close()

	var lat latencies
	if o.ws != "" {
		go lat.follow(ctx, o)
	}
	var cpu0 float64
	if o.pid > 0 {
		cpu0 = cpuSeconds(o.pid)
	}
	var rssMax atomic.Int64
	if o.pid > 0 {
		go func() {
			for ctx.Err() == nil {
				rssMax.Store(max(rssMax.Load(), rss(o.pid)))
				time.Sleep(time.Second)
			}
		}()
	}

	gws := make([]*gateway, o.gateways)
	for i := range gws {
		gws[i] = &gateway{id: fmt.Sprintf("sim-%05d", i), next: make([]uint64, o.sensors), held: make([]*reading.Reading, o.sensors), trail: make([]int64, o.sensors), restart: make([][]byte, o.sensors)}
		for j := range gws[i].next {
			gws[i].next[j] = 1
		}
		s.send(i, "kelvin/"+gws[i].id+"/status", []byte("online"), true, nil)
	}
	c := &counts{}
	// One goroutine per connection's share of gateways, each on a tick of
	// 1/rate: every tick, every sensor of its gateways publishes once.
	workers := min(o.conns, o.gateways)
	start := time.Now()
	end := start.Add(o.duration)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(o.seed, uint64(w)))
			tick := time.Duration(float64(time.Second) / o.rate)
			// Spread the workers over the tick.
			next := start.Add(tick * time.Duration(w) / time.Duration(workers))
			buf := make([]byte, 0, 256)
			for ctx.Err() == nil && next.Before(end) {
				time.Sleep(time.Until(next))
				next = next.Add(tick)
				for gi := w; gi < len(gws); gi += workers {
					g := gws[gi]
					if g.next[0] > 1 && rng.Float64() < o.restart/o.rate {
						restart(s, gi, g, c)
					}
					for si := range g.next {
						seq := g.next[si]
						g.next[si]++
						// The fleet counts from the first seq it sees of a
						// sensor: the first is always sent, in order.
						first := seq == 1
						if !first && rng.Float64() < o.gap {
							g.trail[si]++
							continue
						}
						c.gaps.Add(g.trail[si])
						g.trail[si] = 0
						r := &reading.Reading{Agent: g.id, Sensor: "s" + strconv.Itoa(si), Quantity: reading.Temperature, Unit: "°C",
							Value: 20 + rng.NormFloat64(), Raw: 20, Time: time.Now(), Seq: seq}
						r.Raw = r.Value
						if !first && g.held[si] == nil && rng.Float64() < o.reorder {
							g.held[si] = r
							c.reordered.Add(1)
							continue
						}
						topic := "kelvin/" + g.id + "/" + r.Sensor
						buf = format.Append(buf[:0], r)
						hdr := g.restart[si]
						g.restart[si] = nil
						s.send(gi, topic, slices.Clone(buf), false, hdr)
						c.sent.Add(1)
						if h := g.held[si]; h != nil {
							g.held[si] = nil
							h.Time = time.Now()
							buf = format.Append(buf[:0], h)
							s.send(gi, topic, slices.Clone(buf), false, nil)
							c.sent.Add(1)
							hdr = nil
						}
						if rng.Float64() < o.dup {
							s.send(gi, topic, slices.Clone(buf), false, hdr) // the same record again
							c.dups.Add(1)
						}
					}
				}
			}
			// Send what is still held back, so that only the gaps are missing.
			for gi := w; gi < len(gws); gi += workers {
				g := gws[gi]
				for si, h := range g.held {
					c.trailing.Add(g.trail[si])
					if h != nil {
						buf = format.Append(buf[:0], h)
						s.send(gi, "kelvin/"+g.id+"/"+h.Sensor, slices.Clone(buf), false, nil)
						c.sent.Add(1)
						g.held[si] = nil
					}
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Printf("published %d readings in %.1f s (%.0f/s) from %d gateways × %d sensors: %d duplicates, %d gaps (lost; %d more at the very end, which no later reading reveals), %d reordered, %d restarts (%d seqs skipped)\n",
		c.sent.Load(), elapsed.Seconds(), float64(c.sent.Load())/elapsed.Seconds(), o.gateways, o.sensors,
		c.dups.Load(), c.gaps.Load(), c.trailing.Load(), c.reordered.Load(), c.restarts.Load(), c.skipped.Load())
	if o.pid > 0 {
		fmt.Printf("fleet process %d: CPU %.1f%% of one core over the run, RSS max %.1f MiB\n",
			o.pid, 100*(cpuSeconds(o.pid)-cpu0)/elapsed.Seconds(), float64(rssMax.Load())/(1<<20))
	}
	if o.ws != "" {
		time.Sleep(2 * time.Second) // the last readings in flight
		lat.report()
	}
	if o.api != "" {
		if o.settle > 0 {
			fmt.Printf("waiting %v for the fleet's loss_after\n", o.settle)
			select {
			case <-time.After(o.settle):
			case <-ctx.Done():
			}
		}
		var sum struct {
			Total  int `json:"total"`
			Totals struct {
				Received, Duplicates, Pending, Lost, Skipped uint64
			} `json:"totals"`
		}
		resp, err := http.Get(o.api + "?limit=1")
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&sum); err != nil {
			return nil, err
		}
		fmt.Printf("fleet: %d gateways, received %d, duplicates %d, pending %d, lost %d (injected %d), skipped %d (announced %d)\n",
			sum.Total, sum.Totals.Received, sum.Totals.Duplicates, sum.Totals.Pending, sum.Totals.Lost, c.gaps.Load(), sum.Totals.Skipped, c.skipped.Load())
	}
	return c, nil
}

// restart simulates a gateway restart with seqs reserved in blocks: every
// sensor skips to the next block of 100, and the status says so (MQTT);
// over Kafka each sensor's next reading sent carries the restart header
// with the range skipped (if the reading at seq_resume is an injected gap,
// the first one after it carries it, as a forwarding fleet would).
func restart(s sink, gi int, g *gateway, c *counts) {
	skip := map[string][2]uint64{}
	started := time.Now()
	for si, next := range g.next {
		if g.held[si] != nil {
			continue // keep it simple: no restart with a reading held back
		}
		resume := (next/100 + 1) * 100
		skip["s"+strconv.Itoa(si)] = [2]uint64{next, resume - 1}
		g.restart[si] = reading.MarshalSensorRestart(reading.SensorRestart{Started: started, SeqResume: resume, SkipFrom: next})
		c.skipped.Add(int64(resume - next))
		g.next[si] = resume
	}
	b, _ := json.Marshal(map[string]any{"state": "online", "skip": skip})
	s.send(gi, "kelvin/"+g.id+"/status", b, true, nil)
	c.restarts.Add(1)
}

// latencies collects publish → websocket delays.
type latencies struct {
	mu  sync.Mutex
	ms  []float64
	got int
}

func (l *latencies) follow(ctx context.Context, o options) {
	c, _, err := websocket.Dial(ctx, o.ws, nil)
	if err != nil {
		log.Printf("websocket: %v", err)
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	var agents []string
	for i := range min(o.follow, o.gateways) {
		agents = append(agents, fmt.Sprintf("sim-%05d", i))
	}
	sub, _ := json.Marshal(map[string]any{"agents": agents})
	c.Write(ctx, websocket.MessageText, sub)
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		now := time.Now()
		var r struct {
			TS time.Time `json:"ts"`
		}
		if json.Unmarshal(b, &r) == nil {
			l.mu.Lock()
			l.ms = append(l.ms, float64(now.Sub(r.TS).Microseconds())/1000)
			l.mu.Unlock()
		}
	}
}

func (l *latencies) report() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ms) == 0 {
		fmt.Println("websocket: no readings received")
		return
	}
	slices.Sort(l.ms)
	q := func(p float64) float64 { return l.ms[min(len(l.ms)-1, int(p*float64(len(l.ms))))] }
	fmt.Printf("publish → websocket latency over %d readings: p50 %.1f ms, p99 %.1f ms, max %.1f ms (ts has ms precision)\n",
		len(l.ms), q(0.50), q(0.99), l.ms[len(l.ms)-1])
}

// cpuSeconds reads a process's user+system CPU time.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// rss reads a process's resident set size in bytes.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
