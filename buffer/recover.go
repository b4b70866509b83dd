package buffer

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// recover scans every segment, truncates a torn tail, rebuilds the seq
// table and cursor positions, and makes everything on disk durable.
func (l *Log) recover() error {
	cursorPos, needRoll, err := l.scanAll()
	if err != nil {
		return err
	}
	if len(l.segs) == 0 {
		if err := l.createSegment(0); err != nil {
			return fmt.Errorf("buffer: %w", err)
		}
	} else {
		// Cursors first: the checkpoints written below must carry them.
		if err := l.restoreCursors(cursorPos); err != nil {
			return err
		}
		if err := l.repairActive(needRoll); err != nil {
			return fmt.Errorf("buffer: %w", err)
		}
	}
	l.total = 0
	for _, s := range l.segs {
		l.total += s.size
	}
	if err := l.syncFiles(); err != nil {
		return fmt.Errorf("buffer: %w", err)
	}
	l.durable.end = l.end()
	return nil
}

// scanAll scans every segment file, oldest first, into l.segs and the seq
// table. It returns the greatest position recorded per cursor still live
// (see cursorScan), and whether
// the newest segment ends in bytes it could not read (never append after
// them).
func (l *Log) scanAll() (cursorPos map[string]int64, needRoll bool, err error) {
	bases, err := segmentBases(l.dir)
	if err != nil {
		return nil, false, fmt.Errorf("buffer: %w", err)
	}
	scan := &cursorScan{pos: map[string]int64{}, live: map[string]bool{}}
	openNS := l.now().UnixNano()
	for i, base := range bases {
		last := i == len(bases)-1
		seg, unreadable, err := l.scanSegment(base, last, openNS, scan)
		if err != nil {
			return nil, false, err
		}
		l.segs = append(l.segs, seg)
		needRoll = needRoll || last && unreadable
	}
	return scan.cursors(), needRoll, nil
}

// restoreCursors creates the cursors found at open, each at its position
// clamped to the log.
func (l *Log) restoreCursors(cursorPos map[string]int64) error {
	oldest, end := l.segs[0].base, l.end()
	for name, pos := range cursorPos {
		if pos < oldest {
			pos = oldest
		}
		if pos > end {
			l.log.Warn("buffer: cursor beyond the end of the log, moved back to it", "cursor", name, "offset", pos, "end", end)
			pos = end
		}
		c := l.newCursor(name)
		ap, err := l.ackPointAt(pos)
		if err != nil {
			return err
		}
		c.acked, c.persisted = ap, pos
	}
	return nil
}

// repairActive makes the newest segment fit to append to: a header if it
// has none, a new segment after unreadable bytes, a checkpoint if it lost
// its own.
func (l *Log) repairActive(needRoll bool) error {
	a := l.active()
	switch {
	case a.size < magicLen:
		// A segment created just before a power cut: start it again.
		if err := a.w.Truncate(0); err != nil {
			return err
		}
		a.size, a.synced = 0, 0
		return l.writeHeader(a)
	case needRoll:
		return l.createSegment(a.end())
	case a.ckptEnd == 0:
		// The active segment lost its checkpoint: write one, so older
		// segments can be deleted without losing the seq table.
		l.pending.buf = appendCheckpoint(l.pending.buf, l.seq.last, l.cursorPositions())
		a.ckptEnd = a.size + int64(len(l.pending.buf))
		return l.flushLocked()
	}
	return nil
}

