package buffer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"
)

// The hot tail (Config.HotDir): with outputs keeping up, readings never
// touch the disk.
//
// The segments being written live in a directory on a tmpfs (/run/kelvin,
// which systemd keeps across restarts of the service with
// RuntimeDirectoryPreserve=yes). Append writes each batch there at once:
// page-cache memory that outlives the process, so a kill -9 loses nothing,
// and outputs read it at once. The group commit then copies to the segment
// file of the same name on disk only the bytes that some output has not
// acknowledged and that have waited a whole sync interval, at their own
// offsets (the bytes before them stay a hole in a sparse file), and fsyncs
// that file. A reading every output acknowledged within one sync interval
// of its Append is never written to disk. A segment that is sealed and
// wholly copied leaves the tmpfs; from then on the disk serves it, in
// order, until every output has read it.
//
// At Open, segments left in the hot directory by a killed process are
// copied to disk (and fsynced) before recovery scans the disk as usual,
// leaving out the readings every output had recorded as acknowledged and
// the pages the disk holds already, as the group commit left them during
// an outage (promoteHot); Close copies what is unacknowledged and empties the hot directory.
// A power cut loses the tmpfs: what is lost is what was neither
// acknowledged by every output nor due for the disk, the readings of the
// last sync interval.
//
// The tmpfs is shared (/run), so the hot tail is bounded (hotBound): a new
// segment that would take it past hot_max_bytes, or a write the tmpfs
// refuses with ENOSPC, goes to disk instead (hotOverflow), written and
// fsynced as without a hot directory, and the next segment that fits is hot
// again. coldFrontier counts such a segment as on disk once fsynced.

// HotDirAuto and HotDirOff are the special values of Config.HotDir.
const (
	HotDirAuto = "auto"
	HotDirOff  = "off"
)

// hotCandidates are the directories HotDirAuto tries, in order: systemd's
// RuntimeDirectory= (its path is in $RUNTIME_DIRECTORY), then /run/kelvin.
func hotCandidates() []string {
	var c []string
	if d := os.Getenv("RUNTIME_DIRECTORY"); d != "" {
		// Several directories are separated by colons; the first is ours.
		c = append(c, filepath.SplitList(d)[0])
	}
	return append(c, "/run/kelvin")
}

// resolveHot returns the hot directory for the log in dir ("" for none): a
// subdirectory of the configured or found directory named after dir, so
// that two buffers never share one and a stale one is never taken for ours.
func resolveHot(dir, setting string, candidates []string) (string, error) {
	var root string
	switch setting {
	case HotDirOff, "":
		return "", nil
	case HotDirAuto:
		for _, c := range candidates {
			if st, err := os.Stat(c); err == nil && st.IsDir() && writable(c) {
				root = c
				break
			}
		}
		if root == "" {
			return "", nil
		}
	default:
		root = setting
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(abs))
	hot := filepath.Join(root, "buffer-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(hot, 0o750); err != nil {
		return "", fmt.Errorf("hot_dir: %w", err)
	}
	return hot, nil
}

// hotPath is the path of the hot copy of the segment at base.
func (l *Log) hotPath(base int64) string {
	return filepath.Join(l.hot, fmt.Sprintf("%020d%s", base, segExt))
}

// pathOf is where segment s is read from.
func (l *Log) pathOf(s *segment) string {
	if s.hot {
		return l.hotPath(s.base)
	}
	return l.segPath(s.base)
}

// promoteHot copies the segments a killed process left in the hot
// directory to the disk, fsynced, and removes them from the hot directory;
// recovery then reads the disk alone. Of each it copies the header and
// checkpoint and every byte from hotFloor on: what an output may still
// read, and each sensor's newest reading. The bytes before that, readings
// every output had acknowledged, stay a hole, as the group commit leaves
// them (readers skip holes). Of those it copies, it writes only the pages
// the disk does not already hold: after a kill during an outage the group
// commit had put all but the last sync interval's readings there.
func (l *Log) promoteHot() error {
	bases, err := segmentBases(l.hot)
	if err != nil {
		return err
	}
	floor, ckptEnds := l.hotFloor(bases)
	for _, base := range bases {
		name := filepath.Base(l.hotPath(base))
		b, err := os.ReadFile(l.hotPath(base))
		if err != nil {
			return err
		}
		f, err := os.OpenFile(l.segPath(base), os.O_CREATE|os.O_RDWR, 0o640)
		if err != nil {
			return err
		}
		kept := keptRanges(int64(len(b)), ckptEnds[base], floor-base)
		var written, copied int64
		for _, r := range kept {
			if err == nil {
				var n int64
				n, err = writeChanged(f, b, r[0], r[1])
				written += n
				copied += r[1] - r[0]
			}
		}
		if err == nil {
			var fi os.FileInfo
			if fi, err = f.Stat(); err == nil && fi.Size() != int64(len(b)) {
				err = f.Truncate(int64(len(b)))
			}
		}
		if err == nil {
			l.fsynced(1)
			err = f.Sync()
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("copy %s from %s: %w", name, l.hot, err)
		}
		l.wrote(written)
		l.log.Info("buffer: copied the hot tail a stopped process left to disk", "segment", name, "bytes", written,
			"bytes_already_on_disk", copied-written, "acknowledged_bytes_left_out", int64(len(b))-copied)
	}
	if len(bases) > 0 {
		if err := l.syncDir(); err != nil {
			return err
		}
	}
	for _, base := range bases {
		os.Remove(l.hotPath(base))
	}
	return nil
}

