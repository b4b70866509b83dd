package fleet

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/filter"
	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

// clock is a settable clock for tests, safe for the fleet's and its
// archive's goroutines to read while the test moves it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// advance moves the clock on by d.
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestFleet(t testing.TB, mut func(*Config)) (*Fleet, *clock) {
	t.Helper()
	return newTestFleetLog(t, nil, mut)
}

// newTestFleetLog is newTestFleet logging to log.
func newTestFleetLog(t testing.TB, log *slog.Logger, mut func(*Config)) (*Fleet, *clock) {
	t.Helper()
	cfg := Config{MQTT: &MQTTConfig{}}
	if mut != nil {
		mut(&cfg)
	}
	cfg.SetDefaults("test")
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	f, err := New(cfg, c.now, log)
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func payload(f reading.Format, agent, sensor string, seq uint64, v float64, ts time.Time) []byte {
	r := reading.Reading{Agent: agent, Sensor: sensor, Quantity: reading.Temperature, Unit: "°C", Value: v, Raw: v, Time: ts, Seq: seq}
	return f.Append(nil, &r)
}

func TestHandleFormats(t *testing.T) {
	f, c := newTestFleet(t, nil)
	ts := c.now()
	if err := f.Handle("kelvin/gw-1/air", payload(reading.FormatJSON, "gw-1", "air", 1, 21.5, ts)); err != nil {
		t.Fatal(err)
	}
	if err := f.Handle("kelvin/gw-1/air", payload(reading.FormatInflux, "gw-1", "air", 2, 21.6, ts)); err != nil {
		t.Fatal(err)
	}
	// The same reading again, in the other format: a duplicate.
	if err := f.Handle("kelvin/gw-1/air", payload(reading.FormatInflux, "gw-1", "air", 1, 21.5, ts)); err != nil {
		t.Fatal(err)
	}
	if err := f.Handle("kelvin/gw-1/air", payload(reading.FormatJSON, "gw-1", "air", 3, 21.7, ts)); err != nil {
		t.Fatal(err)
	}
	// SenML, with its seq record: the same reading again is a duplicate.
	for range 2 {
		if err := f.Handle("kelvin/gw-1/air", payload(reading.FormatSenML, "gw-1", "air", 4, 21.8, ts)); err != nil {
			t.Fatal(err)
		}
	}
	// A SenML pack of the seq alone (the values were not finite) counts.
	if err := f.Handle("kelvin/gw-1/air", []byte(`[{"bn":"kelvin:gw-1:air:","n":"seq","v":5}]`)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		payload, reason string
	}{
		// The SenML of a Kelvin from before the seq record.
		{`[{"bn":"kelvin:gw-1:air:","n":"temperature","u":"Cel","v":1},{"n":"raw_temperature","u":"Cel","v":1}]`, reasonNoSeq},
		{`[{"bn":"urn:dev:mac:0024befffe804ff1:","n":"temp","u":"Cel","v":1}]`, reasonMalformed},
		{"21.5", reasonValue},
		{`{"sensor":"x","value":1}`, reasonNoSeq},
		{"not a reading", reasonMalformed},
		{"", reasonEmpty},
		{`{"agent":"gw-1","sensor":"air","value":1,"seq":9}`, reasonMissing},
	} {
		err := f.Handle("kelvin/gw-1/air", []byte(tc.payload))
		var ig *ignored
		if !errors.As(err, &ig) || ig.Reason != tc.reason {
			t.Errorf("%q: got %v, want reason %s", tc.payload, err, tc.reason)
		}
	}
	gi, sensors, ok := f.Gateway("gw-1", true)
	if !ok || len(sensors) != 1 {
		t.Fatalf("gateway %v sensors %v", ok, sensors)
	}
	if gi.Received != 5 || gi.Duplicates != 2 || gi.Pending != 0 || gi.State != "online" {
		t.Errorf("got %+v, want 5 received, 2 duplicates, online", gi)
	}
	if got := sensors[0].Series; len(got) != 1 || len(got[0].Points) != 4 || got[0].Points[3][1] != float64(float32(21.8)) || got[0].Unit != "°C" {
		t.Errorf("series %+v, want temperature in °C with 4 points, the last from SenML", got)
	}
	sum := f.Summary("", 0, 10)
	if sum.Ignored[reasonNoSeq] != 2 || sum.Ignored[reasonValue] != 1 || sum.Ignored[reasonMalformed] != 2 {
		t.Errorf("ignored %v", sum.Ignored)
	}
}

func TestStatusAndLoss(t *testing.T) {
	f, c := newTestFleet(t, func(c *Config) { c.LossAfter = time.Minute })
	send := func(seq uint64) {
		t.Helper()
		if err := f.Handle("kelvin/gw-2/tank", payload(reading.FormatJSON, "gw-2", "tank", seq, 4, c.now())); err != nil {
			t.Fatal(err)
		}
	}
	f.Handle("kelvin/gw-2/status", []byte("online"))
	send(1)
	send(4) // 2, 3 missing
	f.Handle("kelvin/gw-2/status", []byte("offline"))
	if gi, _, _ := f.Gateway("gw-2", false); gi.State != "offline" || gi.Pending != 2 {
		t.Fatalf("got %+v, want offline with 2 pending", gi)
	}
	c.advance(30 * time.Second)
	send(2) // drained late: not lost
	// A restart that skips a reserved block, announced in the status.
	f.Handle("kelvin/gw-2/status", []byte(`{"state":"online","page":"http://gw-2:8080/","skip":{"tank":[5,100]}}`))
	send(101)
	// A crash restart announced the other way: where the seqs resume.
	send(200)
	f.Handle("kelvin/gw-2/restart", []byte(`{"started":"2026-12-04T22:00:00Z","seq_resume":{"tank":200}}`))
	c.advance(time.Minute)
	f.Expire()
	// Another device's discovery is no business of the fleet's; a
	// gateway's says where its page is.
	if err := f.Handle("homeassistant/sensor/plug/power/config", []byte(`{"availability_topic":"tele/plug/LWT"}`)); err != nil {
		t.Fatal(err)
	}
	f.Handle("homeassistant/sensor/kelvin_gw-3/tank_temperature/config",
		[]byte(`{"availability_topic":"kelvin/gw-3/status","device":{"configuration_url":"http://gw-3.lan:8080/"}}`))
	if gi, _, _ := f.Gateway("gw-3", false); gi.Page != "http://gw-3.lan:8080/" {
		t.Fatalf("gw-3: %+v, want its page from the discovery", gi)
	}
	gi, _, _ := f.Gateway("gw-2", false)
	if gi.State != "online" || gi.Page != "http://gw-2:8080/" || gi.Lost != 1 || gi.Skipped != 96+98 || gi.Pending != 0 {
		t.Fatalf("got %+v, want online, page, 1 lost (seq 3), 96+98 skipped", gi)
	}
	var b strings.Builder
	f.WriteMetrics(&b)
	for _, want := range []string{
		`kelvin_fleet_gateway_up{agent="gw-2"} 1`,
		`kelvin_fleet_lost_total{agent="gw-2",sensor="tank"} 1`,
		`kelvin_fleet_received_total{agent="gw-2",sensor="tank"} 5`,
		`kelvin_fleet_sensor_value{agent="gw-2",sensor="tank",quantity="temperature",unit="°C"} 4`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, b.String())
		}
	}
}

