package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/kelvin-gw/kelvin/buffer"
	"github.com/kelvin-gw/kelvin/filter"
	"github.com/kelvin-gw/kelvin/httpui"
	"github.com/kelvin-gw/kelvin/ingest"
	"github.com/kelvin-gw/kelvin/internal/bytesize"
	"github.com/kelvin-gw/kelvin/internal/kafkaauth"
	"github.com/kelvin-gw/kelvin/internal/mqttclient"
	"github.com/kelvin-gw/kelvin/publish/kafka"
	"github.com/kelvin-gw/kelvin/publish/mqtt"
	"github.com/kelvin-gw/kelvin/reading"
	"github.com/kelvin-gw/kelvin/sensors"
)

// Config is the whole of kelvin.yaml. Each section is the config type of
// the package it configures; see configs/kelvin.yaml for every key.
type Config struct {
	Agent   AgentConfig    `yaml:"agent"`
	Sensors []SensorConfig `yaml:"sensors"`
	OneWire OneWireConfig  `yaml:"onewire"`
	Buffer  buffer.Config  `yaml:"buffer"`
	MQTT    *mqtt.Config   `yaml:"mqtt"`    // nil: no MQTT output
	Kafka   *kafka.Config  `yaml:"kafka"`   // nil: no Kafka output
	MQTTIn  *MQTTInConfig  `yaml:"mqtt_in"` // the broker type: mqtt sensors read from
	HTTP    httpui.Config  `yaml:"http"`
	Log     LogConfig      `yaml:"log"`
	Fleet   *FleetConfig   `yaml:"fleet"` // nil: no fleet view

	// File is the path the config was read from ("(built-in demo)" for the demo).
	File string `yaml:"-"`
	// lines maps key paths to their line in File, for messages found later.
	lines map[string]int
}

// AgentConfig identifies this gateway and says where it keeps its state.
type AgentConfig struct {
	ID      string `yaml:"id"`       // default: the hostname
	DataDir string `yaml:"data_dir"` // default /var/lib/kelvin as root, ./data otherwise
	// Clock is "auto" (the default: readings taken before the kernel's
	// clock is synchronised are marked and their time corrected later) or
	// "trust" (never mark: a clock that is right without NTP telling the
	// kernel, like some VMs').
	Clock string `yaml:"clock"`
	// CPUs is how many CPUs run the agent's Go code at once (Go's
	// GOMAXPROCS); 0 is every CPU the process may use. Default 1 (0 with a
	// fleet section): see Config.goMaxProcs.
	CPUs int `yaml:"cpus"`
}

// OneWireConfig says where the kernel's 1-Wire devices are.
type OneWireConfig struct {
	Sysfs string `yaml:"sysfs"` // default sensors.DefaultW1SysfsDir, /sys/bus/w1/devices
}

// maxMQTTPacket is the largest remaining length MQTT can encode, in bytes.
const maxMQTTPacket = 1<<28 - 1

// MQTTInConfig is the broker that type: mqtt sensors subscribe to; by
// default the mqtt output's broker and credentials.
type MQTTInConfig struct {
	URL          string `yaml:"url"`
	ClientID     string `yaml:"client_id"` // default kelvin-{agent}-in
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// MaxPayloadBytes bounds one message's payload; a larger one is
	// discarded unread and counted as the sensor's too_large error.
	// Default ingest.DefaultMaxPayload (64 KiB), also without mqtt_in.
	MaxPayloadBytes bytesize.Size `yaml:"max_payload_bytes"`
}

// LogConfig sets the log level and format.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // auto (default: text on a terminal, JSON otherwise), text, json
}

