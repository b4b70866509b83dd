package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/buffer"
	"github.com/kelvin-gw/kelvin/ingest"
	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/reading"
)

func post(t *testing.T, url, contentType, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestIngest: readings pushed over HTTP for type http sensors go through
// their filters to the broker like wired ones; a batch is all or nothing;
// malformed or refused input gets the right 4xx with a reason and stores
// nothing.
func TestIngest(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	sub := subscribe(t, broker.URL, "kelvin/#")
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("dev-token\n"), 0o600)
	port := testenv.FreePort(t)
	a := startAgent(t, fmt.Sprintf(`
agent: { id: gi, data_dir: %s, clock: trust }
sensors:
  - { id: shed, type: http, interval: 10s, filters: [ {offset: 1} ] }
  - { id: hum, type: http, quantity: humidity }
  - { id: air, type: sim, interval: 1h }
mqtt: { url: %q, qos: 1 }
http: { listen: "127.0.0.1:%d", ingest_token_file: %s, ingest_max_bytes: 8KiB }
`, filepath.Join(dir, "data"), broker.URL, port, tokenFile))
	url := fmt.Sprintf("http://127.0.0.1:%d/api/ingest", port)
	testenv.WaitForWithin(t, 10*time.Second, "the page", func() bool {
		resp, err := http.Post(url, "application/json", strings.NewReader("{}"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusUnauthorized
	})

	code, body := post(t, url, "application/json", "dev-token", `{"sensor":"shed","value":4.5,"unit":"°C"}`)
	if code != http.StatusAccepted || body != `{"accepted":1,"published":1}` {
		t.Fatalf("one reading: %d %s", code, body)
	}
	// curl -d without -H sends a form content type: the body tells.
	code, body = post(t, url, "application/x-www-form-urlencoded", "dev-token", `{"sensor":"hum","value":60}`)
	if code != http.StatusAccepted {
		t.Fatalf("curl -d's content type: %d %s", code, body)
	}
	code, body = post(t, url, "text/plain; charset=utf-8", "dev-token",
		"temperature,sensor=shed value=5.5\nhumidity,sensor=hum,unit=%RH value=61.5\n")
	if code != http.StatusAccepted || body != `{"accepted":2,"published":2}` {
		t.Fatalf("line protocol batch: %d %s", code, body)
	}
	testenv.WaitForWithin(t, 10*time.Second, "the pushed readings at the broker", func() bool {
		return len(sub.get("kelvin/gi/shed")) == 2 && len(sub.get("kelvin/gi/hum")) == 2
	})
	var r reading.Reading
	json.Unmarshal([]byte(sub.get("kelvin/gi/shed")[0]), &r)
	if r.Raw != 4.5 || r.Value != 5.5 || r.Seq != 1 || r.Unit != "°C" || r.Agent != "gi" {
		t.Errorf("published %s, want raw 4.5 with the +1 offset filter applied, seq 1", sub.get("kelvin/gi/shed")[0])
	}

	appended := a.store.log.Stats().Appended
	future := wallclock.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	big := `[` + strings.Repeat(`{"sensor":"shed","value":1},`, 400) + `{"sensor":"shed","value":1}]`
	burst := `[` + strings.Repeat(`{"sensor":"hum","value":1},`, 200) + `{"sensor":"hum","value":1}]`
	for _, tc := range []struct {
		name, ct, token, body string
		code                  int
		msg                   string
	}{
		{"no token", "", "", `{"sensor":"shed","value":1}`, 401, "unauthorized"},
		{"wrong token", "", "nope", `{"sensor":"shed","value":1}`, 401, "unauthorized"},
		{"bad JSON", "", "dev-token", `{"sensor":"shed","value":`, 400, "bad JSON"},
		{"NaN", "", "dev-token", `{"sensor":"shed","value":NaN}`, 400, "bad JSON"},
		{"a string", "", "dev-token", `{"sensor":"shed","value":"4.5"}`, 400, "value: want a number"},
		{"wrong unit", "", "dev-token", `{"sensor":"shed","value":40,"unit":"°F"}`, 400, `unit "°F"`},
		{"wrong quantity", "", "dev-token", `{"sensor":"shed","value":4,"quantity":"humidity"}`, 422, "measures temperature, not humidity"},
		{"undeclared sensor", "", "dev-token", `{"sensor":"garage","value":4}`, 422, `sensor "garage" is not in the config`},
		{"a sensor Kelvin reads", "", "dev-token", `{"sensor":"air","value":4}`, 422, "is of type sim, not http"},
		{"from the future", "", "dev-token", `{"sensor":"shed","value":4,"ts":"` + future + `"}`, 422, "in the future"},
		{"zero time", "", "dev-token", `{"sensor":"shed","value":4,"ts":"0001-01-01T00:00:00Z"}`, 400, "not after 1970"},
		{"zero time, line protocol", "text/plain", "dev-token", "temperature,sensor=shed value=4 0", 400, "not after 1970"},
		{"implausible", "", "dev-token", `{"sensor":"shed","value":1.7e308}`, 422, `sensor "shed": temperature 1.7e+308 °C is outside the plausible -273.15..5000 °C`},
		{"implausible humidity", "", "dev-token", `{"sensor":"hum","value":-1.7e308}`, 422, "outside the plausible -10..110 %RH"},
		{"all or nothing", "", "dev-token", `[{"sensor":"shed","value":4},{"sensor":"garage","value":4}]`, 422, "reading 1: "},
		{"content type", "application/xml", "dev-token", `<r/>`, 415, "Content-Type"},
		{"too large", "", "dev-token", big, 413, "ingest_max_bytes"},
		{"rate", "", "dev-token", burst, 429, "readings per second"},
	} {
		if len(tc.body) > 8192 && tc.code != 413 {
			t.Fatalf("%s: body of %d bytes is over the limit", tc.name, len(tc.body))
		}
		code, body := post(t, url, tc.ct, tc.token, tc.body)
		var e struct{ Error string }
		if json.Unmarshal([]byte(body), &e) == nil && e.Error != "" {
			body = e.Error
		}
		if code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, code, body, tc.code, tc.msg)
		}
	}
	if got := a.store.log.Stats().Appended; got != appended {
		t.Errorf("refused requests stored %d readings", got-appended)
	}
	metrics, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	for _, want := range []string{"kelvin_ingest_accepted_total 4", `kelvin_ingest_rejected_total{reason="refused"} 7`, `kelvin_ingest_rejected_total{reason="malformed"} 6`} {
		if !strings.Contains(string(mb), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestIngestAcceptedSurvivesKill9: a 202 means on disk. The agent runs as
// a process; right after each 202 it is killed with SIGKILL; every reading
// that got a 202 is in the buffer after all.
func TestIngestAcceptedSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := buildKelvin(t, dir)
	data := filepath.Join(dir, "data")
	// The hot tail, as systemd's RuntimeDirectory= gives it: a 202 means
	// the readings are there, and a kill -9 must not lose them.
	run := t.TempDir()
	const rounds = 5
	for i := 1; i <= rounds; i++ {
		port := testenv.FreePort(t)
		conf := filepath.Join(dir, "kelvin.yaml")
		os.WriteFile(conf, []byte(fmt.Sprintf(`
agent: { id: k9, data_dir: %s, clock: trust }
sensors: [ { id: shed, type: http } ]
http: { listen: "127.0.0.1:%d" }
log: { level: warn }
`, data, port)), 0o644)
		cmd := exec.Command(bin, "run", "-config", conf)
		cmd.Env = append(os.Environ(), "RUNTIME_DIRECTORY="+run)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() }) // when the wait below fails
		url := fmt.Sprintf("http://127.0.0.1:%d/api/ingest", port)
		var code int
		var body string
		testenv.WaitForWithin(t, 10*time.Second, "the agent to answer", func() bool {
			req, _ := http.NewRequest("POST", url, strings.NewReader(fmt.Sprintf(`{"sensor":"shed","value":%d}`, i)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, body = resp.StatusCode, string(b)
			return true
		})
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if code != http.StatusAccepted {
			t.Fatalf("round %d: %d %s", i, code, body)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(run, "buffer-*", "*.seg")); len(m) == 0 {
		t.Fatal("no hot tail in $RUNTIME_DIRECTORY: the agent wrote every reading to disk")
	}
	l, err := buffer.Open(filepath.Join(data, "buffer"), buffer.Config{HotDir: run}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, _ := l.Cursor("check")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rs, err := c.Next(ctx, 100)
	if err != nil || len(rs) != rounds {
		t.Fatalf("after %d kill -9s the buffer holds %d readings (%v), want every one that got a 202", rounds, len(rs), err)
	}
	// Each kill leaves a gap in seqs (they resume after their reservation),
	// never a reuse.
	var prev uint64
	for i, r := range rs {
		if r.Value != float64(i+1) || r.Seq <= prev || i == 0 && r.Seq != 1 {
			t.Errorf("reading %d = value %v seq %d (after seq %d)", i, r.Value, r.Seq, prev)
		}
		prev = r.Seq
	}
}

// TestIngestRecoversFromOneBadReading: with max_rate, neither an
// implausible value (refused at the door) nor a reading stamped minutes
// ahead holds back the sensor's later readings for good: max_rate takes a
// change that lasts three readings as the new level.
func TestIngestRecoversFromOneBadReading(t *testing.T) {
	a := startAgent(t, fmt.Sprintf(`
agent: { id: gr, data_dir: %s, clock: trust }
sensors: [ { id: shed, type: http, filters: [ {max_rate: 2} ] } ]
http: { listen: "127.0.0.1:%d" }
`, t.TempDir(), testenv.FreePort(t)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	push := func(v float64, ts time.Time) int {
		t.Helper()
		n, err := a.Ingest(ctx, []ingest.Item{{Sensor: "shed", Value: v, Time: ts}})
		if err != nil {
			t.Fatalf("push %g: %v", v, err)
		}
		return n
	}
	if n := push(20, time.Time{}); n != 1 {
		t.Fatalf("first reading: %d published", n)
	}
	if _, err := a.Ingest(ctx, []ingest.Item{{Sensor: "shed", Value: 1e300}}); err == nil || !strings.Contains(err.Error(), "outside the plausible") {
		t.Fatalf("1e300: %v, want refused as implausible", err)
	}
	if n := push(20, wallclock.Now().Add(4*time.Minute)); n != 1 {
		t.Fatalf("a reading 4 min ahead: %d published", n)
	}
	var published []int
	base := wallclock.Now().Add(-time.Minute) // one reading a second, up to now
	for i, v := range []float64{20.5, 21, 21.5, 22} {
		published = append(published, push(v, base.Add(time.Duration(i)*time.Second)))
	}
	if fmt.Sprint(published) != "[0 0 1 1]" {
		t.Errorf("after the reading from the future, published %v, want [0 0 1 1]", published)
	}
	for _, s := range a.Status().Sensors {
		if s.State != stateOK {
			t.Errorf("sensor %s: %s %s", s.ID, s.State, s.Error)
		}
	}
}

// TestIngestCountsWhatHappened: a client that gives up before the commit
// does not make its stored, published readings "not stored": the agent
// still waits for the commit and reports them taken.
func TestIngestCountsWhatHappened(t *testing.T) {
	a := startAgent(t, fmt.Sprintf(`
agent: { id: gc, data_dir: %s, clock: trust }
sensors: [ { id: shed, type: http } ]
http: { listen: "127.0.0.1:%d" }
`, t.TempDir(), testenv.FreePort(t)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client has gone
	n, err := a.Ingest(ctx, []ingest.Item{{Sensor: "shed", Value: 4.5}})
	if err != nil || n != 1 {
		t.Fatalf("Ingest after the client left = %d, %v; want 1 published, no error", n, err)
	}
	if st := a.store.log.Stats(); st.Appended != 1 {
		t.Errorf("%d readings appended, want 1", st.Appended)
	}
}