// scanSegment opens and scans one segment file at open: its header, its
// records (into the seq table and cursorPos), its tail (a torn one cut off
// when last). A segment other than the last is fsynced and closed. It
// reports whether the file has bytes it could not read.
func (l *Log) scanSegment(base int64, last bool, openNS int64, cursorPos *cursorScan) (*segment, bool, error) {
	path := l.segPath(base)
	name := filepath.Base(path)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, false, fmt.Errorf("buffer: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("buffer: %w", err)
	}
	seg := &segment{base: base, size: st.Size(), w: f}
	validEnd, err := l.checkMagic(f, name)
	if err != nil {
		f.Close()
		return nil, false, err
	}
	unreadable := false
	if validEnd > 0 {
		validEnd, unreadable = l.scanRecords(seg, validEnd, openNS, cursorPos, name)
	}
	if err := l.cutTail(seg, validEnd, last, name); err != nil {
		f.Close()
		return nil, false, err
	}
	if !last {
		// Flush what a killed process left in the page cache, then close.
		l.fsynced(1)
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, false, fmt.Errorf("buffer: sync %s: %w", name, err)
		}
		f.Close()
		seg.w = nil
		seg.synced = seg.size
	}
	return seg, unreadable, nil
}

// checkMagic reads a segment's header and returns where its records start:
// 0 for a file torn before its header was written, and after a corrupt
// header too (counted: its records are scanned for). A format version this
// Kelvin does not know is an error.
func (l *Log) checkMagic(f *os.File, name string) (int64, error) {
	var magic [magicLen]byte
	n, _ := f.ReadAt(magic[:], 0)
	switch {
	case int64(n) < magicLen:
		// Torn before the magic was written: nothing valid.
		return 0, nil
	case string(magic[:]) == segMagic:
		return magicLen, nil
	case string(magic[:magicLen-1]) == segMagic[:magicLen-1]:
		return 0, fmt.Errorf("buffer: %s: unsupported format version %q", name, magic[magicLen-1])
	}
	l.st.CorruptSkipped++
	l.log.Warn("buffer: corrupt segment header, scanning for records", "segment", name)
	return magicLen, nil
}

// scanRecords applies every valid record of seg from file offset from on,
// counting the corrupt bytes it skips. It returns the end of the last
// valid record, or the file's size and unreadable when reading failed.
func (l *Log) scanRecords(seg *segment, from, openNS int64, cursorPos *cursorScan, name string) (validEnd int64, unreadable bool) {
	validEnd = from
	var rd segReader
	rd.reset(seg.w, from, seg.size)
	for {
		rec, skipped, ok, err := rd.next()
		if err != nil {
			l.st.CorruptSkipped++
			l.log.Error("buffer: unreadable segment, skipping its rest", "segment", name, "offset", validEnd, "err", err)
			return seg.size, true
		}
		if !ok {
			if skipped > 0 {
				validEnd = rd.pos - skipped
			}
			return validEnd, false
		}
		if skipped > 0 {
			l.st.CorruptSkipped++
			l.corruptSeen[seg.base+rec.start-skipped] = true
			l.log.Warn("buffer: skipped corrupt bytes", "segment", name, "offset", rec.start-skipped, "bytes", skipped)
		}
		validEnd = rec.end
		l.applyRecord(seg, rec, openNS, cursorPos, name)
	}
}

// cutTail deals with the bytes of seg after validEnd: the last segment's
// are a torn write, cut off; another's are corruption, skipped by readers.
// Both are counted and logged.
func (l *Log) cutTail(seg *segment, validEnd int64, last bool, name string) error {
	tail := seg.size - validEnd
	switch {
	case tail <= 0:
	case last:
		if err := seg.w.Truncate(validEnd); err != nil {
			return fmt.Errorf("buffer: truncate %s: %w", name, err)
		}
		l.st.TornTruncated++
		l.log.Warn("buffer: truncated torn tail", "segment", name, "offset", validEnd, "bytes", tail)
		seg.size = validEnd
	default:
		l.st.CorruptSkipped++
		l.corruptSeen[seg.base+validEnd] = true
		l.log.Warn("buffer: skipped corrupt tail of a closed segment", "segment", name, "offset", validEnd, "bytes", tail)
	}
	return nil
}

