package fleet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// The exactly-once state survives a restart of the fleet in one file,
// StateDir/stateFile, so that the fleet does not count from the next seq
// after a restart (a gap across it unseen, the lost counts reset).
//
// It is written at most once every saveEvery, only when something changed,
// and when the fleet stops: to stateFile+".tmp", fsynced, renamed over
// stateFile, and the directory fsynced (two fsyncs a minute at most, for
// an SD card). A Kafka source commits its offsets only after a save
// succeeded, and only those of records handed to the fleet before the
// save's snapshot (checkpointer), so after a crash the file and the
// committed offsets agree: what Kafka delivers again is either not in the
// file (counted as received, once) or in it (counted as a duplicate),
// never a false gap. The MQTT source has no such handle: after a crash
// (not a clean stop), the readings taken since the last save look like a
// gap to the restarted fleet, and are counted as lost after loss_after.
//
// The file holds, per gateway, its page and last-seen time, and per
// sensor its highest seq, its counts, its announced skip and its open gaps
// with their age (the time the fleet was down does not count towards
// loss_after). Format, all integers unsigned varints unless said:
//
//	magic "KFLEET1\n"
//	saved (unix ms) · gateways
//	per gateway: agent · page · last seen (unix ms, 0: never) · sensors
//	per sensor: id · high · resume_at · received · duplicates · lost ·
//	            skipped · resets · skip from · skip to · gaps
//	per gap: from · to-from · age (ms before saved)
//	CRC-32 (IEEE) of all that, 4 bytes little-endian
//
// Strings are a length and the bytes. A file that does not read back
// whole (truncated, corrupt, another version) is logged and ignored: the
// fleet starts empty rather than not at all. Loading applies the same
// bounds as the running fleet (max_gateways, max_sensors, 64 gaps).
const (
	stateFile  = "fleet.state"
	stateMagic = "KFLEET1\n"
	saveEvery  = time.Minute
)

// maxStateString bounds a string in the state file (agent, page, sensor).
const maxStateString = 4096

// checkpointer is a source that acknowledges what it took only once the
// state that took it is saved: checkpoint, called before the snapshot,
// returns the commit of what was handed to the fleet so far, run once the
// file is durable (nil: nothing to commit).
type checkpointer interface {
	checkpoint() func(context.Context)
}

// Checkpoint saves the exactly-once state when it changed since the last
// save (without StateDir, it saves nothing) and then lets the sources
// commit what it covers. It returns the save's error; the sources commit
// nothing then, so that they re-deliver what the file lacks.
func (f *Fleet) Checkpoint(ctx context.Context) error {
	f.saveMu.Lock()
	defer f.saveMu.Unlock()
	var commits []func(context.Context)
	for _, s := range f.sources {
		if c, ok := s.(checkpointer); ok {
			if commit := c.checkpoint(); commit != nil {
				commits = append(commits, commit)
			}
		}
	}
	if err := f.save(); err != nil {
		return err
	}
	for _, commit := range commits {
		commit(ctx)
	}
	return nil
}

// checkpointOrWarn is Checkpoint for the fleet's own timer and sources:
// a failed save is logged, and retried at the next checkpoint.
func (f *Fleet) checkpointOrWarn(ctx context.Context) {
	if err := f.Checkpoint(ctx); err != nil {
		f.log.Warn("fleet state not saved: the sources commit nothing until it is", "dir", f.cfg.StateDir, "err", err)
	}
}

// save writes the state file when the state changed since the last save.
func (f *Fleet) save() error {
	if f.cfg.StateDir == "" {
		return nil
	}
	f.mu.Lock()
	if f.version == f.saved {
		f.mu.Unlock()
		return nil
	}
	version := f.version
	b := f.appendStateLocked(make([]byte, 0, 64+len(f.gateways)*64))
	f.mu.Unlock()
	if err := writeFileDurably(f.cfg.StateDir, stateFile, b); err != nil {
		return fmt.Errorf("fleet: save state: %w", err)
	}
	f.mu.Lock()
	f.saved = version
	f.mu.Unlock()
	return nil
}

