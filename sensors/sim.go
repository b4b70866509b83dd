package sensors

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/reading"
)

// SimConfig configures a simulated sensor (yaml tags are decoded by the
// agent). The zero value is a valid configuration: a temperature sensor
// around 21 °C with 0.15 °C of noise, seeded from its id.
type SimConfig struct {
	// Seed seeds the random stream; 0 (the default) derives a seed from the
	// sensor id, so a given id gives the same values on every run.
	Seed int64 `yaml:"seed"`
	// Base is the mean value, in the quantity's unit (°C, %RH or Pa).
	// 0 means the quantity's default: 21 °C, 55 %RH or 101325 Pa.
	Base float64 `yaml:"base"`
	// Noise is the standard deviation of the per-read noise, in the
	// quantity's unit. 0 means the quantity's default: 0.15 °C, 0.4 %RH
	// or 3 Pa.
	Noise float64 `yaml:"noise"`
	// Quantity is reading.Temperature (the default), reading.Humidity or
	// reading.Pressure.
	Quantity string `yaml:"quantity"`
}

// Validate reports every problem of c at once (nil when there is none);
// each problem starts with "sim: " and names the key.
func (c SimConfig) Validate() error {
	errs := c.problems()
	for i, err := range errs {
		errs[i] = fmt.Errorf("sim: %w", err)
	}
	return errors.Join(errs...)
}

// problems lists what is wrong with c, without the "sim: " prefix.
func (c SimConfig) problems() []error {
	var errs []error
	q := c.Quantity
	if q == "" {
		q = reading.Temperature
	}
	if _, ok := simModelOf(q); !ok {
		errs = append(errs, fmt.Errorf("quantity %q: want %s, %s or %s", c.Quantity, reading.Temperature, reading.Humidity, reading.Pressure))
	}
	if math.IsNaN(c.Base) || math.IsInf(c.Base, 0) {
		errs = append(errs, fmt.Errorf("base %v: want a finite number", c.Base))
	}
	if math.IsNaN(c.Noise) || math.IsInf(c.Noise, 0) || c.Noise < 0 {
		errs = append(errs, fmt.Errorf("noise %v: want a finite number >= 0", c.Noise))
	}
	return errs
}

// simModel holds the per-quantity shape of a simulated signal, in the
// quantity's unit.
type simModel struct {
	base, noise        float64 // defaults for SimConfig.Base and Noise
	walkStd            float64 // stationary standard deviation of the random walk
	walkMax            float64 // the walk is clamped to ±walkMax
	spikeMin, spikeMax float64 // magnitude of a spike
	res                float64 // values are multiples of res (a chip's LSB)
	min, max           float64 // physical bounds values are clamped to
}

// simModelOf returns the model of quantity q.
func simModelOf(q string) (simModel, bool) {
	switch q {
	case reading.Temperature: // DS18B20-like: 1/16 °C
		return simModel{base: 21, noise: 0.15, walkStd: 1.2, walkMax: 3.5, spikeMin: 3, spikeMax: 5, res: 1.0 / 16, min: -55, max: 125}, true
	case reading.Humidity: // BME280-like: 1/1024 %RH
		return simModel{base: 55, noise: 0.4, walkStd: 4, walkMax: 12, spikeMin: 8, spikeMax: 15, res: 1.0 / 1024, min: 0, max: 100}, true
	case reading.Pressure: // BME280-like: 1/256 Pa, 300..1100 hPa
		return simModel{base: 101325, noise: 3, walkStd: 150, walkMax: 450, spikeMin: 300, spikeMax: 600, res: 1.0 / 256, min: 30000, max: 110000}, true
	}
	return simModel{}, false
}

const (
	// simTau is the time constant of the mean-reverting walk: it drifts
	// visibly within minutes and forgets its past within an hour.
	simTau = 10 * time.Minute
	// simSpikeRate is the probability that one read carries a spike.
	simSpikeRate = 1.0 / 300
	// simNoiseClip bounds the noise to ±simNoiseClip standard deviations,
	// so a value never leaves Base ± (walkMax + spikeMax + 4·Noise).
	simNoiseClip = 4
)