func TestBoundsAndFilters(t *testing.T) {
	f, c := newTestFleet(t, func(c *Config) {
		c.MaxGateways, c.MaxSensors, c.HistoryPoints = 2, 1, 3
		c.Rules = []Rule{{Match: "gw-a/*", Specs: []filter.Spec{{Kind: "offset", Offset: 10}}}}
	})
	for i, a := range []string{"gw-a", "gw-b", "gw-c"} {
		f.Handle("kelvin/"+a+"/s", payload(reading.FormatJSON, a, "s", uint64(i+1), 1, c.now()))
	}
	f.Handle("kelvin/gw-a/t", payload(reading.FormatJSON, "gw-a", "t", 1, 1, c.now()))
	for seq := uint64(2); seq < 10; seq++ {
		f.Handle("kelvin/gw-a/s", payload(reading.FormatJSON, "gw-a", "s", seq, 1, c.now()))
	}
	sum := f.Summary("", 0, 10)
	if sum.Total != 2 || sum.Refused["gateway"] != 1 || sum.Refused["sensor"] != 1 {
		t.Fatalf("total %d refused %v", sum.Total, sum.Refused)
	}
	_, ss, _ := f.Gateway("gw-a", true)
	if p := ss[0].Series[0].Points; len(p) != 3 || p[2][1] != 11 {
		t.Fatalf("points %v, want 3 offset by 10", p)
	}
	if got := f.Summary("gw-b", 0, 10); got.Total != 1 || got.Gateways[0].Agent != "gw-b" {
		t.Fatalf("filter: %+v", got)
	}
	if got := f.Summary("state:offline", 0, 10); got.Total != 0 {
		t.Fatalf("state filter: %+v", got)
	}
}