// diskPage is the unit writeChanged compares in: the block size of ext4
// and f2fs as a Pi formats them, and the kernel's page.
const diskPage = 4 << 10

// writeChanged writes b[from:to] to f at the same offsets, leaving out the
// pages (aligned to the file) whose bytes in that range f already holds,
// and returns the bytes it wrote. A page it cannot read is written.
func writeChanged(f *os.File, b []byte, from, to int64) (int64, error) {
	old := make([]byte, diskPage)
	var written int64
	run := int64(-1) // start of the pending run of pages to write
	flush := func(end int64) error {
		if run < 0 {
			return nil
		}
		_, err := f.WriteAt(b[run:end], run)
		written += end - run
		run = -1
		return err
	}
	for off := from; off < to; {
		end := min((off/diskPage+1)*diskPage, to)
		n, _ := f.ReadAt(old[:end-off], off)
		if int64(n) == end-off && bytes.Equal(old[:n], b[off:end]) {
			if err := flush(off); err != nil {
				return written, err
			}
		} else if run < 0 {
			run = off
		}
		off = end
	}
	return written, flush(to)
}

// keptRanges are the byte ranges [from, to) of a hot segment of size bytes
// that promoteHot copies: all of it without a checkpoint (ckptEnd 0) or a
// floor inside it; else the header and checkpoint, [0, ckptEnd), and
// [floor, size), floor being relative to the segment.
func keptRanges(size, ckptEnd, floor int64) [][2]int64 {
	if ckptEnd <= 0 || floor <= ckptEnd {
		return [][2]int64{{0, size}}
	}
	if floor >= size {
		return [][2]int64{{0, min(ckptEnd, size)}}
	}
	return [][2]int64{{0, ckptEnd}, {floor, size}}
}

// hotFloor scans the hot segments a killed process left (bases, oldest
// first) for the cursors: it returns the least of their positions (global
// offsets) and each segment's checkpoint end (0 when it has none). The
// positions are the newest each cursor recorded in these files, or in the
// newest checkpoint: never past what the cursor acknowledged. The floor is
// also at most where each sensor's newest reading in them starts, so that
// recovery finds every sensor's last seq and a restart announces exactly
// the seqs it skips (Skipped), acknowledged or not. Without a
// checkpoint in the newest segment, or without any cursor, the floor is 0:
// everything is copied.
func (l *Log) hotFloor(bases []int64) (floor int64, ckptEnds map[int64]int64) {
	ckptEnds = map[int64]int64{}
	scan := &cursorScan{pos: map[string]int64{}, live: map[string]bool{}}
	newest := map[string]int64{} // where each sensor's newest reading starts
	var rd segReader
	for _, base := range bases {
		f, err := os.Open(l.hotPath(base))
		if err != nil {
			return 0, ckptEnds
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return 0, ckptEnds
		}
		rd.reset(f, magicLen, st.Size())
		for {
			rec, _, ok, err := rd.next()
			if err != nil || !ok {
				break
			}
			switch rec.kind {
			case kindCheckpoint:
				c, err := decodeCheckpoint(rec.payload)
				if err != nil {
					continue
				}
				scan.checkpoint(c.cursors)
				if ckptEnds[base] == 0 {
					ckptEnds[base] = rec.end
				}
			case kindCursor:
				if n, p, err := decodeCursor(rec.payload); err == nil {
					scan.note(n, p)
				}
			case kindReading:
				if k, err := decodeReadingKey(rec.payload); err == nil && !k.forwarded {
					newest[string(k.sensor)] = base + rec.start
				}
			}
		}
		f.Close()
	}
	if len(bases) == 0 || ckptEnds[bases[len(bases)-1]] == 0 {
		return 0, ckptEnds
	}
	pos := scan.cursors()
	if len(pos) == 0 {
		return 0, ckptEnds
	}
	floor = math.MaxInt64
	for _, p := range pos {
		floor = min(floor, p)
	}
	for _, p := range newest {
		floor = min(floor, p)
	}
	return floor, ckptEnds
}

