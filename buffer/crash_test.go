package buffer

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
)

// Environment variables that turn the test binary into a helper process.
const (
	crashChildEnv = "KELVIN_BUFFER_CRASH_CHILD" // directory of the log
	crashTrialEnv = "KELVIN_BUFFER_CRASH_TRIAL" // trial number, for unique values
	crashHotEnv   = "KELVIN_BUFFER_CRASH_HOT"   // hot directory, if any
	rssChildEnv   = "KELVIN_BUFFER_RSS_CHILD"   // directory for the memory measurement
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if dir := os.Getenv(rssChildEnv); dir != "" {
		rssChild(dir)
		return
	}
	os.Exit(m.Run())
}

// fwdSeq0 is where the seqs of the crash child's forwarded readings start:
// far above any seq the log hands out itself, so a forwarded seq that
// leaked into the log's own counters shows.
const fwdSeq0 = 1 << 40

// crashChild appends with sync: always and consumes through cursor "out"
// until it is killed. Between its own readings it forwards readings of
// agent "gw-1" with the same sensor names (AppendForwarded). It prints, one
// write per batch of lines:
//
//	A agent sensor seq value   a reading Append returned for: durable
//	R agent sensor seq value   a reading Next returned, printed before its Ack
//	P pos                      cursor "out" durable at global offset pos
func crashChild(dir string) {
	trial, _ := strconv.Atoi(os.Getenv(crashTrialEnv))
	var outMu sync.Mutex
	emit := func(s string) {
		outMu.Lock()
		os.Stdout.WriteString(s)
		outMu.Unlock()
	}
	o := options{cursorEvery: 5 * time.Millisecond, committed: func(m map[string]int64) {
		if p, ok := m["out"]; ok {
			emit(fmt.Sprintf("P %d\n", p))
		}
	}}
	cfg := Config{Sync: SyncAlways, SegmentBytes: 4 << 10, MaxBytes: 64 << 20, HotDir: HotDirOff}
	if hot := os.Getenv(crashHotEnv); hot != "" {
		// The hot tail makes a reading safe from kill -9 when Append
		// returns, without sync: always.
		cfg.Sync, cfg.HotDir = "20ms", hot
	}
	l, err := open(dir, cfg, nil, nil, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	c, err := l.Cursor("out")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	go func() {
		for {
			rs, err := c.Next(context.Background(), 1+rand.IntN(20))
			if err != nil {
				return
			}
			var b strings.Builder
			for _, r := range rs {
				fmt.Fprintf(&b, "R %s %s %d %v\n", r.Agent, r.Sensor, r.Seq, r.Value)
			}
			emit(b.String())
			c.Ack(len(rs))
		}
	}()
	sensors := []string{"s0", "s1", "s2"}
	for i := 0; ; i++ {
		rs := make([]reading.Reading, 1+rand.IntN(4))
		for j := range rs {
			rs[j] = rd(sensors[rand.IntN(len(sensors))], float64(trial*1_000_000+i*10+j))
		}
		if err := l.Append(rs); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if rand.IntN(3) == 0 {
			// Another gateway's readings, with their own identity; the
			// seqs grow across trials, the values are the trial's.
			fw := make([]reading.Reading, 1+rand.IntN(3))
			for j := range fw {
				n := trial*1_000_000 + i*10 + j
				fw[j] = rd(sensors[rand.IntN(len(sensors))], float64(n)+0.5)
				fw[j].Agent, fw[j].Seq = "gw-1", fwdSeq0+uint64(n)
			}
			if err := l.AppendForwarded(fw); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			rs = append(rs, fw...)
		}
		if cfg.HotDir != HotDirOff {
			// Paced like sensors, so that group commits (spills, cursor
			// records) happen between the kills too.
			time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
		}
		var b strings.Builder
		for _, r := range rs {
			fmt.Fprintf(&b, "A %s %s %d %v\n", r.Agent, r.Sensor, r.Seq, r.Value)
		}
		emit(b.String())
	}
}

type seqKey struct {
	sensor string
	seq    uint64
}

// idKey is a reading's end-to-end identity.
type idKey struct {
	agent, sensor string
	seq           uint64
}

// TestCrashKill9 kills a writing and consuming process at random moments
// and checks, after each kill, that every reading whose Append (or
// AppendForwarded) returned is delivered or still pending, that an (agent,
// sensor, seq) always names the same reading, that forwarded readings keep
// their seqs and never move the log's own, and that the persisted cursor
// never went backwards.
func TestCrashKill9(t *testing.T) { crashKill9(t, "") }

// TestCrashKill9Hot is TestCrashKill9 with the hot tail: every reading
// whose Append returned survives the kill, though none was fsynced.
func TestCrashKill9Hot(t *testing.T) { crashKill9(t, t.TempDir()) }

// TestCrashKill9Tmpfs is TestCrashKill9Hot with the hot directory on a
// tmpfs, as in production, where the hot tail is written with raw system
// calls (pwriteRaw).
func TestCrashKill9Tmpfs(t *testing.T) { crashKill9(t, tmpfsDir(t)) }

func crashKill9(t *testing.T, hot string) {
	trials := 50
	if testing.Short() {
		trials = 10
	}
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 1))
	names := map[idKey]float64{} // every (agent, sensor, seq) ever seen, and its value
	delivered := map[idKey]bool{}
	var acked []idKey // every reading Append returned for
	var lastPos int64
	persists := 0
	name := func(where string, k idKey, v float64) {
		if old, ok := names[k]; ok && old != v {
			t.Fatalf("%s: %s/%s seq %d names value %v, earlier %v: a seq was reused", where, k.agent, k.sensor, k.seq, v, old)
		}
		names[k] = v
	}
	for trial := 1; trial <= trials; trial++ {
		lines := runCrashChild(t, dir, hot, trial, 1+rnd.IntN(25))
		var persisted int64 = -1
		for _, ln := range lines {
			f := strings.Fields(ln)
			switch {
			case len(f) == 2 && f[0] == "P":
				p, _ := strconv.ParseInt(f[1], 10, 64)
				persisted = max(persisted, p)
				persists++
			case len(f) == 5 && (f[0] == "A" || f[0] == "R"):
				seq, _ := strconv.ParseUint(f[3], 10, 64)
				v, _ := strconv.ParseFloat(f[4], 64)
				k := idKey{f[1], f[2], seq}
				name("trial "+strconv.Itoa(trial)+" "+f[0], k, v)
				if f[0] == "A" {
					acked = append(acked, k)
				} else {
					delivered[k] = true
				}
			}
		}
		// Reopen as the agent would after the crash.
		l, err := Open(dir, Config{HotDir: cmp.Or(hot, HotDirOff)}, nil, nil)
		if err != nil {
			t.Fatalf("trial %d: open after kill: %v", trial, err)
		}
		l.mu.Lock()
		pos := l.segs[0].base // where a cursor never persisted starts again
		if c := l.cursors["out"]; c != nil {
			pos = c.acked.pos
		} else if persisted >= 0 {
			t.Fatalf("trial %d: cursor persisted at %d is gone after reopen", trial, persisted)
		}
		l.mu.Unlock()
		if pos < persisted || pos < lastPos {
			t.Fatalf("trial %d: cursor at %d after reopen; it had persisted %d (this run) and %d (previous)", trial, pos, persisted, lastPos)
		}
		lastPos = pos
		for _, s := range []string{"s0", "s1", "s2"} {
			if n := l.LastSeq(s); n >= fwdSeq0 {
				t.Fatalf("trial %d: the log's own seq of %s is %d: a forwarded seq leaked into it", trial, s, n)
			}
		}
		if res, err := readReservation(dir); err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		} else {
			for s, n := range res.seqs {
				if n >= fwdSeq0 {
					t.Fatalf("trial %d: %s reserved up to %d: a forwarded seq leaked into SEQ", trial, s, n)
				}
			}
		}
		pending := map[idKey]bool{}
		inLog := map[idKey]bool{}
		type series struct{ agent, sensor string }
		lastSeq := map[series]uint64{}
		for _, e := range scanDir(t, dir) {
			k := idKey{e.r.Agent, e.r.Sensor, e.r.Seq}
			if inLog[k] {
				t.Fatalf("trial %d: %s/%s seq %d twice in the log", trial, k.agent, k.sensor, k.seq)
			}
			inLog[k] = true
			sk := series{k.agent, k.sensor}
			if e.r.Seq <= lastSeq[sk] {
				t.Fatalf("trial %d: %s/%s seq %d after %d in the log", trial, k.agent, k.sensor, k.seq, lastSeq[sk])
			}
			lastSeq[sk] = e.r.Seq
			name(fmt.Sprintf("trial %d log", trial), k, e.r.Value)
			if e.pos >= pos {
				pending[k] = true
			}
		}
		for _, k := range acked {
			if !delivered[k] && !pending[k] {
				t.Fatalf("trial %d: %s/%s seq %d was durable, is neither delivered nor pending", trial, k.agent, k.sensor, k.seq)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	forwarded := 0
	for _, k := range acked {
		if k.agent == "gw-1" {
			forwarded++
		}
	}
	if forwarded == 0 {
		t.Fatal("no forwarded reading was appended")
	}
	t.Logf("%d trials, %d durable readings (%d forwarded), %d delivered, %d cursor persists seen", trials, len(acked), forwarded, len(delivered), persists)
}

// runCrashChild runs one child until it reported at least acks durable
// batches, kills it with SIGKILL and returns the complete lines it wrote.
func runCrashChild(t *testing.T, dir, hot string, trial, acks int) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashTrialEnv+"="+strconv.Itoa(trial), crashHotEnv+"="+hot)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			cmd.Process.Kill()
			killed = true
		}
	}
	// Failsafe only: a healthy child reaches acks in milliseconds.
	timer := time.AfterFunc(20*time.Second, kill)
	defer timer.Stop()
	var lines []string
	seen := 0
	r := bufio.NewReader(out)
	for {
		ln, err := r.ReadString('\n')
		if err != nil {
			if err != io.EOF {
				t.Fatalf("trial %d: %v", trial, err)
			}
			break // an incomplete last line is dropped
		}
		lines = append(lines, ln)
		if strings.HasPrefix(ln, "A ") {
			seen++
			if seen >= acks {
				kill()
			}
		}
	}
	cmd.Wait()
	if !killed || seen < acks {
		t.Fatalf("trial %d: child ended after %d of %d acks: %s", trial, seen, acks, stderr.String())
	}
	return lines
}
