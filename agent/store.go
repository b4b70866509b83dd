package agent

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/kelvin-gw/kelvin/buffer"
	"github.com/kelvin-gw/kelvin/publish"
	"github.com/kelvin-gw/kelvin/reading"
)

// The buffer's cursors are what outputs read.
var _ publish.Source = (*buffer.Cursor)(nil)

// bufferStore is the durable buffer under data_dir/buffer: every output
// reads it through its own persisted cursor.
type bufferStore struct {
	log *buffer.Log
}

// openStore opens the buffer; locked, when not nil, is called once its
// directory is locked (buffer.OpenOptions.Locked).
func openStore(cfg *Config, outputs []string, locked func(), now func() time.Time, log *slog.Logger) (*bufferStore, error) {
	dir := filepath.Join(cfg.Agent.DataDir, "buffer")
	ids := make([]string, len(cfg.Sensors))
	for i := range cfg.Sensors {
		ids[i] = cfg.Sensors[i].ID
	}
	l, err := buffer.OpenWith(dir, cfg.Buffer, now, log, buffer.OpenOptions{Sensors: ids, Locked: locked})
	if err != nil {
		return nil, fmt.Errorf("agent: open the buffer in %s: %w", dir, err)
	}
	// The cursors of outputs no longer configured are dropped; with no
	// output, nothing is kept for a reader.
	if err := l.SetReaders(outputs...); err != nil {
		l.Close()
		return nil, fmt.Errorf("agent: open the buffer in %s: %w", dir, err)
	}
	return &bufferStore{log: l}, nil
}

func (b *bufferStore) Append(rs []reading.Reading) error { return b.log.Append(rs) }

// AppendForwarded is buffer.Log.AppendForwarded: readings of other agents,
// stored with their own (agent, sensor, seq).
func (b *bufferStore) AppendForwarded(rs []reading.Reading) error { return b.log.AppendForwarded(rs) }

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

// Skipped is buffer.Log.Skipped: per sensor that resumed after a gap, the
// seqs of the gap.
func (b *bufferStore) Skipped() map[string][2]uint64 { return b.log.Skipped() }
func (b *bufferStore) Flush() error                  { return b.log.Sync() }
func (b *bufferStore) Close() error                  { return b.log.Close() }