// TestFiltersPerPattern: the first rule whose pattern matches a series'
// AGENT/SENSOR shapes it, a moving average as any filter of the chain;
// series no rule matches are shown as sent.
func TestFiltersPerPattern(t *testing.T) {
	f, c := newTestFleet(t, func(c *Config) {
		c.Rules = []Rule{
			{Match: "gw-a/tank", Specs: []filter.Spec{{Kind: "moving_average", N: 2}}},
			{Match: "gw-*/air", Specs: []filter.Spec{{Kind: "offset", Offset: 10}}},
		}
	})
	for seq, v := range []float64{1, 3, 5} {
		for _, s := range []struct{ agent, sensor string }{{"gw-a", "tank"}, {"gw-a", "air"}, {"gw-b", "tank"}} {
			f.Handle("kelvin/x/y", payload(reading.FormatJSON, s.agent, s.sensor, uint64(seq+1), v, c.now()))
		}
	}
	for _, tc := range []struct {
		agent, sensor string
		want          []float64
	}{
		{"gw-a", "tank", []float64{1, 2, 4}},
		{"gw-a", "air", []float64{11, 13, 15}},
		{"gw-b", "tank", []float64{1, 3, 5}},
	} {
		_, ss, _ := f.Gateway(tc.agent, true)
		var got []float64
		for _, s := range ss {
			if s.Sensor == tc.sensor {
				for _, p := range s.Series[0].Points {
					got = append(got, p[1])
				}
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s/%s: %v, want %v", tc.agent, tc.sensor, got, tc.want)
		}
	}
}

// TestIgnoredSaysWhy: a message the fleet ignores is logged with its
// reason and what to do, at most once a minute, with how many were not
// logged since.
func TestIgnoredSaysWhy(t *testing.T) {
	var logs testenv.SyncBuffer
	f, c := newTestFleetLog(t, slog.New(slog.NewTextHandler(&logs, nil)), nil)
	f.Handle("kelvin/gw-1/air", []byte("21.5"))
	f.Handle("kelvin/gw-1/air", []byte(`{"agent":"gw-1","sensor":"air","value":1}`))
	first := logs.String()
	if strings.Count(first, "fleet message ignored") != 1 ||
		!strings.Contains(first, `reason=value_format err="fleet: a bare number (format value) has no agent, sensor or seq: publish json or influx"`) {
		t.Fatalf("log %q, want one line with the reason and what to do", first)
	}
	c.advance(logEvery)
	f.Handle("kelvin/gw-1/air", []byte(`[{"bn":"kelvin:gw-1:air:","n":"temperature","u":"Cel","v":1}]`))
	if got := strings.TrimPrefix(logs.String(), first); !strings.Contains(got, "reason=no_seq") || !strings.Contains(got, "suppressed_since_last=1") {
		t.Fatalf("log after a minute %q, want the SenML without seq and 1 not logged", got)
	}
}