// SensorConfig is one entry of the sensors list. Keys that only some types
// use are checked against the type.
type SensorConfig struct {
	ID         string        `yaml:"id"`
	Type       string        `yaml:"type"`
	Interval   time.Duration `yaml:"interval"`
	Filters    Filters       `yaml:"filters"`
	StaleAfter time.Duration `yaml:"stale_after"` // same raw value this long = fault; 0 = off

	// Hardware address: a kernel 1-Wire name (28-0316a2b8ff01) or an I²C
	// address (0x76).
	Address string `yaml:"address"`
	// Bus is the I²C bus: 1 or /dev/i2c-1. For a ds18b20 it means the
	// sensor is behind a DS2482 bridge on that bus.
	Bus string `yaml:"bus"`
	// Bridge is the DS2482's I²C address (default 0x18).
	Bridge string `yaml:"bridge"`

	// Chip options.
	Resolution    float64 `yaml:"resolution"`    // ds18b20 on a bridge: 9..12 bits; mcp9808: °C step
	Oversampling  int     `yaml:"oversampling"`  // bme280/bmp280/bmp180: 1, 2, 4, 8, 16
	IIRFilter     int     `yaml:"iir_filter"`    // bme280/bmp280: 0, 2, 4, 8, 16
	Repeatability string  `yaml:"repeatability"` // sht3x/sht4x: high, medium, low

	// mqtt only: the topic a device publishes to, and where the value is
	// in its payload ($.AM2301.Temperature; empty: the bare number).
	Topic     string `yaml:"topic"`
	ValuePath string `yaml:"value_path"`

	// sim only.
	Seed     int64    `yaml:"seed"`
	Base     *float64 `yaml:"base"`
	Noise    *float64 `yaml:"noise"`
	Quantity string   `yaml:"quantity"`
}

// Filters are a sensor's filter chains: one list for every quantity, or a
// list per quantity.
type Filters struct {
	All        []filter.Spec
	ByQuantity map[string][]filter.Spec
	lines      map[string]int // quantity → line, for ByQuantity
}

// For returns the chain specs for one quantity.
func (f Filters) For(quantity string) []filter.Spec {
	if f.ByQuantity != nil {
		return f.ByQuantity[quantity]
	}
	return f.All
}

func (f *Filters) decodeYAML(d *decoder, n *yaml.Node, path string) {
	switch {
	case isNull(n):
	case n.Kind == yaml.SequenceNode:
		f.All = decodeFilterList(d, n, path)
	case n.Kind == yaml.MappingNode:
		f.ByQuantity = map[string][]filter.Spec{}
		f.lines = map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			d.lines[p] = k.Line
			if _, dup := f.ByQuantity[k.Value]; dup {
				d.errorAt(k, p, "duplicate key")
				continue
			}
			f.lines[k.Value] = k.Line
			if v.Kind != yaml.SequenceNode && !isNull(v) {
				d.errorAt(v, p, "want a list of filters, got %s", describe(v))
				f.ByQuantity[k.Value] = nil
				continue
			}
			f.ByQuantity[k.Value] = decodeFilterList(d, v, p)
		}
	default:
		d.errorAt(n, path, "want a list of filters (or a mapping of quantity to list), got %s", describe(n))
	}
}

func decodeFilterList(d *decoder, n *yaml.Node, path string) []filter.Spec {
	var specs []filter.Spec
	sawDelta := false
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = item.Line
		if item.Kind != yaml.MappingNode || len(item.Content) != 2 {
			d.errorAt(item, p, "want one filter like `median: 5`, got %s", describe(item))
			continue
		}
		k, v := item.Content[0], item.Content[1]
		kp := join(p, k.Value)
		spec, ok := decodeFilter(d, k.Value, v, kp)
		if !ok {
			continue
		}
		if err := spec.Validate(); err != nil {
			d.errorAt(v, kp, "%v", err)
			continue
		}
		switch spec.Kind {
		case "delta":
			sawDelta = true
		case "heartbeat":
			if !sawDelta {
				d.errorAt(k, kp, "heartbeat needs a delta filter before it (it re-sends what delta held back)")
				continue
			}
		}
		specs = append(specs, spec)
	}
	return specs
}

