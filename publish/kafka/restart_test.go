//go:build !nokafka

package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

// restartOf returns the record's restart header, decoded; ok is false
// when it has none.
func restartOf(t *testing.T, r *kgo.Record) (reading.SensorRestart, bool) {
	t.Helper()
	for _, h := range r.Headers {
		if h.Key == reading.RestartHeader {
			sr, err := reading.ParseSensorRestart(h.Value)
			if err != nil {
				t.Fatalf("record %s: %v", r.Value, err)
			}
			return sr, true
		}
	}
	return reading.SensorRestart{}, false
}

// TestRestartHeader: after a restart that skipped seqs, each sensor's
// first reading at or after its seq_resume carries the restart header
// with the exact range skipped, the backlog from before the restart does
// not, and once acknowledged no later reading does; a gateway's
// announcement a fleet forwards goes out on that gateway's next reading
// the same way. Every record's value is a plain reading: kcat, which
// knows nothing of the header, reads only readings.
func TestRestartHeader(t *testing.T) {
	t.Parallel()
	port := testenv.FreePort(t)
	startCluster(t, kfake.Ports(port), kfake.SeedTopics(3, testTopic))
	broker := "127.0.0.1:" + strconv.Itoa(port)
	o := newTestOutput(t, testConfig([]string{broker}))
	started := time.Unix(1_900_000_000, 0).UTC()
	o.AnnounceSkipped(started, map[string][2]uint64{"air": {11, 65546}, "idle": {3, 65538}})

	// The backlog of the run before (air 1..10), then the first readings
	// of this run (air from 65547); soil did not skip.
	air := append(readings("air", reading.Temperature, 1, 10), readings("air", reading.Temperature, 65547, 5)...)
	soil := readings("soil", reading.Temperature, 1, 15)
	// Another gateway the fleet forwards: it announced seq_resume 501
	// after skipping from 300, but reading 501 never came: 502 carries it.
	fwd := readings("tank", reading.Temperature, 495, 8)
	fwd = append(fwd[:6], fwd[7:]...)
	for i := range fwd {
		fwd[i].Agent = "gw-far"
	}
	o.MirrorGatewayRestart("gw-far", []byte(`{"started":"2026-12-04T22:00:00Z","seq_resume":{"tank":501},"skip_from":{"tank":300}}`))
	must(t, o.Publish(context.Background(), interleave(air, soil, fwd)))
	// After the acknowledgement, the next readings carry nothing.
	must(t, o.Publish(context.Background(), readings("air", reading.Temperature, 65552, 3)))

	recs := consume(t, []string{broker}, testTopic, 10+5+15+7+3)
	var got []string
	for _, r := range recs {
		if sr, ok := restartOf(t, r); ok {
			got = append(got, string(r.Key)+" "+strconv.FormatUint(seqOf(t, r.Value), 10)+" "+string(reading.MarshalSensorRestart(sr)))
		}
	}
	want := []string{
		testAgent + `/air 65547 {"started":"2030-03-17T17:46:40Z","seq_resume":65547,"skip_from":11}`,
		`gw-far/tank 502 {"started":"2026-12-04T22:00:00Z","seq_resume":501,"skip_from":300}`,
	}
	if len(got) != len(want) || (got[0] != want[0] && got[0] != want[1]) || (got[1] != want[0] && got[1] != want[1]) || got[0] == got[1] {
		t.Fatalf("records with a restart header:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := o.nMarks.Load(); n != 1 {
		t.Errorf("%d restart marks left, want 1 (idle, which had no reading yet)", n)
	}

	// A consumer that knows nothing of headers: every value is a reading.
	kcat := testenv.Require(t, "kcat", "kcat")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, kcat, "-C", "-b", broker, "-t", testTopic, "-o", "beginning", "-e", "-q", "-f", `%s\n`)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if len(lines) != len(recs) {
		t.Fatalf("kcat read %d values, want %d", len(lines), len(recs))
	}
	for _, l := range lines {
		var r struct {
			Agent, Sensor string
			Seq           uint64
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Agent == "" || r.Sensor == "" || r.Seq == 0 {
			t.Errorf("kcat read %q, not a reading (%v)", l, err)
		}
	}
}
