package buffer

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"time"

	"github.com/kelvin-gw/kelvin/internal/bytesize"
)

// Defaults applied by SetDefaults.
const (
	// DefaultSync is the default group-commit interval.
	DefaultSync = "1s"
	// DefaultMaxBytes is the default disk budget, in bytes (64 MiB).
	DefaultMaxBytes = 64 << 20
	// DefaultMaxAge is the default age after which readings are dropped.
	DefaultMaxAge = 7 * 24 * time.Hour
	// DefaultFull is the default policy when the budget is reached.
	DefaultFull = FullDropOldest
	// DefaultSegmentBytes is the default segment file size, in bytes (4 MiB).
	DefaultSegmentBytes = 4 << 20
	// DefaultHotDir is the default Config.HotDir: systemd's runtime
	// directory, else /run/kelvin, else none.
	DefaultHotDir = HotDirAuto
)

// Values of Config.Full.
const (
	// FullDropOldest makes room for new readings by deleting the oldest
	// segment, counted per cursor as dropped readings.
	FullDropOldest = "drop_oldest"
	// FullBlockNewest refuses new readings with ErrFull.
	FullBlockNewest = "block_newest"
)

// SyncAlways is the Config.Sync value that makes Append return only after
// an fsync.
const SyncAlways = "always"

// Limits enforced by Validate.
const (
	minMaxBytes     = 64 << 10
	minSegmentBytes = 4 << 10
)

// Config is the buffer's section of the agent's YAML configuration. The
// zero value, after SetDefaults, is a valid configuration.
type Config struct {
	// Sync is the group-commit interval as a duration ("1s", the default),
	// or "always" to fsync before every Append returns.
	Sync string `yaml:"sync"`
	// MaxBytes is the disk budget of the segment files, default 64 MiB.
	MaxBytes Size `yaml:"max_bytes"`
	// MaxAge drops whole segments whose newest reading is older, default
	// 7 days.
	MaxAge time.Duration `yaml:"max_age"`
	// Full is what happens when MaxBytes is reached: "drop_oldest" (the
	// default) or "block_newest".
	Full string `yaml:"full"`
	// HotDir is where the newest readings are kept until every output
	// acknowledged them, so that with outputs keeping up readings never
	// touch the disk: a directory on a tmpfs that outlives the process
	// (systemd's RuntimeDirectory= with RuntimeDirectoryPreserve=yes).
	// "auto" (the default) takes $RUNTIME_DIRECTORY, else /run/kelvin if it
	// exists and is writable, else none; "off" writes every reading to disk.
	// See hot.go for what each choice guarantees.
	HotDir string `yaml:"hot_dir"`
	// HotMaxBytes bounds the bytes the hot tail keeps in its tmpfs (which
	// /run shares with the system): when a new segment would take it past
	// the bound, or the tmpfs is full, that segment is written to disk, as
	// with hot_dir: off, until the hot tail has room again. 0 (the default,
	// "auto") is a quarter of the tmpfs's size, at most max_bytes. Either
	// way at least two segments (8 MiB).
	HotMaxBytes Size `yaml:"hot_max_bytes"`
	// DrainRate caps the readings per second each cursor's Next returns;
	// 0 (the default) is unlimited.
	DrainRate float64 `yaml:"drain_rate"`
	// SegmentBytes is the size at which a segment file is closed and the
	// next one started, default 4 MiB; it is lowered to MaxBytes/4 when
	// bigger. Not configurable from YAML.
	SegmentBytes int64 `yaml:"-"`
}

// FullModes lists the values of Config.Full, the default first; the config
// schema lists the same.
func FullModes() []string { return []string{FullDropOldest, FullBlockNewest} }

// SetDefaults fills in every zero field with its default.
func (c *Config) SetDefaults() {
	if c.Sync == "" {
		c.Sync = DefaultSync
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.Full == "" {
		c.Full = DefaultFull
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.HotDir == "" {
		c.HotDir = DefaultHotDir
	}
}

// Validate returns one error per bad field, each message starting with the
// field's YAML key and a colon. It expects SetDefaults to have run.
func (c Config) Validate() []error {
	var errs []error
	if _, _, err := c.syncMode(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxBytes < minMaxBytes {
		errs = append(errs, fmt.Errorf("max_bytes: want at least %s, got %s", Size(minMaxBytes), c.MaxBytes))
	}
	if c.MaxAge <= 0 {
		errs = append(errs, fmt.Errorf("max_age: want a positive duration, got %s", c.MaxAge))
	}
	if !slices.Contains(FullModes(), c.Full) {
		errs = append(errs, fmt.Errorf("full: want %q or %q, got %q", FullDropOldest, FullBlockNewest, c.Full))
	}
	if c.DrainRate < 0 || math.IsNaN(c.DrainRate) || math.IsInf(c.DrainRate, 0) {
		errs = append(errs, fmt.Errorf("drain_rate: want readings per second, 0 or more (0 is unlimited), got %v", c.DrainRate))
	}
	if c.HotDir != HotDirAuto && c.HotDir != HotDirOff && !filepath.IsAbs(c.HotDir) {
		errs = append(errs, fmt.Errorf("hot_dir: want %q, %q or an absolute directory, got %q", HotDirAuto, HotDirOff, c.HotDir))
	}
	if c.HotMaxBytes != 0 && int64(c.HotMaxBytes) < 2*c.segmentBytes() {
		errs = append(errs, fmt.Errorf("hot_max_bytes: want 0 (auto) or at least %s (two segments), got %s", Size(2*c.segmentBytes()), c.HotMaxBytes))
	}
	if c.SegmentBytes < minSegmentBytes {
		errs = append(errs, fmt.Errorf("segment_bytes: want at least %d, got %d", minSegmentBytes, c.SegmentBytes))
	}
	return errs
}

// syncMode parses Sync: the group-commit interval, or always.
func (c Config) syncMode() (every time.Duration, always bool, err error) {
	if c.Sync == SyncAlways {
		return time.Second, true, nil
	}
	d, err := time.ParseDuration(c.Sync)
	if err != nil || d <= 0 {
		return 0, false, fmt.Errorf("sync: want a duration like \"1s\" or %q, got %q", SyncAlways, c.Sync)
	}
	return d, false, nil
}

// segmentBytes is the effective segment size.
func (c Config) segmentBytes() int64 {
	return max(min(c.SegmentBytes, int64(c.MaxBytes)/4), minSegmentBytes)
}

// Size is a number of bytes in config: "64MiB", "500 MB" or "1048576"
// (bytesize.Size, which sections outside the buffer use too).
type Size = bytesize.Size

// ParseSize parses a size as described on bytesize.Size.
func ParseSize(text string) (Size, error) { return bytesize.ParseSize(text) }
