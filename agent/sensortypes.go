package agent

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kelvin-gw/kelvin/ingest"

	"github.com/kelvin-gw/kelvin/reading"
	"github.com/kelvin-gw/kelvin/sensors"
	"github.com/kelvin-gw/kelvin/sensors/hw"
	"github.com/kelvin-gw/kelvin/sensors/sht"
)

// sensorType is what the agent knows about one `type:` of sensor: which
// keys it takes, its intervals, its quantities, how to check and open it.
type sensorType struct {
	keys            []string // type-specific keys it accepts (from typeKeys)
	defaultInterval time.Duration
	minInterval     func(s *SensorConfig) time.Duration
	quantities      func(s *SensorConfig) []string
	validate        func(v *validator, path string, s *SensorConfig)
	open            func(e *env, s *SensorConfig) (sensors.Sensor, error)
	// groupKey, when set, makes the type's sensors share their bus's
	// conversion: it names the group a sensor belongs to, and openGroup
	// opens one reader for all its members, even a lone one (open is then
	// not used). This is the one place that decides who shares a
	// conversion.
	groupKey  func(s *SensorConfig) string
	openGroup func(e *env, members []*SensorConfig) (sensors.Sensor, error)
	// pushed, when set, says the type's sensors are not read: devices
	// push their readings to that input; interval is how often they are
	// expected.
	pushed input
	// claim, when set, names the hardware sensors[i] occupies ("i2c-1
	// 0x76", "w1 28-…"), so that no two sensors claim one; at maps what
	// the sensors before it claimed to their index. It may check what
	// the sensor must share with those (a DS2482's conversion).
	claim func(v *validator, i int, at map[string]int) string
}

// input is where a pushed sensor's readings come in.
type input int

const (
	notPushed input = iota
	viaPage         // POST /api/ingest on the page
	viaMQTT         // the MQTT input, from the sensor's topic
)

// typeName is the name of the sensor type whose readings come in through
// in, as the registry says ("http" for viaPage), for messages.
func (in input) typeName() string {
	for name, t := range sensorTypes {
		if t.pushed == in && in != notPushed {
			return name
		}
	}
	return ""
}

// durable reports whether a pushed reading is answered only once it is
// durable in the buffer: on the page, a 202 promises that; the MQTT input
// takes one message at a time, and waiting for each group commit would
// hold it to one message per buffer.sync, so its readings are taken like a
// wired sensor's, once in the buffer.
func (in input) durable() bool { return in == viaPage }

// env is what opening a sensor may use.
type env struct {
	cfg   *Config
	now   func() time.Time
	buses *hw.Buses
	w1Bus func(sensors.W1BusStatus) // told when a kernel 1-Wire bus gains or loses bulk conversion
}

// typeKeys are the sensor keys that only some types accept.
var typeKeys = []string{"address", "bus", "bridge", "resolution", "oversampling", "iir_filter", "repeatability", "seed", "base", "noise", "quantity", "topic", "value_path"}

// sensorTypes is the registry of sensor types, built explicitly here.
var sensorTypes = buildSensorTypes()

func fixed(d time.Duration) func(*SensorConfig) time.Duration {
	return func(*SensorConfig) time.Duration { return d }
}

