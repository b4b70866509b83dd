//go:build !nokafka

package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/kelvin-gw/kelvin/internal/kafkaauth"
	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

// produce writes Kelvin JSON readings seq from..to of agent/sensor, keyed
// as Kelvin's Kafka output keys them.
func produce(t *testing.T, cl *kgo.Client, agent, sensor string, from, to uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for seq := from; seq <= to; seq++ {
		r := &kgo.Record{Topic: DefaultKafkaTopic, Key: []byte(agent + "/" + sensor),
			Value: payload(reading.FormatJSON, agent, sensor, seq, float64(seq), time.Unix(1_800_000_000+int64(seq), 0))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// runKafkaFleet runs a fleet reading the cluster as group until the test
// or stop ends it.
func runKafkaFleet(t *testing.T, brokers []string, group string) (*Fleet, func()) {
	t.Helper()
	return runKafkaFleetWith(t, nil, func(c *Config) { c.Kafka = &KafkaConfig{Brokers: brokers, Group: group} })
}

// runKafkaFleetWith runs a fleet configured by mut, which sets its Kafka
// source, logging to log, until the test or stop ends it.
func runKafkaFleetWith(t *testing.T, log *slog.Logger, mut func(*Config)) (*Fleet, func()) {
	t.Helper()
	f, _ := newTestFleetLog(t, log, func(c *Config) {
		c.MQTT = nil
		mut(c)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("fleet run: %v", err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
	})
	return f, stop
}

func received(f *Fleet, agent string) uint64 {
	gi, _, _ := f.Gateway(agent, false)
	return gi.Received
}

// TestKafkaSourceResumesAndReplicates: a fleet reads the topic as a
// consumer group and drops duplicates; another instance of the same group
// resumes at the committed offsets (it does not read the first readings
// again); an instance with its own group reads everything.
func TestKafkaSourceResumesAndReplicates(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, DefaultKafkaTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	produce(t, prod, "gw-a", "air", 1, 50)
	produce(t, prod, "gw-a", "air", 41, 50) // resent after a reconnect
	produce(t, prod, "gw-b", "tank", 1, 50)

	f1, stop1 := runKafkaFleet(t, brokers, "view")
	testenv.WaitFor(t, "the first fleet to read every reading", func() bool {
		return received(f1, "gw-a") == 50 && received(f1, "gw-b") == 50
	})
	if gi, _, _ := f1.Gateway("gw-a", false); gi.Duplicates != 10 || gi.Lost != 0 || gi.Pending != 0 {
		t.Fatalf("gw-a: %+v, want 10 duplicates and nothing missing", gi.Counts)
	}
	stop1() // commits its offsets

	produce(t, prod, "gw-a", "air", 51, 60)
	f2, _ := runKafkaFleet(t, brokers, "view")
	testenv.WaitFor(t, "the restarted fleet to read the new readings", func() bool { return received(f2, "gw-a") == 10 })
	_, ss, _ := f2.Gateway("gw-a", false)
	if len(ss) != 1 || ss[0].High != 60 || ss[0].Received != 10 {
		t.Fatalf("restarted fleet: %+v, want seqs 51..60 only (resumed at the committed offset)", ss)
	}
	if _, _, ok := f2.Gateway("gw-b", false); ok {
		t.Fatal("restarted fleet read gw-b's old readings again")
	}

	f3, _ := runKafkaFleet(t, brokers, "replica")
	testenv.WaitFor(t, "a fleet with its own group to read everything", func() bool {
		return received(f3, "gw-a") == 60 && received(f3, "gw-b") == 50
	})
}

// TestKafkaSourceSASL: a fleet with a wrong password shows the broker's
// refusal as its source's error, logs it once however often kgo retries,
// and reads once the password file is fixed, without a restart.
func TestKafkaSourceSASL(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, DefaultKafkaTopic), kfake.EnableSASL(),
		kfake.Superuser(kafkaauth.MechanismSCRAMSHA256, "fleet", "s3cret"),
		kfake.Superuser(kafkaauth.MechanismPlain, "gateway", "gw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	var attempts atomic.Int32
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		attempts.Add(1)
		return nil, nil, false // kfake authenticates
	})
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.SASL(plain.Auth{User: "gateway", Pass: "gw"}.AsMechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	produce(t, prod, "gw-a", "air", 1, 10)

	pass := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pass, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs testenv.SyncBuffer
	f, _ := runKafkaFleetWith(t, slog.New(slog.NewTextHandler(&logs, nil)), func(cfg *Config) {
		cfg.Kafka = &KafkaConfig{Brokers: c.ListenAddrs(), SASL: kafkaauth.SASLConfig{
			Mechanism: "scram-sha-256", Username: "fleet", PasswordFile: pass}}
	})
	testenv.WaitFor(t, "the refusal as the source's error, after a few retries", func() bool {
		return strings.Contains(f.Summary("", 0, 1).SourceErrors["kafka"], "SASL") && attempts.Load() >= 3
	})
	sum := f.Summary("", 0, 1)
	t.Logf("source error: %s", sum.SourceErrors["kafka"])
	if sum.Sources["kafka"] || sum.Total != 0 {
		t.Fatalf("with a wrong password: %+v", sum)
	}
	var metrics strings.Builder
	f.WriteMetrics(&metrics)
	if !strings.Contains(metrics.String(), `kelvin_fleet_source_up{source="kafka"} 0`) {
		t.Errorf("metrics without the source down:\n%s", metrics.String())
	}
	if n := strings.Count(logs.String(), "fleet kafka source failing"); n > 2 || n < 1 {
		t.Errorf("%d log lines about %d failed attempts, want one per distinct error:\n%s", n, attempts.Load(), logs.String())
	}

	if err := os.WriteFile(pass, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the fleet to read with the fixed password", func() bool { return received(f, "gw-a") == 10 })
	testenv.WaitFor(t, "the source to show connected", func() bool {
		sum := f.Summary("", 0, 1)
		return sum.Sources["kafka"] && sum.SourceErrors["kafka"] == ""
	})
}

// TestKafkaSourceTLS: a fleet reads over TLS from a broker whose
// certificate its tls.ca signed, and refuses one it cannot verify, saying
// so as the source's error.
func TestKafkaSourceTLS(t *testing.T) {
	caPEM, serverCert := testenv.PKI(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, DefaultKafkaTopic),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DialTLSConfig(&tls.Config{RootCAs: pool}))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	produce(t, prod, "gw-a", "air", 1, 10)

	f, _ := runKafkaFleetWith(t, nil, func(cfg *Config) {
		cfg.Kafka = &KafkaConfig{Brokers: c.ListenAddrs(), TLS: &kafkaauth.TLSConfig{CA: caFile}}
	})
	testenv.WaitFor(t, "the fleet to read over TLS", func() bool { return received(f, "gw-a") == 10 })

	untrusted, _ := runKafkaFleetWith(t, nil, func(cfg *Config) {
		cfg.Kafka = &KafkaConfig{Brokers: c.ListenAddrs(), Group: "other", TLS: &kafkaauth.TLSConfig{}} // system roots
	})
	testenv.WaitFor(t, "the certificate error as the source's error", func() bool {
		return strings.Contains(untrusted.Summary("", 0, 1).SourceErrors["kafka"], "certificate")
	})
	if n := untrusted.Summary("", 0, 1).Total; n != 0 {
		t.Fatalf("read %d gateways from a broker it cannot verify", n)
	}
}

func TestKafkaConfigValidate(t *testing.T) {
	cfg := Config{Kafka: &KafkaConfig{Brokers: []string{"k:9093"}, TLS: &kafkaauth.TLSConfig{Cert: "c.pem"},
		SASL: kafkaauth.SASLConfig{Mechanism: "GSSAPI", Username: "u", PasswordFile: "p"}}}
	cfg.SetDefaults("test")
	var got []string
	for _, err := range cfg.Validate() {
		got = append(got, err.Error())
	}
	want := []string{`kafka.sasl.mechanism: want one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, got "GSSAPI"`, "kafka.tls.key: needed with tls.cert"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// TestKafkaStateAndOffsetsAgree: a fleet commits Kafka offsets only once
// the state that holds those records is saved, so whatever a restart
// reads again is counted exactly: once when the saved state lacks it (the
// last save failed: a crash), as duplicates when it has it (the commit
// failed), never as a gap or twice.
func TestKafkaStateAndOffsetsAgree(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, DefaultKafkaTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	var failCommits atomic.Bool
	c.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !failCommits.Load() {
			return nil, nil, false // kfake commits
		}
		r := req.(*kmsg.OffsetCommitRequest)
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.OffsetMetadataTooLarge.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	brokers := c.ListenAddrs()
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	dir := t.TempDir()
	cfg := func(c *Config) { c.StateDir, c.Kafka = dir, &KafkaConfig{Brokers: brokers, Group: "view"} }
	wantCounts := func(f *Fleet, want Counts) {
		t.Helper()
		testenv.WaitFor(t, fmt.Sprintf("counts %+v", want), func() bool {
			gi, _, _ := f.Gateway("gw-1", false)
			return gi.Counts == want
		})
	}

	// A fleet reads 1..50, 41..50 again, and checkpoints.
	produce(t, prod, "gw-1", "air", 1, 50)
	produce(t, prod, "gw-1", "air", 41, 50)
	a, stopA := runKafkaFleetWith(t, nil, cfg)
	wantCounts(a, Counts{Received: 50, Duplicates: 10})
	checkpoint(t, a)
	// It reads 51..60 and crashes before saving them: its last save fails,
	// so it commits nothing.
	produce(t, prod, "gw-1", "air", 51, 60)
	wantCounts(a, Counts{Received: 60, Duplicates: 10})
	blocker := filepath.Join(dir, stateFile+".tmp")
	if err := os.Mkdir(blocker, 0o750); err != nil {
		t.Fatal(err)
	}
	stopA()
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}

	// The next fleet has 1..50 from the file and reads 51..60 again: once.
	b, stopB := runKafkaFleetWith(t, nil, cfg)
	wantCounts(b, Counts{Received: 60, Duplicates: 10})
	// It reads 61..70 and stops cleanly, but the cluster refuses the
	// commit: the file has 1..70, the group's offsets still end at 50.
	produce(t, prod, "gw-1", "air", 61, 70)
	wantCounts(b, Counts{Received: 70, Duplicates: 10})
	failCommits.Store(true)
	stopB()
	failCommits.Store(false)

	// The next fleet reads 51..70 again: duplicates, nothing missing.
	c3, _ := runKafkaFleetWith(t, nil, cfg)
	wantCounts(c3, Counts{Received: 70, Duplicates: 30})
}
