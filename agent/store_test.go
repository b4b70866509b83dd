package agent

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/reading"
)

// TestStoreDropsRemovedOutput: a start (or reload) with an output removed
// from the config drops that output's cursor, with one log line naming it
// and the readings it had not sent; the remaining output keeps its place.
func TestStoreDropsRemovedOutput(t *testing.T) {
	cfg := &Config{}
	cfg.Agent.DataDir = t.TempDir()
	cfg.Buffer.HotDir = t.TempDir()
	var logs testenv.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	st, err := openStore(cfg, []string{"mqtt", "kafka"}, nil, wallclock.Now, log)
	if err != nil {
		t.Fatal(err)
	}
	mqtt, err := st.Source("mqtt")
	if err != nil {
		t.Fatal(err)
	}
	rs := make([]reading.Reading, 7)
	for i := range rs {
		rs[i] = reading.Reading{Agent: "a", Sensor: "air", Quantity: reading.Temperature, Unit: "°C", Value: float64(i), Time: wallclock.Now()}
	}
	if err := st.Append(rs); err != nil {
		t.Fatal(err)
	}
	got, err := mqtt.Next(ctx, 100)
	if err != nil || len(got) != 7 {
		t.Fatalf("mqtt read %d readings, %v", len(got), err)
	}
	if err := mqtt.Ack(len(got)); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, err = openStore(cfg, []string{"mqtt"}, nil, wallclock.Now, log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n := strings.Count(logs.String(), "cursor=kafka unsent=7"); n != 1 {
		t.Fatalf("%d log lines naming kafka's cursor and its 7 unsent readings, want 1; log:\n%s", n, logs.String())
	}
	if cs := st.Stats().Cursors; len(cs) != 1 || cs[0].Name != "mqtt" || cs[0].Backlog != 0 {
		t.Fatalf("cursors after the restart: %+v, want mqtt alone with nothing pending", cs)
	}
}
