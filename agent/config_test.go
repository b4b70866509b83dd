package agent

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/buffer"
	"github.com/kelvin-gw/kelvin/publish/kafka"
)

// TestExampleConfigs loads every config shipped in configs/: they must stay
// valid as keys are added.
func TestExampleConfigs(t *testing.T) {
	files, _ := filepath.Glob("../configs/*.yaml")
	if len(files) == 0 {
		t.Fatal("no configs/*.yaml found")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := LoadFile(f)
			if err != nil {
				t.Fatalf("%v", err)
			}
			if len(cfg.Sensors) == 0 && cfg.Fleet == nil {
				t.Error("no sensors")
			}
			if f := cfg.Fleet; f != nil && f.StateDir != filepath.Join(cfg.Agent.DataDir, "fleet") {
				t.Errorf("fleet.state_dir %q, want the default under data_dir %q", f.StateDir, cfg.Agent.DataDir)
			}
		})
	}
}

func TestDemoConfig(t *testing.T) {
	cfg, err := LoadDemo()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sensors) != 2 || cfg.MQTT != nil || cfg.HTTP.Listen != ":8080" {
		t.Errorf("demo: %d sensors, mqtt %v, listen %q", len(cfg.Sensors), cfg.MQTT, cfg.HTTP.Listen)
	}
	for _, s := range cfg.Sensors {
		if s.Type != "sim" {
			t.Errorf("demo sensor %s is %s, want sim", s.ID, s.Type)
		}
	}
}