// decodeFilter decodes the argument of one filter.
func decodeFilter(d *decoder, kind string, v *yaml.Node, path string) (filter.Spec, bool) {
	s := filter.Spec{Kind: kind}
	problemsBefore := len(d.problems)
	switch kind {
	case "median", "moving_average":
		s.N, s.Window = decodeWindow(d, v, path)
	case "outlier":
		s.MADs = 3
		if v.Kind == yaml.MappingNode {
			var o struct {
				Window yaml.Node `yaml:"window"`
				MADs   *float64  `yaml:"mads"`
			}
			d.decodeStruct(v, reflectValue(&o), path)
			if o.Window.Kind == 0 {
				d.errorAt(v, path, "window is required, e.g. {window: 7, mads: 3}")
			} else {
				s.N, s.Window = decodeWindow(d, &o.Window, join(path, "window"))
			}
			if o.MADs != nil {
				s.MADs = *o.MADs
			}
		} else {
			s.N, s.Window = decodeWindow(d, v, path)
		}
	case "ema":
		s.Alpha, _ = d.number(v, path)
	case "offset":
		s.Offset, _ = d.number(v, path)
	case "max_rate":
		s.Rate, _ = d.number(v, path)
	case "delta":
		s.Delta, _ = d.number(v, path)
	case "round":
		d.decode(v, reflectValue(&s.Digits), path)
	case "heartbeat":
		d.decode(v, reflectValue(&s.Every), path)
	case "clamp":
		pair := d.numberList(v, path, 2, "[min, max]")
		if pair != nil {
			s.Min, s.Max = pair[0], pair[1]
		}
	case "calibrate_linear":
		if v.Kind != yaml.SequenceNode || len(v.Content) != 2 {
			d.errorAt(v, path, "want two [raw, true] points like [[0.0, 0.3], [100.0, 99.1]], got %s", describe(v))
			break
		}
		for i := range 2 {
			pt := d.numberList(v.Content[i], fmt.Sprintf("%s[%d]", path, i), 2, "[raw, true]")
			if pt != nil {
				s.Points[i] = [2]float64{pt[0], pt[1]}
			}
		}
	default:
		d.errorAt(v, path, "unknown filter %q (known: %s)", kind, strings.Join(filter.Kinds, ", "))
	}
	return s, len(d.problems) == problemsBefore
}

// decodeWindow reads a window given as a sample count or a duration.
func decodeWindow(d *decoder, v *yaml.Node, path string) (int, time.Duration) {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!int" {
		var n int
		d.decode(v, reflectValue(&n), path)
		return n, 0
	}
	if v.Kind == yaml.ScalarNode && v.Tag == "!!str" {
		dur, err := parseDuration(v.Value)
		if err != nil {
			d.errorAt(v, path, "want a sample count like 5 or a duration like 30s, got %q", v.Value)
			return 0, 0
		}
		return 0, dur
	}
	d.errorAt(v, path, "want a sample count like 5 or a duration like 30s, got %s", describe(v))
	return 0, 0
}

func (d *decoder) numberList(v *yaml.Node, path string, n int, want string) []float64 {
	if v.Kind != yaml.SequenceNode || len(v.Content) != n {
		d.errorAt(v, path, "want %s, got %s", want, describe(v))
		return nil
	}
	out := make([]float64, n)
	for i, c := range v.Content {
		f, ok := d.number(c, fmt.Sprintf("%s[%d]", path, i))
		if !ok {
			return nil
		}
		out[i] = f
	}
	return out
}

// demoConfig is what `kelvin run` uses without -config: two simulated
// sensors and the page, no broker.
const demoConfig = `# Kelvin's built-in demo: two simulated sensors, the page on :8080, no broker.
sensors:
  - id: air
    type: sim
    interval: 1s
    filters:
      - outlier: { window: 7, mads: 3 }
      - ema: 0.3
      - round: 2
  - id: tank
    type: sim
    interval: 2s
    base: 12.5
    noise: 0.3
    filters:
      - median: 5
      - round: 2
http:
  listen: ":8080"
`

// DemoFile is the name the demo config goes by in messages.
const DemoFile = "(built-in demo)"

