package mqtt

import (
	"context"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// TestRestartAnnouncementSkipped: the retained kelvin/{agent}/restart
// message names, per sensor, where its seqs resumed and the first seq
// skipped, so a fleet counts exactly that range as skipped.
func TestRestartAnnouncementSkipped(t *testing.T) {
	m := testenv.StartMosquitto(t)
	cfg := DefaultConfig()
	cfg.URL = m.URL
	c, err := New(cfg, "a5", testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	c.AnnounceSkipped(time.Unix(1_900_000_000, 0), map[string][2]uint64{"28-0316a2b8ff01": {1743, 65536}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	retained(t, m.URL, "kelvin/a5/restart") // published (live or retained)
	r := retained(t, m.URL, "kelvin/a5/restart")
	want := `{"started":"2030-03-17T17:46:40Z","seq_resume":{"28-0316a2b8ff01":65537},"skip_from":{"28-0316a2b8ff01":1743}}`
	if !r.Retained || r.Payload != want {
		t.Fatalf("restart announcement = %+v, want retained %s", r, want)
	}
}