// TestBadConfigs checks the exact messages for every testdata/bad-*.yaml:
// each problem with its line and key path, all of them at once.
func TestBadConfigs(t *testing.T) {
	t.Setenv("KELVIN_TEST_UNSET_BROKER", "")
	os.Unsetenv("KELVIN_TEST_UNSET_BROKER")
	tests := map[string][]string{
		"bad-keys.yaml": {
			`3: agent.datadir: unknown key (did you mean "data_dir"?)`,
			`7: sensors[0].intervl: unknown key (did you mean "interval"?)`,
			`8: sensors[0].interval: want a duration like 5s, 1m30s or 7d, got "soon"`,
			`9: sensors[1].id: "Air!": use lowercase letters, digits, '_' and '-' only`,
			`11: sensors[1].interval: want a duration with a unit like 5s, got 5`,
			`12: sensors[2].id: "air" is already used by sensors[0] (line 5)`,
			`13: sensors[2].type: unknown sensor type "thermocouple" (one of aht20, bme280, bmp180, bmp280, ds18b20, http, lm75, lm75a, lm75b, mcp9808, mqtt, sht3x, sht4x, sim, tmp102, tmp105, tmp175, tmp275, tmp75)`,
			`15: mqtt.url: unknown scheme "ftp" (tcp, mqtt, ssl, tls, mqtts, ws or wss)`,
			`16: mqtt.qos: want 0, 1 or 2, got 3`,
			`17: mqtt.topic: "kelvin/all" must contain {sensor}, or every sensor would share one topic`,
			`18: mqtt.keepalive: 1.5s: want whole seconds from 1s to 65535s (18h12m15s); leave it out for 30s`,
			`20: http.archive_flush: want 1m0s to 1h0m0s, got 30s`,
			`22: buffer.hot_dir: want "auto", "off" or an absolute directory, got "run/kelvin"`,
			`23: buffer.hot_max_bytes: want 0 (auto) or at least 8MiB (two segments), got 1MiB`,
		},
		"bad-filters.yaml": {
			`5: sensors[0].filters[0].median: window must be at least 1 sample`,
			`6: sensors[0].filters[1].ema: alpha must be in (0,1], got 1.5`,
			`7: sensors[0].filters[2].clamp: min 10 must be below max -10`,
			`8: sensors[0].filters[3].heartbeat: heartbeat needs a delta filter before it (it re-sends what delta held back)`,
			`9: sensors[0].filters[4].smooth: unknown filter "smooth" (known: median, moving_average, ema, clamp, offset, calibrate_linear, outlier, max_rate, delta, heartbeat, round)`,
			`10: sensors[0].filters[5].moving_average: want a sample count like 5 or a duration like 30s, got "forever"`,
			`11: sensors[0].filters[6].calibrate_linear: the two points need different raw values`,
			`12: sensors[0].filters[7].round: want a whole number, got "two"`,
			`13: sensors[0].filters[8].outlier: window is required, e.g. {window: 7, mads: 3}`,
		},
		"bad-w1.yaml": {
			`2: sensors[0]: address is required for type ds18b20, e.g. address: 28-0316a2b8ff01 (` + "`kelvin scan`" + ` lists them)`,
			`6: sensors[1].address: address "29-0316a2b8ff01": family 0x29 is not a temperature sensor (want 10, 22, 28, 3b or 42)`,
			`7: sensors[1].interval: 100ms is shorter than a ds18b20 can measure (at least 750ms)`,
			`11: sensors[2].base: not used by type ds18b20`,
			`12: sensors[2].stale_after: 1s must be at least two intervals (20s)`,
		},
		"bad-i2c.yaml": {
			`4: sensors[0].address: a bme280 answers at 0x76 or 0x77, not 0x40`,
			`5: sensors[0].oversampling: want 1, 2, 4, 8 or 16, got 3`,
			`8: sensors[1].bus: want an I²C bus number like 1 or /dev/i2c-1, got "i2c-one"`,
			`9: sensors[1].repeatability: want high, medium or low, got "ultra"`,
			`12: sensors[2].resolution: want a step of 0.5, 0.25, 0.125 or 0.0625 °C, got 0.1`,
			`13: sensors[2].seed: not used by type mcp9808`,
			`18: sensors[3].bridge: a DS2482 answers at 0x18..0x1f, not 0x30`,
			`19: sensors[3].resolution: want 9, 10, 11 or 12 bits, got 13`,
			`23: sensors[4].resolution: only with a DS2482 bridge (bus:); with the kernel driver, write the resolution to /sys/bus/w1/devices/28-0316a2b8ff02/resolution`,
			`27: sensors[6]: i2c-1 0x76 is also used by sensors[5] (room2)`,
			`34: sensors[7].bridge: a DS2482 answers at 0x18..0x1f, not 0x30`,
			`35: sensors[7].interval: sensors behind the DS2482 at i2c-1 0x30 share one conversion: use the interval and resolution of sensors[3] (10s, 13 bits)`,
		},
		"bad-http.yaml": {
			`5: http.history_bytes: want at least 256KiB, got 100KiB`,
			`7: http.max_connections: 64 leaves no connection beside max_clients (64) websockets: want more`,
			`8: http.max_connections_per_address: must not be negative, got -1`,
			`9: http.allowed_hosts[1]: want a host name or pattern without scheme or port, got "http://gw.lan"`,
			`9: http.allowed_hosts[2]: bad pattern "[bad": syntax error in pattern`,
		},
		"bad-syntax.yaml": {
			`4: mapping values are not allowed in this context`,
		},
		"bad-empty.yaml": {
			`sensors: at least one sensor is needed (see configs/kelvin.yaml, or ` + "`kelvin scan`" + ` to list what is attached)`,
		},
		"bad-runtime.yaml": {
			`6: sensors[1].topic: "homeassistant/sensor/kelvin_gh1/air_temperature/config" is under homeassistant/sensor/kelvin_gh1/, where Kelvin publishes itself: taking it in would loop`,
			`9: sensors[2].topic: "tele/plug\x00/SENSOR": a topic cannot contain a NUL character`,
			`10: sensors[3].interval: "9999999999h" is too long: at most about 292 years`,
			`11: sensors[4].interval: "999999999d" is too long: at most about 292 years`,
			`12: http.listen: "999.1.1.1:99999": the port must be a number from 0 to 65535, got "99999"`,
			`14: mqtt.url: "tcp://broker lan:1883": invalid character " " in host name`,
			`16: mqtt.topic: "kelvin/{agent}/{sensor}\x00": a topic cannot contain a NUL character`,
			`17: mqtt_in.url: "tcp://in.broker:99999": the port must be a number from 1 to 65535, got "99999"`,
		},
		"bad-listen.yaml": {
			`3: http.listen: "999.1.1.1:80": 999.1.1.1 is not an IP address`,
		},
		"bad-fleet.yaml": {
			`2: fleet: the fleet is shown on the page: set http.listen`,
			`4: fleet.mqtt.url: "broker.lan:1883": want scheme://host:port with scheme tcp, mqtt, ssl, tls, mqtts, ws or wss`,
			`5: fleet.mqtt.topics[0]: "kelvin/#/x": want a topic filter like kelvin/#`,
			`7: fleet.kafka.brokers[0]: "kafka.lan": want host:port`,
			`8: fleet.kafka.start: want earliest or latest, got "newest"`,
			`9: fleet.kafka.tls.key: needed with tls.cert`,
			`9: fleet.kafka.tls.cert: /nonexistent/fleet.pem: no such file or directory`,
			`10: fleet.kafka.sasl.password_file: /nonexistent/fleet-kafka.pass: no such file or directory`,
			`11: fleet.loss_after: 500ms is too short: at least 1s`,
			`12: fleet.silent_after: 2s is too short: at least 10s`,
			`14: fleet.max_gateways: want 1 to 1000000, got -1`,
			`16: fleet.filters[0].match: "[gw": want AGENT/SENSOR with * wildcards, like greenhouse-*/tank`,
			`20: fleet.filters[1].filters: want a list of filters: a fleet rule applies to every quantity it matches`,
		},
		"bad-forward.yaml": {
			`5: fleet.forward: would feed the fleet its own readings: mqtt.topic "kelvin/{agent}/{sensor}" publishes them on the broker the fleet follows, under fleet.mqtt.topics[0] "kelvin/#"; set mqtt.topic outside it (e.g. fleet/{agent}/{sensor}) or forward to another broker`,
			`5: fleet.forward: would feed the fleet its own readings: kafka.topic "kelvin.readings" produces them to the topic the fleet reads (fleet.kafka.topic "kelvin.readings") on the same cluster; set another kafka.topic (e.g. kelvin.fleet) or forward to another cluster`,
		},
		"bad-forward-topic.yaml": {
			`6: mqtt.topic: "fleet/{sensor}" must contain {agent} when fleet.forward is on: every gateway's sensors would share topics`,
		},
		"bad-forward-none.yaml": {
			`3: fleet.forward: forwards the fleet's readings to the outputs: configure mqtt: or kafka: (or leave forward out)`,
		},
		"bad-env.yaml": {
			`5: mqtt.url: environment variable KELVIN_TEST_UNSET_BROKER is not set`,
			`7: mqtt.password_file: /nonexistent/kelvin-password: no such file or directory`,
		},
	}
	for file, want := range tests {
		t.Run(file, func(t *testing.T) {
			path := filepath.Join("testdata", file)
			_, err := LoadFile(path)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("LoadFile = %v, want a *ConfigError", err)
			}
			got := strings.Split(err.Error(), "\n")
			for i := range max(len(got), len(want)) {
				var g, w string
				if i < len(got) {
					g = got[i]
				}
				if i < len(want) {
					w = path + ":" + want[i]
					if want[i][0] < '0' || want[i][0] > '9' {
						w = path + ": " + want[i] // a problem with no line
					}
				}
				if g != w {
					t.Errorf("problem %d:\n got %s\nwant %s", i, g, w)
				}
			}
		})
	}
}