// LoadFile reads and validates the config at path. Problems come back as a
// *ConfigError listing every one of them.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{File: path, Problems: []Problem{{Msg: fileErr(err)}}}
	}
	return Parse(path, data, os.LookupEnv)
}

// LoadDemo returns the built-in demo config. Its state goes to a directory
// under the system's temporary directory, never to /var/lib.
func LoadDemo() (*Config, error) {
	cfg, err := Parse(DemoFile, []byte(demoConfig), os.LookupEnv)
	if err != nil {
		return nil, err
	}
	if !cfg.has("agent.data_dir") {
		cfg.Agent.DataDir = filepath.Join(os.TempDir(), "kelvin-demo")
	}
	return cfg, nil
}

func fileErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse decodes, defaults and validates a config. file names it in
// messages; getenv resolves ${NAME} references.
func Parse(file string, data []byte, getenv func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		p := Problem{Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			fmt.Sscan(m[1], &p.Line)
			p.Msg = m[2]
		}
		return nil, &ConfigError{File: file, Problems: []Problem{p}}
	}
	d := newDecoder()
	d.getenv = getenv
	cfg := &Config{File: file}
	if len(root.Content) > 0 {
		d.decode(&root, reflectValue(cfg), "")
	}
	cfg.lines = d.lines
	cfg.setDefaults()
	v := &validator{d: d, cfg: cfg}
	v.validate()
	if len(d.problems) > 0 {
		sort.SliceStable(d.problems, func(i, j int) bool { return d.problems[i].Line < d.problems[j].Line })
		return nil, &ConfigError{File: file, Problems: d.problems}
	}
	return cfg, nil
}

// setDefaults fills everything the file left out, in one place.
func (c *Config) setDefaults() {
	if c.Agent.ID == "" {
		h, _ := os.Hostname()
		c.Agent.ID = defaultAgentID(h, readMachineID(machineIDFiles))
	}
	if c.Agent.Clock == "" {
		c.Agent.Clock = "auto"
	}
	if !c.has("agent.cpus") && c.Fleet == nil {
		c.Agent.CPUs = 1 // a fleet receiver keeps 0: every CPU
	}
	if c.Agent.DataDir == "" {
		if os.Geteuid() == 0 {
			c.Agent.DataDir = "/var/lib/kelvin"
		} else {
			c.Agent.DataDir = "data"
		}
	}
	if c.OneWire.Sysfs == "" {
		c.OneWire.Sysfs = sensors.DefaultW1SysfsDir
	}
	if !c.has("http.listen") {
		c.HTTP.Listen = ":8080"
	}
	c.HTTP.SetDefaults()
	c.Buffer.SetDefaults()
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "auto"
	}
	if c.MQTT != nil {
		// QoS 0 is a choice, so only a missing key takes the default.
		if !c.has("mqtt.qos") {
			c.MQTT.QoS = mqtt.DefaultQoS
		}
		c.MQTT.SetDefaults()
	}
	if c.Kafka != nil {
		c.Kafka.SetDefaults()
	}
	c.setFleetDefaults()
	if c.Fleet != nil && c.Fleet.StateDir == "" {
		c.Fleet.StateDir = filepath.Join(c.Agent.DataDir, "fleet")
	}
	for i := range c.Sensors {
		s := &c.Sensors[i]
		if t, ok := sensorTypes[s.Type]; ok && s.Interval == 0 {
			s.Interval = t.defaultInterval
		}
	}
}

// sharedHostnames are hostnames that many machines have out of the box: an
// agent id made of one alone would be shared by every such gateway on a
// broker (one MQTT client id, one set of topics).
var sharedHostnames = map[string]bool{
	"": true, "kelvin": true, "localhost": true, "raspberrypi": true, "raspberry": true, "pi": true,
	"debian": true, "ubuntu": true, "dietpi": true, "armbian": true, "orangepi": true, "bananapi": true,
	"rockpi": true, "odroid": true, "alarm": true, "archlinux": true, "fedora": true, "openwrt": true,
	"kali": true, "linux": true, "raspbian": true,
}