// hotTail is what the group commit needs to know of the hot tail; guarded
// by Log.mu.
type hotTail struct {
	marks      []mark // Appends not yet acknowledged by every cursor
	coldBehind bool   // the disk holds readings not every cursor has acknowledged
	overflow   bool   // the active segment went to disk: the hot tail is at its bound or the tmpfs full
	coldNext   bool   // the tmpfs refused a write: the next segment goes to disk
}

// hotAutoFallback is the hot tail's bound with hot_max_bytes auto when the
// tmpfs's size is unknown.
const hotAutoFallback = 16 << 20

// hotBound is the most bytes the hot tail keeps in the tmpfs at hot: the
// configured hot_max_bytes, or (auto) a quarter of the tmpfs's size, at most
// max_bytes; at least two segments either way, the active one and the one
// sealed before it.
func hotBound(cfg Config, hot string, segBytes int64) int64 {
	if cfg.HotMaxBytes > 0 {
		return max(int64(cfg.HotMaxBytes), 2*segBytes)
	}
	n := int64(hotAutoFallback)
	if size, err := fsSize(hot); err == nil && size > 0 {
		n = size / 4
	}
	return max(min(n, int64(cfg.MaxBytes)), 2*segBytes)
}

// hotBytes is the bytes of segments in the hot directory.
func (l *Log) hotBytes() int64 {
	var n int64
	for _, s := range l.segs {
		if s.hot && !s.deleted {
			n += s.size
		}
	}
	return n
}

// hotFits reports whether a new segment, grown to its full size, keeps the
// hot tail within its bound.
func (l *Log) hotFits() bool { return l.hotBytes()+l.segBytes <= l.hotMax }

// hotOverflow notes, under mu, that the next segment goes to disk because
// the hot tail cannot take it (why); logged once until it has room again.
// That segment is then written and fsynced as without a hot directory:
// nothing is refused for it, and its readings are durable at the next
// commit. With the disk full too, full: decides, as without a hot tail.
func (l *Log) hotOverflow(why error) {
	if !l.tail.overflow {
		l.tail.overflow = true
		l.log.Warn("buffer: the hot tail is full; new readings are written to disk until it has room",
			"hot_dir", l.hot, "hot_bytes", l.hotBytes(), "hot_max_bytes", l.hotMax, "err", why)
	}
}

// hotRoom notes, under mu, that a segment was created in the hot directory
// again (err nil).
func (l *Log) hotRoom(err error) {
	if err == nil && l.tail.overflow {
		l.tail.overflow = false
		l.log.Info("buffer: the hot tail has room again", "hot_dir", l.hot, "hot_bytes", l.hotBytes())
	}
}

// mark is one Append in the hot tail: where it ended, when, how many
// readings.
type mark struct {
	end int64
	at  time.Time
	n   int64
}

// spillJob copies the bytes [from, to) of a hot segment to its disk file.
type spillJob struct {
	seg      *segment
	from, to int64
	created  bool
}

// minAcked is the global offset before which every cursor has acknowledged
// everything. Without a cursor it is the oldest segment's base (kept for a
// cursor taken later), or, once SetReaders said that none will read the
// log, its end: nothing is owed to anyone.
func (l *Log) minAcked() int64 {
	if len(l.cursors) == 0 {
		if l.declared {
			return l.end()
		}
		return l.segs[0].base
	}
	m := int64(-1)
	for _, c := range l.cursors {
		if m < 0 || c.acked.pos < m {
			m = c.acked.pos
		}
	}
	return m
}

// planSpill decides, under mu, what the group commit copies to disk: the
// bytes of hot segments after every cursor's acknowledged position, when an
// unacknowledged reading has waited a sync interval (or force: Sync, Close,
// sync: always), and once more after a backlog drained, so that the final
// cursor positions are on disk. It writes the copies (page cache); the
// caller fsyncs them outside mu.
func (l *Log) planSpill(force bool) ([]spillJob, error) {
	now := time.Now() // monotonic: how long a reading waited, not its age
	floor, frontier := l.minAcked(), l.coldFrontier()
	l.trimMarks(max(floor, frontier))
	due := force || len(l.tail.marks) > 0 && !now.Before(l.tail.marks[0].at.Add(l.syncEvery))
	drained := !due && l.tail.coldBehind && floor >= frontier
	if drained {
		due = true // the disk's backlog drained: put the cursor positions on disk once
	}
	if !due {
		return nil, nil
	}
	var jobs []spillJob
	var firstErr error
	for _, s := range l.segs {
		if !s.hot || s.deleted {
			continue
		}
		from := max(floor-s.base, s.spilled)
		if from >= s.size {
			continue
		}
		j := spillJob{seg: s, from: from, to: s.size}
		if err := l.copyOut(&j); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			break // in order: never a later segment without an earlier one
		}
		jobs = append(jobs, j)
	}
	l.tail.coldBehind = !drained && floor < l.end()
	return jobs, firstErr
}

