package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
			if len(cfg.Sensors) == 0 {
				t.Error("no sensors")
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
			`13: sensors[2].type: unknown sensor type "thermocouple" (one of aht20, bme280, bmp180, bmp280, ds18b20, http, lm75, mcp9808, mqtt, sht3x, sht4x, sim, tmp102)`,
			`15: mqtt.url: unknown scheme "ftp" (tcp, mqtt, ssl, tls, mqtts, ws, wss)`,
			`16: mqtt.qos: want 0, 1 or 2, got 3`,
			`17: mqtt.topic: "kelvin/all" must contain {sensor}, or every sensor would share one topic`,
			`19: buffer.hot_dir: want "auto", "off" or an absolute directory, got "run/kelvin"`,
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
		"bad-syntax.yaml": {
			`4: mapping values are not allowed in this context`,
		},
		"bad-empty.yaml": {
			`sensors: at least one sensor is needed (see configs/kelvin.yaml, or ` + "`kelvin scan`" + ` to list what is attached)`,
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
	if len(cfg.Sensors) != 8 {
		t.Errorf("%d sensors, want the 2 active ones and 6 examples", len(cfg.Sensors))
	}
}