func (f *Fleet) appendStateLocked(b []byte) []byte {
	saved := f.now()
	ms := func(t time.Time) uint64 {
		if t.IsZero() || t.UnixMilli() <= 0 {
			return 0
		}
		return uint64(t.UnixMilli())
	}
	b = append(b, stateMagic...)
	b = binary.AppendUvarint(b, ms(saved))
	b = binary.AppendUvarint(b, uint64(len(f.gateways)))
	for _, g := range f.gateways {
		b = appendString(b, g.agent)
		b = appendString(b, g.page)
		b = binary.AppendUvarint(b, ms(g.lastSeen))
		b = binary.AppendUvarint(b, uint64(len(g.sensors)))
		for id, s := range g.sensors {
			q := &s.seqs
			skip := g.skips[id]
			b = appendString(b, id)
			for _, v := range [...]uint64{q.high, q.resumeAt, q.received, q.duplicates, q.lost, q.skipped, q.resets, skip[0], skip[1]} {
				b = binary.AppendUvarint(b, v)
			}
			b = binary.AppendUvarint(b, uint64(len(q.gaps)))
			for _, gp := range q.gaps {
				b = binary.AppendUvarint(b, gp.from)
				b = binary.AppendUvarint(b, gp.to-gp.from)
				b = binary.AppendUvarint(b, uint64(max(saved.Sub(gp.since).Milliseconds(), 0)))
			}
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// writeFileDurably replaces dir/name with b: a temporary file, fsynced,
// renamed over it, and the directory fsynced.
func writeFileDurably(dir, name string, b []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	w, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	if err == nil {
		err = w.Sync()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// errState is a state file that does not read back whole.
var errState = errors.New("not a whole fleet state file")

// load reads the state file, if any, into the empty fleet. A file that
// does not read back whole is logged and ignored.
func (f *Fleet) load() {
	if f.cfg.StateDir == "" {
		return
	}
	path := filepath.Join(f.cfg.StateDir, stateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err == nil {
		err = f.decodeState(b)
	}
	if err != nil {
		f.gateways = map[string]*gateway{}
		f.log.Warn("fleet state unreadable: starting with empty counts", "file", path, "err", err)
		return
	}
	f.log.Info("fleet state loaded", "file", path, "gateways", len(f.gateways))
}

// decodeState fills f.gateways from b, within the fleet's bounds.
func (f *Fleet) decodeState(b []byte) error {
	if len(b) < len(stateMagic)+4 || string(b[:len(stateMagic)]) != stateMagic {
		return fmt.Errorf("%w: no %q header", errState, stateMagic[:7])
	}
	body := b[:len(b)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return fmt.Errorf("%w: checksum mismatch (truncated or corrupt)", errState)
	}
	d := stateDecoder{b: body[len(stateMagic):]}
	now := f.now()
	d.uint() // when it was saved: the ages are relative to it
	for range d.count() {
		agent, page, seen := d.string(), d.string(), d.uint()
		g := &gateway{agent: agent, page: page, sensors: map[string]*sensor{}, changed: now}
		if seen > 0 {
			g.lastSeen = time.UnixMilli(int64(seen))
		}
		for range d.count() {
			id := d.string()
			var v [9]uint64
			for i := range v {
				v[i] = d.uint()
			}
			s := &sensor{id: id, series: map[string]*series{}, seqs: seqs{high: v[0], resumeAt: v[1],
				received: v[2], duplicates: v[3], lost: v[4], skipped: v[5], resets: v[6]}}
			n := d.count()
			if n > maxGaps {
				d.err = fmt.Errorf("%w: %d gaps", errState, n)
			}
			for range n {
				from, span, age := d.uint(), d.uint(), d.uint()
				if from == 0 || from+span < from || from+span >= s.seqs.high {
					d.err = fmt.Errorf("%w: a gap beyond the highest seq", errState)
				}
				// The time the fleet was down does not count.
				since := now.Add(-time.Duration(min(age, uint64(time.Duration(1<<62)/time.Millisecond))) * time.Millisecond)
				s.seqs.gaps = append(s.seqs.gaps, gap{from: from, to: from + span, since: since})
			}
			if d.err != nil {
				return d.err
			}
			if len(g.sensors) >= f.cfg.MaxSensors {
				continue
			}
			g.sensors[id] = s
			if v[7] != 0 {
				if g.skips == nil {
					g.skips = map[string][2]uint64{}
				}
				g.skips[id] = [2]uint64{v[7], v[8]}
			}
		}
		if d.err != nil {
			return d.err
		}
		if _, dup := f.gateways[agent]; dup || agent == "" {
			return fmt.Errorf("%w: gateway %q twice or unnamed", errState, agent)
		}
		if len(f.gateways) < f.cfg.MaxGateways {
			f.gateways[agent] = g
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d bytes after the last gateway", errState, len(d.b))
	}
	return d.err
}

// stateDecoder reads the varints and strings of a state file, keeping the
// first error; once it has one it returns zeros.
type stateDecoder struct {
	b   []byte
	err error
}

func (d *stateDecoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: a number cut short", errState)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a number of entries, each at least one byte long, so that
// a corrupt count cannot make the loop run past the file.
func (d *stateDecoder) count() int {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: %d entries in %d bytes", errState, n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *stateDecoder) string() string {
	n := d.uint()
	if d.err == nil && (n > maxStateString || n > uint64(len(d.b))) {
		d.err = fmt.Errorf("%w: a string of %d bytes", errState, n)
	}
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