// copyOut writes the bytes of job from the hot file to the disk file,
// creating the disk file with the segment's header if needed.
func (l *Log) copyOut(j *spillJob) error {
	s := j.seg
	if s.cold == nil {
		f, err := os.OpenFile(l.segPath(s.base), os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o640)
		if err != nil {
			return err
		}
		s.cold = f
		j.created = true
		if j.from > 0 {
			// The magic and the checkpoint, so recovery can read it.
			if err := l.copyRange(s, 0, min(s.ckptEnd, j.from)); err != nil {
				return err
			}
		}
	}
	return l.copyRange(s, j.from, j.to)
}

// copyRange copies bytes [from, to) of s's hot file to its disk file.
func (l *Log) copyRange(s *segment, from, to int64) error {
	if from >= to {
		return nil
	}
	buf := make([]byte, min(to-from, 1<<20))
	for off := from; off < to; {
		n := min(int64(len(buf)), to-off)
		if _, err := s.w.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read %s: %w", filepath.Base(s.w.Name()), err)
		}
		w, err := l.writeAt(s, s.cold, buf[:n], off)
		l.wrote(int64(w))
		if err != nil {
			return fmt.Errorf("write %s: %w", filepath.Base(s.cold.Name()), err)
		}
		off += n
	}
	return nil
}

// spillDone records, under mu, the jobs whose fsync succeeded; a sealed
// segment wholly on disk leaves the hot directory.
func (l *Log) spillDone(jobs []spillJob, errs []error) {
	for i, j := range jobs {
		s := j.seg
		if errs[i] != nil || s.deleted {
			continue
		}
		s.spilled = max(s.spilled, j.to)
		if s != l.active() && s.spilled >= s.size {
			l.dropHot(s)
		}
	}
	l.trimMarks(l.coldFrontier())
}

// trimMarks forgets the marks of Appends that ended at or before off: they
// are acknowledged or on disk. So marks bound the memory of the hot tail,
// not of a backlog.
func (l *Log) trimMarks(off int64) {
	i := 0
	for i < len(l.tail.marks) && l.tail.marks[i].end <= off {
		i++
	}
	if i > 0 {
		l.tail.marks = append(l.tail.marks[:0], l.tail.marks[i:]...)
	}
}

// dropHot removes s's hot file; s is read from disk from now on (a reader
// holding the hot file open keeps reading it).
func (l *Log) dropHot(s *segment) {
	if s.w != nil {
		s.w.Close()
		s.w = nil
	}
	os.Remove(l.hotPath(s.base))
	s.hot = false
}

// coldFrontier is the global offset up to which every unacknowledged byte
// is on disk: fsynced, for a segment written there directly.
func (l *Log) coldFrontier() int64 {
	f := int64(0)
	for _, s := range l.segs {
		if !s.hot {
			if s.synced < s.size {
				return s.base + s.synced
			}
			f = s.end()
			continue
		}
		return max(f, s.base+s.spilled)
	}
	return f
}

// hotReadings is the number of readings in the hot tail not yet on disk.
func (l *Log) hotReadings() int64 {
	if l.hot == "" {
		return 0
	}
	f := l.coldFrontier()
	var n int64
	for _, m := range l.tail.marks {
		if m.end > f {
			n += m.n
		}
	}
	return n
}

// armLocked sets the commit timer for when the oldest unacknowledged
// reading in the hot tail will have waited a whole interval, or stops it
// when every reading is acknowledged or on disk; mu is held.
func (l *Log) armLocked() {
	f := max(l.minAcked(), l.coldFrontier())
	for _, m := range l.tail.marks {
		if m.end > f {
			l.loop.timer.Reset(max(time.Until(m.at.Add(l.syncEvery)), time.Millisecond))
			l.loop.armed = true
			return
		}
	}
	l.loop.timer.Stop()
	l.loop.armed = false
}

// ackedLocked follows an Ack: once every reading in the hot tail is
// acknowledged the commit timer stops, and run is woken now, in the burst
// the acknowledgement came in, when cursor positions are due to be written
// or a drained backlog is to be recorded on disk; mu is held.
func (l *Log) ackedLocked() {
	if l.hot == "" || l.loop.timer == nil {
		return
	}
	f := max(l.minAcked(), l.coldFrontier())
	if n := len(l.tail.marks); n > 0 && l.tail.marks[n-1].end > f {
		return // the timer commits the rest when due
	}
	if l.loop.armed {
		l.loop.timer.Stop()
		l.loop.armed = false
	}
	if l.tail.coldBehind || !l.now().Before(l.commits.lastPersist.Add(l.o.cursorEvery)) {
		select {
		case l.loop.acked <- struct{}{}:
		default:
		}
	}
}