func buildSensorTypes() map[string]sensorType {
	types := map[string]sensorType{
		"sim": {
			keys:            []string{"seed", "base", "noise", "quantity"},
			defaultInterval: time.Second,
			minInterval:     fixed(10 * time.Millisecond),
			quantities:      oneQuantity,
			validate: func(v *validator, p string, s *SensorConfig) {
				validateQuantity(v, p, s)
				if s.Noise != nil && *s.Noise < 0 {
					v.errorf(p+".noise", "must not be negative")
				}
			},
			open: func(e *env, s *SensorConfig) (sensors.Sensor, error) {
				c := sensors.SimConfig{Seed: s.Seed, Quantity: s.Quantity}
				if s.Base != nil {
					c.Base = *s.Base
				}
				if s.Noise != nil {
					c.Noise = *s.Noise
				}
				return sensors.NewSim(s.ID, c, e.now), nil
			},
		},
		"http": {
			keys:            []string{"quantity"},
			defaultInterval: time.Minute,
			minInterval:     fixed(time.Second),
			quantities:      oneQuantity,
			validate: func(v *validator, p string, s *SensorConfig) {
				validateQuantity(v, p, s)
				if v.cfg.HTTP.Listen == "" {
					v.errorf(p+".type", "http sensors take readings on the page's POST /api/ingest: set http.listen")
				}
			},
			open: func(*env, *SensorConfig) (sensors.Sensor, error) {
				return nil, errors.New("a pushed sensor is not read")
			},
			pushed: viaPage,
		},
		"mqtt": {
			keys:            []string{"quantity", "topic", "value_path"},
			defaultInterval: time.Minute,
			minInterval:     fixed(time.Second),
			quantities:      oneQuantity,
			validate:        validateMQTTSensor,
			open: func(*env, *SensorConfig) (sensors.Sensor, error) {
				return nil, errors.New("a pushed sensor is not read")
			},
			pushed: viaMQTT,
		},
		"ds18b20": {
			keys:            []string{"address", "bus", "bridge", "resolution"},
			defaultInterval: 10 * time.Second,
			minInterval: func(s *SensorConfig) time.Duration {
				if s.Bus != "" && s.Resolution >= 9 && s.Resolution <= 12 {
					return 750 * time.Millisecond >> (12 - int(s.Resolution))
				}
				return 750 * time.Millisecond
			},
			quantities: func(*SensorConfig) []string { return []string{reading.Temperature} },
			validate:   validateDS18B20,
			claim:      claimDS18B20,
			groupKey: func(s *SensorConfig) string {
				if s.Bus == "" {
					// The kernel's driver: one bulk reader for every
					// device, whatever its interval and however
					// many, since a bulk conversion converts the
					// whole bus and a device read on its own
					// meanwhile returns nothing; the reader says
					// when a bus cannot convert in bulk.
					return "w1 kernel"
				}
				n, _ := hw.ParseBus(s.Bus)
				a := bridgeAddr(s)
				return fmt.Sprintf("ds2482 i2c-%d 0x%02x %v bits %v", n, a, s.Interval, s.Resolution)
			},
			openGroup: func(e *env, members []*SensorConfig) (sensors.Sensor, error) {
				devices := make([]string, len(members))
				for i, m := range members {
					devices[i] = m.Address
				}
				if members[0].Bus == "" {
					b, err := sensors.NewW1Bulk(e.cfg.OneWire.Sysfs, devices, e.now)
					if err != nil {
						return nil, err
					}
					if e.w1Bus != nil {
						b.OnBusChange(e.w1Bus)
					}
					return b, nil
				}
				n, _ := hw.ParseBus(members[0].Bus)
				return e.buses.OpenBridge(n, bridgeAddr(members[0]), devices, int(members[0].Resolution), e.now)
			},
		},
	}
	for _, chip := range hw.Chips() {
		types[chip.Type] = sensorType{
			keys:            append([]string{"address", "bus"}, chip.Options...),
			defaultInterval: 10 * time.Second,
			minInterval:     fixed(chip.MinInterval),
			quantities:      func(*SensorConfig) []string { return chip.Quantities },
			validate: func(v *validator, p string, s *SensorConfig) {
				if s.Address != "" {
					if a, err := hw.ParseAddress(s.Address); err != nil {
						v.errorf(p+".address", "%v", err)
					} else if !slices.Contains(chip.Addresses, a) {
						v.errorf(p+".address", "a %s answers at %s, not 0x%02x", chip.Type, addrList(chip.Addresses), a)
					}
				}
				validateBus(v, p, s)
				validateChipOptions(v, p, chip, s)
			},
			open: func(e *env, s *SensorConfig) (sensors.Sensor, error) {
				n, _ := hw.ParseBus(s.Bus)
				a, _ := chipAddr(chip, s)
				return e.buses.OpenChip(chip.Type, n, a, hw.Options{
					Resolution: s.Resolution, Oversampling: s.Oversampling,
					IIRFilter: s.IIRFilter, Repeatability: s.Repeatability,
				}, e.now)
			},
			claim: func(v *validator, i int, _ map[string]int) string {
				s := &v.cfg.Sensors[i]
				if s.Bus == "" {
					return ""
				}
				n, err := hw.ParseBus(s.Bus)
				if err != nil {
					return ""
				}
				a, err := chipAddr(chip, s)
				if err != nil {
					return ""
				}
				return fmt.Sprintf("i2c-%d 0x%02x", n, a)
			},
		}
	}
	return types
}