// applyRecord accounts one valid record found at open.
func (l *Log) applyRecord(seg *segment, rec record, openNS int64, cursorPos *cursorScan, name string) {
	switch rec.kind {
	case kindReading:
		k, err := decodeReadingKey(rec.payload)
		if err != nil {
			l.st.CorruptSkipped++
			l.log.Warn("buffer: skipped undecodable record", "segment", name, "offset", rec.start)
			return
		}
		if !k.forwarded && k.seq > l.seq.last[string(k.sensor)] {
			// Only this log's own seqs: a forwarded reading's seq is
			// another agent's.
			l.seq.last[string(k.sensor)] = k.seq
		}
		t := k.time
		if t == 0 {
			t = openNS
		}
		seg.noteReading(t)
	case kindCheckpoint:
		c, err := decodeCheckpoint(rec.payload)
		if err != nil {
			l.st.CorruptSkipped++
			return
		}
		for s, v := range c.seqs {
			if v > l.seq.last[s] {
				l.seq.last[s] = v
			}
		}
		cursorPos.checkpoint(c.cursors)
		if seg.ckptEnd == 0 {
			seg.ckptEnd = rec.end
		}
		l.ckptLen = rec.end - rec.start
	case kindCursor:
		n, p, err := decodeCursor(rec.payload)
		if err != nil {
			l.st.CorruptSkipped++
			return
		}
		cursorPos.note(n, p)
	}
}

// cursorScan gathers the cursors recorded in the log at open. A
// checkpoint lists every cursor the log had when it was written, so the
// cursors live at the end are those of the last checkpoint and those with
// a cursor record after it: a cursor dropped (Log.SetReaders) is left out
// of every later checkpoint and so stays dropped, even while older
// segments still mention it.
type cursorScan struct {
	pos  map[string]int64 // the greatest position recorded, by name
	live map[string]bool  // recorded since the last checkpoint, or in it
}

// checkpoint accounts a checkpoint's cursors: exactly these are live.
func (s *cursorScan) checkpoint(cursors map[string]int64) {
	clear(s.live)
	for n, p := range cursors {
		s.note(n, p)
	}
}

// note records a cursor position found at open: the greatest wins, since a
// cursor never moves back.
func (s *cursorScan) note(name string, pos int64) {
	if old, ok := s.pos[name]; !ok || pos > old {
		s.pos[name] = pos
	}
	s.live[name] = true
}

// cursors returns the live cursors' positions.
func (s *cursorScan) cursors() map[string]int64 {
	for n := range s.pos {
		if !s.live[n] {
			delete(s.pos, n)
		}
	}
	return s.pos
}

func (s *segment) noteReading(t int64) {
	if s.readings == 0 {
		s.first = t
	}
	s.readings++
	if t > s.newest {
		s.newest = t
	}
}

// ackPointAt builds the ack point of global offset pos: its segment and the
// number of readings before it there (by scanning that segment).
func (l *Log) ackPointAt(pos int64) (ackPoint, error) {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > pos }) - 1
	if i < 0 {
		i = 0
	}
	s := l.segs[i]
	ap := ackPoint{pos: pos, segBase: s.base}
	if pos <= s.base+magicLen {
		return ap, nil
	}
	f, err := os.Open(l.segPath(s.base))
	if err != nil {
		return ap, fmt.Errorf("buffer: %w", err)
	}
	defer f.Close()
	var rd segReader
	rd.reset(f, magicLen, min(pos-s.base, s.size))
	for {
		rec, _, ok, err := rd.next()
		if err != nil || !ok {
			return ap, nil
		}
		if rec.kind == kindReading {
			ap.nInSeg++
		}
	}
}

// segBase is the base of the segment file called name (twenty digits and
// segExt, as segPath makes it), false for any other name.
func segBase(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, segExt)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	b, err := strconv.ParseInt(digits, 10, 64)
	return b, err == nil
}

// segmentBases lists the segment files of dir by their base, oldest first.
func segmentBases(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var bases []int64
	for _, e := range entries {
		b, ok := segBase(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		bases = append(bases, b)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	return bases, nil
}
