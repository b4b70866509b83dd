//go:build !nokafka

package kafka

import (
	"bytes"
	"context"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

// TestKcat has kcat, a client built on librdkafka and independent of
// franz-go, read back what the output wrote: zstd batches, keys and values.
func TestKcat(t *testing.T) {
	t.Parallel()
	kcat := testenv.Require(t, "kcat", "kcat")
	port := testenv.FreePort(t)
	startCluster(t, kfake.Ports(port), kfake.SeedTopics(3, testTopic))
	broker := "127.0.0.1:" + strconv.Itoa(port)
	o := newTestOutput(t, testConfig([]string{broker}))

	batch := interleave(
		readings("air", reading.Temperature, 1, 20),
		readings("i2c-1-0x76", reading.Pressure, 1, 20),
		readings("28-0316a2b8ff01", reading.Temperature, 1, 20),
	)
	must(t, o.Publish(context.Background(), batch))

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, kcat, "-C", "-b", broker, "-t", testTopic, "-o", "beginning", "-e", "-q", "-f", `%k\t%s\n`)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, stderr.String())
	}

	got := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	var want []string
	for i := range batch {
		want = append(want, testAgent+"/"+batch[i].Sensor+"\t"+string(batch[i].AppendJSON(nil)))
	}
	// kcat reads the partitions one after another: compare as sets here,
	// and the order within each key (one series per sensor) below.
	sortedGot, sortedWant := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(sortedGot, sortedWant) {
		t.Fatalf("kcat read\n%s\nwant (in any order)\n%s", stdout.String(), strings.Join(want, "\n"))
	}
	last := map[string]uint64{}
	for _, line := range got {
		key, value, _ := strings.Cut(line, "\t")
		seq := seqOf(t, []byte(value))
		if seq != last[key]+1 {
			t.Errorf("%s: seq %d after %d", key, seq, last[key])
		}
		last[key] = seq
	}
}