func TestGoodMinimalDefaults(t *testing.T) {
	cfg, err := LoadFile("testdata/good-minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Sensors[0]
	if s.Interval != time.Second {
		t.Errorf("sim default interval = %v, want 1s", s.Interval)
	}
	if cfg.Agent.ID == "" || cfg.Agent.DataDir == "" || cfg.OneWire.Sysfs != "/sys/bus/w1/devices" || cfg.HTTP.Listen != ":8080" {
		t.Errorf("defaults: %+v %+v %+v", cfg.Agent, cfg.OneWire, cfg.HTTP)
	}
}

func TestEnvExpansion(t *testing.T) {
	env := map[string]string{"BROKER": "broker.lan"}
	cfg, err := Parse("x.yaml", []byte("sensors: [{id: a, type: sim}]\nmqtt: {url: \"tcp://${BROKER}:1883\"}\n"),
		func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MQTT.URL != "tcp://broker.lan:1883" || cfg.MQTT.QoS != 1 || cfg.MQTT.Topic != "kelvin/{agent}/{sensor}" {
		t.Errorf("mqtt = %+v", cfg.MQTT)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1s": time.Second, "500ms": 500 * time.Millisecond, "1m30s": 90 * time.Second,
		"7d": 7 * 24 * time.Hour, "1w": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "0": 0,
	} {
		got, err := parseDuration(in)
		if err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "5", "soon", "5x", "d"} {
		if _, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) succeeded", in)
		}
	}
}