// machineIDFiles hold the machine's unique id (systemd, then D-Bus).
var machineIDFiles = []string{"/etc/machine-id", "/var/lib/dbus/machine-id"}

// readMachineID returns a function reading the first of files that has
// content.
func readMachineID(files []string) func() ([]byte, error) {
	return func() ([]byte, error) {
		err := errors.New("no machine id")
		for _, f := range files {
			b, e := os.ReadFile(f)
			if e == nil && len(strings.TrimSpace(string(b))) > 0 {
				return b, nil
			}
			if e != nil {
				err = e
			}
		}
		return nil, err
	}
}

// defaultAgentID is agent.id when the file has none: the hostname's first
// label, lowercased; and when that is a name many machines share
// (raspberrypi, localhost, debian, …) it is followed by the first 6 hex
// digits of a hash of the machine id ("raspberrypi-3f9a1c"), so that two
// gateways left at their default never take each other's session and
// topics. Without a machine id it stays the bare name.
func defaultAgentID(hostname string, machineID func() ([]byte, error)) string {
	id := strings.ToLower(strings.SplitN(hostname, ".", 2)[0])
	if !sharedHostnames[id] {
		return id
	}
	if id == "" {
		id = "kelvin"
	}
	b, err := machineID()
	if err != nil {
		return id
	}
	// Hashed with a name of our own, so the id does not give the machine
	// id away (as systemd's app-specific ids).
	sum := sha256.Sum256([]byte("kelvin agent.id\x00" + strings.TrimSpace(string(b))))
	return id + "-" + hex.EncodeToString(sum[:3])
}

// has reports whether the file set the key path.
func (c *Config) has(path string) bool { _, ok := c.lines[path]; return ok }

// Line returns the line of a key path in the config file, or 0.
func (c *Config) Line(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := c.lines[p]; ok {
			return l
		}
	}
	return 0
}

// Quantities returns what sensor s publishes, in a fixed order.
func (s *SensorConfig) Quantities() []string {
	t, ok := sensorTypes[s.Type]
	if !ok {
		return nil
	}
	return t.quantities(s)
}