// Sim is a simulated sensor; see NewSim. It is safe for concurrent use.
type Sim struct {
	cfg SimConfig // defaults applied
	m   simModel
	now func() time.Time
	err error // configuration problem, returned by every Read

	mu      sync.Mutex
	rng     *rand.Rand
	walk    float64   // deviation of the walk from cfg.Base
	last    time.Time // clock at the previous read
	started bool      // last is set
}

var _ Sensor = (*Sim)(nil)

// NewSim returns a seedable random-walk sensor: a slow mean-reverting random
// walk around Base (Ornstein-Uhlenbeck with a 10 min time constant, so it
// drifts visibly over minutes but stays within a few degrees: its standard
// deviation is 1.2 °C and it is clamped to ±3.5 °C), plus Gaussian noise
// per read (so smoothing is visible), plus rarely (one read in 300, seeded)
// a single spike of 3 to 5 °C so the outlier filter has something to do.
// Humidity and pressure use the same shape scaled to their units. Values
// are rounded to a chip's resolution (1/16 °C, 1/1024 %RH, 1/256 Pa).
//
// Seed 0 uses a hash of id. now is the clock (inject wallclock.Now in production;
// nil means wallclock.Now); the walk advances by the time between reads. The
// values depend only on the seed and on the sequence of times now returns.
// An invalid cfg (see SimConfig.Validate) makes every Read fail.
func NewSim(id string, cfg SimConfig, now func() time.Time) *Sim {
	if now == nil {
		now = wallclock.Now
	}
	if cfg.Quantity == "" {
		cfg.Quantity = reading.Temperature
	}
	s := &Sim{now: now}
	if errs := cfg.problems(); len(errs) > 0 {
		s.err = fmt.Errorf("sim: %s: %w", id, errors.Join(errs...))
	}
	s.m, _ = simModelOf(cfg.Quantity)
	if cfg.Base == 0 {
		cfg.Base = s.m.base
	}
	if cfg.Noise == 0 {
		cfg.Noise = s.m.noise
	}
	if cfg.Seed == 0 {
		h := fnv.New64a()
		h.Write([]byte(id))
		cfg.Seed = int64(h.Sum64())
	}
	s.cfg = cfg
	s.rng = rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6b656c76696e)) // "kelvin"
	s.walk = clamp(s.m.walkStd*s.rng.NormFloat64(), -s.m.walkMax, s.m.walkMax)
	return s
}

// Read returns one reading of the configured quantity with Time = now().
// It does not block; it returns ctx.Err() if ctx is already done.
func (s *Sim) Read(ctx context.Context) ([]reading.Reading, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.err != nil {
		return nil, s.err
	}
	t := s.now()
	s.mu.Lock()
	v := s.step(t)
	s.mu.Unlock()
	return []reading.Reading{{
		Quantity: s.cfg.Quantity,
		Value:    v,
		Raw:      v,
		Unit:     reading.UnitOf(s.cfg.Quantity),
		Time:     t,
	}}, nil
}

// step advances the walk to time t and returns the next value. It draws the
// same number of random numbers on every call, so the stream of values
// depends only on the seed and the times.
func (s *Sim) step(t time.Time) float64 {
	zWalk := s.rng.NormFloat64()
	zNoise := s.rng.NormFloat64()
	uSpike := s.rng.Float64()
	uSize := s.rng.Float64()
	negative := s.rng.Uint64()&1 == 1

	var dt time.Duration
	if s.started {
		dt = t.Sub(s.last)
	}
	s.last, s.started = t, true
	if dt > 0 {
		// Exact discretisation of the Ornstein-Uhlenbeck process: the
		// stationary variance stays walkStd² whatever the read interval.
		a := math.Exp(-dt.Seconds() / simTau.Seconds())
		s.walk = s.walk*a + s.m.walkStd*math.Sqrt(1-a*a)*zWalk
		s.walk = clamp(s.walk, -s.m.walkMax, s.m.walkMax)
	}
	v := s.cfg.Base + s.walk + s.cfg.Noise*clamp(zNoise, -simNoiseClip, simNoiseClip)
	if uSpike < simSpikeRate {
		size := s.m.spikeMin + (s.m.spikeMax-s.m.spikeMin)*uSize
		if negative {
			size = -size
		}
		v += size
	}
	v = clamp(v, s.m.min, s.m.max)
	return math.Round(v/s.m.res) * s.m.res
}

func clamp(v, lo, hi float64) float64 {
	return math.Max(lo, math.Min(hi, v))
}