func TestFilterDecodingForms(t *testing.T) {
	cfg, err := Parse("x.yaml", []byte(`
sensors:
  - id: a
    type: sim
    filters:
      temperature:
        - median: 30s
        - outlier: 7
        - outlier: { window: 1m, mads: 2.5 }
        - clamp: [-55, 125]
        - calibrate_linear: [[0.0, 0.3], [100.0, 99.1]]
        - delta: 0.1
        - heartbeat: 1m
`), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	specs := cfg.Sensors[0].Filters.For("temperature")
	if len(specs) != 7 {
		t.Fatalf("got %d specs", len(specs))
	}
	if specs[0].Window != 30*time.Second || specs[1].N != 7 || specs[1].MADs != 3 || specs[2].Window != time.Minute || specs[2].MADs != 2.5 ||
		specs[3].Min != -55 || specs[3].Max != 125 || specs[4].Points != [2][2]float64{{0, 0.3}, {100, 99.1}} || specs[6].Every != time.Minute {
		t.Errorf("specs = %+v", specs)
	}
	_, err = Parse("x.yaml", []byte("sensors: [{id: a, type: sim, filters: {humidity: [{ema: 0.5}]}}]\n"), os.LookupEnv)
	if err == nil || !strings.Contains(err.Error(), `sensors[0].filters.humidity: type sim has no quantity "humidity" (it has temperature)`) {
		t.Errorf("unknown quantity: %v", err)
	}
}

// TestExampleSensorBlocks: the commented-out sensor examples of
// configs/kelvin.yaml are valid once uncommented, as the file says.
func TestExampleSensorBlocks(t *testing.T) {
	b, err := os.ReadFile("../configs/kelvin.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, "  # - id: ")
	end := strings.Index(s, "# The kernel's 1-Wire devices")
	if start < 0 || end < start {
		t.Fatal("configs/kelvin.yaml has no commented sensor examples before the onewire section")
	}
	var lines []string
	for _, l := range strings.Split(s[start:end], "\n") {
		switch {
		case strings.TrimSpace(l) == "#":
			lines = append(lines, "")
		case strings.HasPrefix(l, "  # "):
			lines = append(lines, "  "+l[4:])
		default:
			lines = append(lines, l)
		}
	}
	cfg, err := Parse("kelvin.yaml (examples uncommented)", []byte(s[:start]+strings.Join(lines, "\n")+s[end:]), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sensors) != 9 {
		t.Errorf("%d sensors, want the 2 active ones and 7 examples", len(cfg.Sensors))
	}
}

// TestDefaultAgentIDIsMachineUnique: a hostname that many Pis share gets a
// hash of the machine id, so two gateways left at their defaults do not
// take each other's MQTT session and topics.
func TestDefaultAgentIDIsMachineUnique(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("0123456789abcdef0123456789abcdef\n"), 0o644)
	os.WriteFile(b, []byte("fedcba9876543210fedcba9876543210\n"), 0o644)
	idA := defaultAgentID("raspberrypi", readMachineID([]string{filepath.Join(dir, "missing"), a}))
	idB := defaultAgentID("raspberrypi", readMachineID([]string{b}))
	if !regexp.MustCompile(`^raspberrypi-[0-9a-f]{6}$`).MatchString(idA) || idA == idB {
		t.Errorf("two Pis named raspberrypi: %q and %q, want raspberrypi-<hash> each, different", idA, idB)
	}
	if again := defaultAgentID("raspberrypi", readMachineID([]string{a})); again != idA {
		t.Errorf("the id changed between starts: %q, then %q", idA, again)
	}
	if strings.Contains(idA, "012345") {
		t.Errorf("%q shows the machine id", idA)
	}
	for host, want := range map[string]string{
		"Greenhouse-1.local": "greenhouse-1",
		"LOCALHOST":          "localhost-",
		"ubuntu":             "ubuntu-",
		"debian.lan":         "debian-",
		"":                   "kelvin-",
	} {
		got := defaultAgentID(host, readMachineID([]string{a}))
		if got != want && !(strings.HasSuffix(want, "-") && strings.HasPrefix(got, want) && len(got) == len(want)+6) {
			t.Errorf("hostname %q: %q, want %q", host, got, want+"…")
		}
	}
	if got := defaultAgentID("raspberrypi", readMachineID([]string{filepath.Join(dir, "missing")})); got != "raspberrypi" {
		t.Errorf("without a machine id: %q, want the bare hostname", got)
	}
}

// TestLiteralDollarBrace: $${ is a literal ${, not a variable.
func TestLiteralDollarBrace(t *testing.T) {
	env := func(name string) (string, bool) { return map[string]string{"USER_X": "kelvin"}[name], name == "USER_X" }
	cfg, err := Parse("t.yaml", []byte(`
sensors: [{ id: air, type: sim }]
http: { listen: "" }
mqtt: { url: "tcp://broker:1883", username: "${USER_X}-$${HOME}-$$${USER_X}" }
`), env)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.MQTT.Username, "kelvin-${HOME}-$${USER_X}"; got != want {
		t.Errorf("username %q, want %q", got, want)
	}
}

// TestAheadIsNotSaturated: a time centuries ahead is not said to be
// "2562047h47m16s in the future", the most a Duration holds.
func TestAheadIsNotSaturated(t *testing.T) {
	now := time.Now()
	if got := ahead(now.AddDate(8000, 0, 0), now); got != "about 8000 years" {
		t.Errorf("8000 years ahead: %q", got)
	}
	if got := ahead(now.Add(90*time.Second), now); got != "1m30s" {
		t.Errorf("90 s ahead: %q", got)
	}
}

// TestSectionsDecode decodes the buffer and kafka sections with the decoder
// kelvin runs (not yaml.v3's, which reads sizes and durations differently:
// "7d" is a duration here), defaults them, and checks the result.
func TestSectionsDecode(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"ca.pem", "client.pem", "client.key", "kafka.pass"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := Parse("sections.yaml", []byte(strings.ReplaceAll(`
sensors: [{id: a, type: sim}]
buffer: { sync: always, max_bytes: 500MB, max_age: 7d, full: block_newest, drain_rate: 200 }
kafka:
  brokers: [kafka-1.lan:9093, kafka-2.lan:9093]
  topic: "site-a.{agent}.{quantity}"
  compression: lz4
  linger: 20ms
  tls: { ca: DIR/ca.pem, cert: DIR/client.pem, key: DIR/client.key }
  sasl: { mechanism: SCRAM-SHA-512, username: kelvin, password_file: DIR/kafka.pass }
`, "DIR", dir)), func(string) (string, bool) { return "", false })
	if !kafka.Available {
		if err == nil || !strings.Contains(err.Error(), "built without Kafka") {
			t.Fatalf("a kafka section in a nokafka build: %v", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Buffer
	if b.Sync != "always" || b.MaxBytes != 500e6 || time.Duration(b.MaxAge) != 7*24*time.Hour || b.Full != buffer.FullBlockNewest || b.DrainRate != 200 {
		t.Errorf("buffer decoded as %+v", b)
	}
	k := cfg.Kafka
	if !slices.Equal(k.Brokers, []string{"kafka-1.lan:9093", "kafka-2.lan:9093"}) || k.Topic != "site-a.{agent}.{quantity}" ||
		k.Compression != "lz4" || k.Linger != 20*time.Millisecond || k.TLS == nil || k.TLS.CA != dir+"/ca.pem" ||
		k.SASL.Mechanism != "SCRAM-SHA-512" || k.SASL.Username != "kelvin" || k.SASL.PasswordFile != dir+"/kafka.pass" {
		t.Errorf("kafka decoded as %+v (tls %+v)", k, k.TLS)
	}
	// The segment size is the buffer's own, not the user's.
	_, err = Parse("seg.yaml", []byte("sensors: [{id: a, type: sim}]\nbuffer: {segment_bytes: 10}\n"), func(string) (string, bool) { return "", false })
	if err == nil || !strings.Contains(err.Error(), "buffer.segment_bytes: unknown key") {
		t.Errorf("segment_bytes in a config: %v, want unknown key", err)
	}
}

// TestFleetFiltersDecode: fleet.filters become the fleet's rules in
// order, each chain decoded like a sensor's filters.
func TestFleetFiltersDecode(t *testing.T) {
	cfg, err := Parse("fleet.yaml", []byte(`
agent: { id: central, data_dir: /tmp/x }
fleet:
  filters:
    - match: "greenhouse-*/tank"
      filters: [{ moving_average: 5 }, { round: 1 }]
    - match: "*/*"
      filters: [{ median: 30s }]
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Fleet.Rules
	if len(r) != 2 || r[0].Match != "greenhouse-*/tank" || r[1].Match != "*/*" ||
		len(r[0].Specs) != 2 || r[0].Specs[0].Kind != "moving_average" || r[0].Specs[0].N != 5 || r[0].Specs[1].Kind != "round" ||
		len(r[1].Specs) != 1 || r[1].Specs[0].Kind != "median" || r[1].Specs[0].Window != 30*time.Second {
		t.Errorf("rules %+v", r)
	}
}

// TestForwardWithoutLoop: fleet.forward is accepted when the outputs
// cannot feed the fleet's sources: another prefix or another broker, another
// Kafka topic or cluster.
func TestForwardWithoutLoop(t *testing.T) {
	for _, outputs := range []string{
		`mqtt: { url: "tcp://localhost:1883", topic: "fleet/{agent}/{sensor}" }`,
		`mqtt: { url: "tcp://127.0.0.1:1884" }`,
		`mqtt: { url: "tcp://central.lan" }`,
		`kafka: { brokers: ["localhost:9092"], topic: "kelvin.fleet" }`,
		`kafka: { brokers: ["kafka2.lan:9092"] }`,
	} {
		conf := `
agent: { id: fleet }
fleet:
  mqtt: { url: "tcp://localhost:1883" }
  kafka: { brokers: ["localhost:9092"] }
  forward: true
http: { listen: ":8080" }
` + outputs + "\n"
		if _, err := Parse("x.yaml", []byte(conf), nil); err != nil {
			t.Errorf("%s: %v", outputs, err)
		}
	}
	for _, tc := range []struct {
		filter, pattern string
		overlap         bool
	}{
		{"kelvin/#", "kelvin/{agent}/{sensor}/{quantity}", true},
		{"kelvin/+/+", "kelvin/{agent}/{sensor}/{quantity}", false},
		{"kelvin/+/+/+", "kelvin/{agent}/{sensor}/{quantity}", true},
		{"kelvin/gw-1/#", "kelvin/{agent}/{sensor}/{quantity}", true},
		{"kelvin/#", "fleet/{agent}/{sensor}/{quantity}", false},
		{"#", "fleet/{agent}/{sensor}/{quantity}", true},
		{"site/+/x", "site/{agent}/y", false},
	} {
		if got := topicsOverlap(tc.filter, tc.pattern); got != tc.overlap {
			t.Errorf("topicsOverlap(%q, %q) = %v", tc.filter, tc.pattern, got)
		}
	}
}