// chipAddr is a chip's address: the config's, or the chip's default.
func chipAddr(chip hw.Chip, s *SensorConfig) (uint16, error) {
	if s.Address == "" {
		return chip.Addresses[0], nil
	}
	return hw.ParseAddress(s.Address)
}

// claimDS18B20 claims the device's 1-Wire address and, behind a DS2482,
// the bridge's I²C address; sensors behind one bridge share its
// conversion, so they must agree on interval and resolution.
func claimDS18B20(v *validator, i int, at map[string]int) string {
	s := &v.cfg.Sensors[i]
	if s.Bus != "" {
		n, _ := hw.ParseBus(s.Bus)
		bk := fmt.Sprintf("i2c-%d 0x%02x", n, bridgeAddr(s))
		if j, ok := at["bridge "+bk]; ok {
			o := &v.cfg.Sensors[j]
			if o.Interval != s.Interval || o.Resolution != s.Resolution {
				v.errorf(fmt.Sprintf("sensors[%d].interval", i), "sensors behind the DS2482 at %s share one conversion: use the interval and resolution of sensors[%d] (%v, %g bits)", bk, j, o.Interval, o.Resolution)
			}
		} else {
			at["bridge "+bk] = i // the first sensor behind it
			at[bk] = i
		}
	}
	return "w1 " + s.Address
}

// bridgeAddr is a bridged ds18b20's DS2482 address (default 0x18).
func bridgeAddr(s *SensorConfig) uint16 {
	if s.Bridge == "" {
		return 0x18
	}
	a, _ := hw.ParseAddress(s.Bridge)
	return a
}

func addrList(as []uint16) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = fmt.Sprintf("0x%02x", a)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " or " + parts[len(parts)-1]
}

func validateBus(v *validator, p string, s *SensorConfig) {
	if s.Bus == "" {
		s.Bus = "1" // the Pi's header bus; i2creg's "lowest bus" guess is often wrong
		return
	}
	if _, err := hw.ParseBus(s.Bus); err != nil {
		v.errorf(p+".bus", "%v", err)
	}
}

func validateDS18B20(v *validator, p string, s *SensorConfig) {
	if s.Address == "" {
		v.errorf(p, "address is required for type ds18b20, e.g. address: 28-0316a2b8ff01 (`kelvin scan` lists them)")
	} else if err := sensors.ValidW1Address(s.Address); err != nil {
		v.errorf(p+".address", "%s", strings.TrimPrefix(err.Error(), "w1: "))
	}
	if s.Bus == "" {
		if v.cfg.has(p + ".bridge") {
			v.errorf(p+".bridge", "needs bus: the I²C bus the DS2482 bridge is on")
		}
		if v.cfg.has(p + ".resolution") {
			v.errorf(p+".resolution", "only with a DS2482 bridge (bus:); with the kernel driver, write the resolution to /sys/bus/w1/devices/%s/resolution", s.Address)
		}
		return
	}
	if _, err := hw.ParseBus(s.Bus); err != nil {
		v.errorf(p+".bus", "%v", err)
	}
	if s.Bridge != "" {
		if a, err := hw.ParseAddress(s.Bridge); err != nil {
			v.errorf(p+".bridge", "%v", err)
		} else if !slices.Contains(hw.BridgeAddresses, a) {
			v.errorf(p+".bridge", "a DS2482 answers at 0x18..0x1f, not 0x%02x", a)
		}
	}
	if v.cfg.has(p+".resolution") && (s.Resolution != float64(int(s.Resolution)) || s.Resolution < 9 || s.Resolution > 12) {
		v.errorf(p+".resolution", "want 9, 10, 11 or 12 bits, got %g", s.Resolution)
	}
}

