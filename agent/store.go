package agent

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/kelvin-gw/kelvin/buffer"
	"github.com/kelvin-gw/kelvin/publish"
	"github.com/kelvin-gw/kelvin/reading"
)

// bufferStore is the durable buffer under data_dir/buffer: every output
// reads it through its own persisted cursor.
type bufferStore struct {
	log *buffer.Log

	// Refusals, logged when they start, once a minute while they last and
	// when they end: a full disk refuses every reading, and a line per
	// reading would fill the journal on that same disk.
	mu          sync.Mutex
	refusing    bool
	refusedN    int
	refusedAt   time.Time // when the current spell started
	refusedLast time.Time // when it was last logged
}

// refusedEvery is how often a spell of refused readings is summarised.
const refusedEvery = time.Minute

// noteAppend logs the outcome of an Append as a change of state, not per
// reading.
func (b *bufferStore) noteAppend(log *slog.Logger, n int, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	switch {
	case err != nil && !b.refusing:
		b.refusing, b.refusedN, b.refusedAt, b.refusedLast = true, n, now, now
		log.Warn("readings not stored", "count", n, "err", err)
	case err != nil:
		b.refusedN += n
		if now.Sub(b.refusedLast) >= refusedEvery {
			b.refusedLast = now
			log.Warn("readings still not stored", "count", b.refusedN, "since_seconds", int(now.Sub(b.refusedAt).Seconds()), "err", err)
		}
	case b.refusing:
		b.refusing = false
		log.Info("readings stored again", "not_stored", b.refusedN, "seconds", int(now.Sub(b.refusedAt).Seconds()))
	}
}

func openStore(cfg *Config, outputs []string, now func() time.Time, log *slog.Logger) (*bufferStore, error) {
	dir := filepath.Join(cfg.Agent.DataDir, "buffer")
	l, err := buffer.Open(dir, cfg.Buffer, now, log)
	if err != nil {
		return nil, fmt.Errorf("agent: open the buffer in %s: %w", dir, err)
	}
	return &bufferStore{log: l}, nil
}

func (b *bufferStore) Append(rs []reading.Reading) error { return b.log.Append(rs) }

func (b *bufferStore) Source(output string) (publish.Source, error) { return b.log.Cursor(output) }

func (b *bufferStore) Backlog(output string) int {
	for _, c := range b.log.Stats().Cursors {
		if c.Name == output {
			return int(c.Backlog)
		}
	}
	return 0
}

func (b *bufferStore) Stats() buffer.Stats { return b.log.Stats() }

// Resumed is buffer.Log.Resumed: where each sensor's seqs resumed after a
// gap at this start.
func (b *bufferStore) Resumed() map[string]uint64 { return b.log.Resumed() }
func (b *bufferStore) Flush() error               { return b.log.Sync() }
func (b *bufferStore) Close() error               { return b.log.Close() }
