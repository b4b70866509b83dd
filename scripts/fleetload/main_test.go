package main

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kelvin-gw/kelvin/fleet"
	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// TestFleetCountsWhatWasInjected: the generator's duplicates, gaps,
// reordering and restarts, over MQTT in each payload format and over
// Kafka, reach a fleet that counts exactly what was injected: every
// distinct reading received once, the copies as duplicates, the revealed
// gaps as lost, the announced restarts' seqs as skipped, nothing pending.
func TestFleetCountsWhatWasInjected(t *testing.T) {
	for _, tc := range []struct{ name, format string }{
		{"mqtt json", "json"},
		{"mqtt influx", "influx"},
		{"mqtt senml", "senml"},
		{"kafka json", "json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := options{format: tc.format, topic: fleet.DefaultKafkaTopic, gateways: 20, sensors: 5, conns: 4, rate: 10,
				duration: 2 * time.Second, dup: 0.05, gap: 0.02, reorder: 0.05, restart: 0.1, seed: 3}
			cfg := fleet.Config{LossAfter: 3 * time.Second} // longer than a reading is held back
			if tc.name[:5] == "kafka" {
				cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, fleet.DefaultKafkaTopic))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(cluster.Close)
				o.kafka = cluster.ListenAddrs()[0]
				cfg.Kafka = &fleet.KafkaConfig{Brokers: cluster.ListenAddrs()}
			} else {
				// The broker queues for the fleet what a race-instrumented
				// fleet has not taken yet, as the benchmark's does (its
				// default, 1,000, would drop the rest: a loss not injected).
				o.url = testenv.StartMosquitto(t, "max_queued_messages 1000000").URL
				cfg.MQTT = &fleet.MQTTConfig{URL: o.url}
			}
			cfg.SetDefaults("fleetload-test")
			f, err := fleet.New(cfg, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			done := make(chan error, 1)
			go func() { done <- f.Run(ctx) }()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("fleet: %v", err)
				}
			})
			testenv.WaitFor(t, "the fleet's source", func() bool {
				for _, up := range f.Summary("", 0, 1).Sources {
					if up {
						return true
					}
				}
				return false
			})

			c, err := run(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			if c.dups.Load() == 0 || c.gaps.Load() == 0 || c.reordered.Load() == 0 || c.restarts.Load() == 0 {
				t.Fatalf("nothing to count: %d duplicates, %d gaps, %d reordered, %d restarts",
					c.dups.Load(), c.gaps.Load(), c.reordered.Load(), c.restarts.Load())
			}
			var got fleet.Counts
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("fleet %+v; published %d, %d duplicates, %d gaps, %d skipped by %d restarts",
						got, c.sent.Load(), c.dups.Load(), c.gaps.Load(), c.skipped.Load(), c.restarts.Load())
				}
			})
			testenv.WaitForWithin(t, time.Minute, "every reading taken and every gap counted", func() bool {
				got = f.Summary("", 0, 1).Totals
				return got.Received == uint64(c.sent.Load()) && got.Pending == 0 && got.Lost == uint64(c.gaps.Load())
			})
			if got.Duplicates != uint64(c.dups.Load()) || got.Skipped != uint64(c.skipped.Load()) || got.Resets != 0 {
				t.Fatal("duplicates, skipped or resets differ")
			}
		})
	}
}