func validateChipOptions(v *validator, p string, chip hw.Chip, s *SensorConfig) {
	if v.cfg.has(p+".oversampling") && !slices.Contains([]int{1, 2, 4, 8, 16}, s.Oversampling) {
		v.errorf(p+".oversampling", "want 1, 2, 4, 8 or 16, got %d", s.Oversampling)
	}
	if chip.MaxOversampling > 0 && s.Oversampling > chip.MaxOversampling {
		v.errorf(p+".oversampling", "a %s oversamples at most %d times", chip.Type, chip.MaxOversampling)
	}
	if v.cfg.has(p+".iir_filter") && !slices.Contains([]int{0, 2, 4, 8, 16}, s.IIRFilter) {
		v.errorf(p+".iir_filter", "want 0, 2, 4, 8 or 16, got %d", s.IIRFilter)
	}
	if v.cfg.has(p+".repeatability") && !slices.Contains(sht.Repeatabilities(), s.Repeatability) {
		v.errorf(p+".repeatability", "want %s, got %q", orList(sht.Repeatabilities()), s.Repeatability)
	}
	if v.cfg.has(p+".resolution") && !slices.Contains([]float64{0.5, 0.25, 0.125, 0.0625}, s.Resolution) {
		v.errorf(p+".resolution", "want a step of 0.5, 0.25, 0.125 or 0.0625 °C, got %g", s.Resolution)
	}
}

func sensorTypeNames() []string {
	names := make([]string, 0, len(sensorTypes))
	for n := range sensorTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// validateMQTTSensor checks a type: mqtt sensor: a quantity, an exact
// topic that is not one Kelvin publishes to itself (no loops), a value
// path, and a broker to take it from.
func validateMQTTSensor(v *validator, p string, s *SensorConfig) {
	validateQuantity(v, p, s)
	switch {
	case s.Topic == "":
		v.errorf(p+".topic", "required for type mqtt: the topic the device publishes to")
	case strings.ContainsAny(s.Topic, "+#"):
		v.errorf(p+".topic", "%q: one exact topic per sensor, no + or # wildcards", s.Topic)
	case checkTopic(s.Topic) != nil:
		v.errorf(p+".topic", "%v", checkTopic(s.Topic))
	default:
		for _, own := range v.cfg.ownTopicPrefixes() {
			if strings.HasPrefix(s.Topic, own) {
				v.errorf(p+".topic", "%q is under %s, where Kelvin publishes itself: taking it in would loop", s.Topic, own)
				break
			}
		}
	}
	if err := ingest.CheckPath(s.ValuePath); err != nil {
		v.errorf(p+".value_path", "%v", err)
	}
	if (v.cfg.MQTTIn == nil || v.cfg.MQTTIn.URL == "") && v.cfg.MQTT == nil {
		v.errorf(p+".type", "type mqtt needs a broker: set mqtt_in.url, or an mqtt output whose broker it then uses")
	}
}

// oneQuantity is the quantity of a sensor that measures the one its
// quantity key names (temperature by default).
func oneQuantity(s *SensorConfig) []string {
	if s.Quantity == "" {
		return []string{reading.Temperature}
	}
	return []string{s.Quantity}
}

// validateQuantity checks the quantity key.
func validateQuantity(v *validator, p string, s *SensorConfig) {
	switch s.Quantity {
	case "", reading.Temperature, reading.Humidity, reading.Pressure:
	default:
		v.errorf(p+".quantity", "want temperature, humidity or pressure, got %q", s.Quantity)
	}
}