var (
	sensorID = regexp.MustCompile(`^[a-z0-9_-]+$`)
	agentID  = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

type validator struct {
	d   *decoder
	cfg *Config
}

func (v *validator) errorf(path, format string, args ...any) { v.d.errorf(path, format, args...) }

func (v *validator) validate() {
	c := v.cfg
	if !agentID.MatchString(c.Agent.ID) {
		v.errorf("agent.id", "%q: use letters, digits, '.', '_' and '-' only", c.Agent.ID)
	}
	if c.Agent.CPUs < 0 || c.Agent.CPUs > maxCPUs {
		v.errorf("agent.cpus", "want 0 (every CPU) to %d, got %d", maxCPUs, c.Agent.CPUs)
	}
	if len(c.Sensors) == 0 && c.Fleet == nil {
		v.errorf("sensors", "at least one sensor is needed (see configs/kelvin.yaml, or `kelvin scan` to list what is attached)")
	}
	ids := map[string]int{}
	for i := range c.Sensors {
		v.validateSensor(i, ids)
	}
	v.validateSharedBuses()
	v.validateFleet()
	for _, e := range []struct {
		key, value string
		values     []string
	}{{"log.level", c.Log.Level, logLevels()}, {"agent.clock", c.Agent.Clock, clockModes()}, {"log.format", c.Log.Format, logFormats()}} {
		if !slices.Contains(e.values, e.value) {
			v.errorf(e.key, "want %s, got %q", orList(e.values), e.value)
		}
	}
	if c.HTTP.Listen != "" {
		if err := checkListen(c.HTTP.Listen); err != nil {
			v.errorf("http.listen", "%v", err)
		}
	}
	if a := c.HTTP.Auth; a != nil {
		v.checkFile("http.auth.password_file", a.PasswordFile)
	}
	v.checkFile("http.token_file", c.HTTP.TokenFile)
	v.checkFile("http.ingest_token_file", c.HTTP.IngestTokenFile)
	if in := c.MQTTIn; in != nil {
		v.checkFile("mqtt_in.password_file", in.PasswordFile)
		if in.MaxPayloadBytes < 0 || in.MaxPayloadBytes > maxMQTTPacket {
			v.errorf("mqtt_in.max_payload_bytes", "%s: want 1B to %s (the largest MQTT packet); leave it out for %s", in.MaxPayloadBytes, bytesize.Size(maxMQTTPacket), bytesize.Size(ingest.DefaultMaxPayload))
		}
		if in.URL != "" {
			if err := mqttclient.CheckURL(in.URL); err != nil {
				v.errorf("mqtt_in.url", "%v", err)
			} else if err := checkBrokerURL(in.URL); err != nil && !v.d.hasProblem("mqtt_in.url") {
				v.errorf("mqtt_in.url", "%v", err)
			}
		}
	}
	if t := c.HTTP.TLS; t != nil {
		v.checkFile("http.tls.cert", t.Cert)
		v.checkFile("http.tls.key", t.Key)
	}
	for _, err := range c.HTTP.Validate() {
		v.prefixed("http", err)
	}
	for _, err := range c.Buffer.Validate() {
		v.prefixed("buffer", err)
	}
	if c.MQTT != nil {
		v.validateMQTT()
	}
	if c.Kafka != nil && !kafka.Available {
		v.errorf("kafka", "this kelvin was built without Kafka (-tags nokafka); remove the section or use a build with Kafka")
	}
	if c.Kafka != nil {
		for _, err := range c.Kafka.Validate() {
			v.prefixed("kafka", err)
		}
		for _, f := range kafkaauth.Files(c.Kafka.TLS, c.Kafka.SASL) {
			v.checkFile("kafka."+f[0], f[1])
		}
	}
	if c.Fleet != nil && c.Fleet.Kafka != nil {
		if !kafka.Available {
			v.errorf("fleet.kafka", "this kelvin was built without Kafka (-tags nokafka); remove the section or use a build with Kafka")
		}
		for _, f := range kafkaauth.Files(c.Fleet.Kafka.TLS, c.Fleet.Kafka.SASL) {
			v.checkFile("fleet.kafka."+f[0], f[1])
		}
	}
}

// prefixed records an error "key: message" from a package's Validate at
// section.key.
func (v *validator) prefixed(section string, err error) {
	key, msg, ok := strings.Cut(err.Error(), ": ")
	if !ok || strings.ContainsAny(key, " ") {
		v.errorf(section, "%v", err)
		return
	}
	v.errorf(join(section, key), "%s", msg)
}

func (v *validator) validateSensor(i int, ids map[string]int) {
	s := &v.cfg.Sensors[i]
	p := fmt.Sprintf("sensors[%d]", i)
	switch {
	case s.ID == "":
		v.errorf(p, "id is required")
	case !sensorID.MatchString(s.ID):
		v.errorf(p+".id", "%q: use lowercase letters, digits, '_' and '-' only", s.ID)
	default:
		if j, dup := ids[s.ID]; dup {
			v.errorf(p+".id", "%q is already used by sensors[%d] (line %d)", s.ID, j, v.cfg.Line(fmt.Sprintf("sensors[%d].id", j)))
		} else {
			ids[s.ID] = i
		}
	}
	t, ok := sensorTypes[s.Type]
	if !ok {
		if s.Type == "" {
			v.errorf(p, "type is required (one of %s)", strings.Join(sensorTypeNames(), ", "))
		} else {
			v.errorf(p+".type", "unknown sensor type %q (one of %s)", s.Type, strings.Join(sensorTypeNames(), ", "))
		}
		return
	}
	for _, key := range typeKeys {
		if v.cfg.has(p+"."+key) && !slices.Contains(t.keys, key) {
			v.errorf(p+"."+key, "not used by type %s", s.Type)
		}
	}
	if s.Interval < 0 {
		v.errorf(p+".interval", "must be positive")
	} else if mi := t.minInterval(s); s.Interval < mi {
		v.errorf(p+".interval", "%v is shorter than a %s can measure (at least %v)", s.Interval, s.Type, mi)
	}
	if s.StaleAfter < 0 {
		v.errorf(p+".stale_after", "must not be negative")
	} else if s.StaleAfter > 0 && s.StaleAfter < 2*s.Interval {
		v.errorf(p+".stale_after", "%v must be at least two intervals (%v)", s.StaleAfter, 2*s.Interval)
	}
	qs := t.quantities(s)
	for q := range s.Filters.ByQuantity {
		if !slices.Contains(qs, q) {
			v.errorf(p+".filters."+q, "type %s has no quantity %q (it has %s)", s.Type, q, strings.Join(qs, ", "))
		}
	}
	if t.validate != nil {
		t.validate(v, p, s)
	}
}

// validateSharedBuses catches two sensors at one hardware address, and
// what sensors sharing hardware must agree on, as their types claim it.
func (v *validator) validateSharedBuses() {
	at := map[string]int{} // "i2c-1 0x76" or "w1 28-…" → sensor index
	for i := range v.cfg.Sensors {
		t := sensorTypes[v.cfg.Sensors[i].Type]
		if t.claim == nil {
			continue
		}
		key := t.claim(v, i, at)
		if key == "" {
			continue
		}
		if j, ok := at[key]; ok && j != i {
			v.errorf(fmt.Sprintf("sensors[%d]", i), "%s is also used by sensors[%d] (%s)", key, j, v.cfg.Sensors[j].ID)
			continue
		}
		at[key] = i
	}
}

func (v *validator) validateMQTT() {
	m := v.cfg.MQTT
	switch {
	case m.URL == "":
		v.errorf("mqtt", "url is required, e.g. tcp://broker.lan:1883")
	default:
		scheme, rest, ok := strings.Cut(m.URL, "://")
		switch {
		case !ok:
			v.errorf("mqtt.url", "%q: want scheme://host:port, e.g. tcp://broker.lan:1883", m.URL)
		case !mqttclient.KnownScheme(scheme):
			v.errorf("mqtt.url", "unknown scheme %q (%s)", scheme, mqttclient.Schemes)
		case rest == "":
			v.errorf("mqtt.url", "%q has no host", m.URL)
		default:
			if err := checkBrokerURL(m.URL); err != nil && !v.d.hasProblem("mqtt.url") {
				v.errorf("mqtt.url", "%v", err)
			}
		}
	}
	if m.QoS < 0 || m.QoS > 2 {
		v.errorf("mqtt.qos", "want 0, 1 or 2, got %d", m.QoS)
	}
	if err := mqtt.CheckKeepAlive(m.KeepAlive); err != nil {
		v.errorf("mqtt.keepalive", "%v", err)
	}
	if strings.ContainsAny(m.Topic, "+#") {
		v.errorf("mqtt.topic", "%q: a topic to publish to cannot contain + or #", m.Topic)
	}
	if err := checkTopic(m.Topic); err != nil {
		v.errorf("mqtt.topic", "%v", err)
	}
	if err := checkTopic(m.HomeAssistantPrefix); err != nil {
		v.errorf("mqtt.homeassistant_prefix", "%v", err)
	}
	if m.Topic != "" && !strings.Contains(m.Topic, "{sensor}") {
		v.errorf("mqtt.topic", "%q must contain {sensor}, or every sensor would share one topic", m.Topic)
	}
	if m.Format != "" {
		if _, err := reading.ParseFormat(m.Format); err != nil {
			v.errorf("mqtt.format", "%v", err)
		}
	}
	if m.HomeAssistant && m.Format != "" && m.Format != "json" && m.Format != "value" {
		v.errorf("mqtt.homeassistant", "needs mqtt.format json or value: Home Assistant cannot read %s", m.Format)
	}
	if p := m.HomeAssistantPrefix; p != "" && (strings.ContainsAny(p, "+#") || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/")) {
		v.errorf("mqtt.homeassistant_prefix", "%q: want a topic prefix without + or # and without a leading or trailing /", p)
	}
	for _, f := range [][2]string{{"password_file", m.PasswordFile}, {"tls.ca", m.TLS.CA}, {"tls.cert", m.TLS.Cert}, {"tls.key", m.TLS.Key}} {
		v.checkFile("mqtt."+f[0], f[1])
	}
	if (m.TLS.Cert == "") != (m.TLS.Key == "") {
		v.errorf("mqtt.tls", "cert and key go together: set both or neither")
	}
	if m.PasswordFile != "" && m.Username == "" {
		v.errorf("mqtt.password_file", "needs mqtt.username")
	}
}

// checkListen checks an address to listen on: [host]:port with a port of
// 0 to 65535 and a host that is an IP address or a name.
func checkListen(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want host:port or :port like \":8080\", got %q", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: the port must be a number from 0 to 65535, got %q", s, port)
	}
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if strings.Trim(host, "0123456789.") == "" || strings.Contains(host, ":") {
		return fmt.Errorf("%q: %s is not an IP address", s, host)
	}
	if !hostName.MatchString(host) {
		return fmt.Errorf("%q: %q is neither an IP address nor a host name", s, host)
	}
	return nil
}

var hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$`)

// checkBrokerURL checks what a broker URL's scheme check leaves: that it
// parses, with a host, and a port of 1 to 65535 when it has one.
func checkBrokerURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%q: %v", raw, err)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: the port must be a number from 1 to 65535, got %q", raw, p)
		}
	}
	return nil
}

// checkTopic checks what MQTT asks of any topic: UTF-8 without U+0000, at
// most 65535 bytes.
func checkTopic(t string) error {
	switch {
	case strings.ContainsRune(t, 0):
		return fmt.Errorf("%q: a topic cannot contain a NUL character", t)
	case !utf8.ValidString(t):
		return fmt.Errorf("%q: a topic must be UTF-8", t)
	case len(t) > 65535:
		return fmt.Errorf("a topic of %d bytes is longer than MQTT allows (65535)", len(t))
	}
	return nil
}

// checkFile records a problem when a file the config names cannot be read.
func (v *validator) checkFile(path, file string) {
	if file == "" {
		return
	}
	f, err := os.Open(file)
	if err != nil {
		v.errorf(path, "%s: %s", file, fileErr(err))
		return
	}
	f.Close()
}

// ownTopicPrefixes are the topic prefixes Kelvin publishes under: its
// readings' (the mqtt.topic template up to its first placeholder after
// {agent}), its status topic's, and its Home Assistant discovery's.
func (c *Config) ownTopicPrefixes() []string {
	out := []string{"kelvin/" + c.Agent.ID + "/"}
	if c.MQTT == nil {
		return out
	}
	tmpl := c.MQTT.Topic
	if tmpl == "" {
		tmpl = mqtt.DefaultTopic
	}
	tmpl = strings.ReplaceAll(tmpl, "{agent}", c.Agent.ID)
	if i := strings.Index(tmpl, "{"); i > 0 {
		out = append(out, tmpl[:i])
	}
	if c.MQTT.HomeAssistant {
		prefix := c.MQTT.HomeAssistantPrefix
		if prefix == "" {
			prefix = mqtt.DefaultHomeAssistantPrefix
		}
		out = append(out, prefix+"/sensor/kelvin_"+c.Agent.ID+"/")
	}
	return out
}

// The values of log.level, log.format and agent.clock, the default first
// where there is one; validation and the schema both use them.
func logLevels() []string  { return []string{"debug", "info", "warn", "error"} }
func logFormats() []string { return []string{"auto", "text", "json"} }
func clockModes() []string { return []string{"auto", "trust"} }

// orList writes l as "a, b or c".
func orList(l []string) string {
	if len(l) < 2 {
		return strings.Join(l, "")
	}
	return strings.Join(l[:len(l)-1], ", ") + " or " + l[len(l)-1]
}
