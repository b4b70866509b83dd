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
	bases, err := segmentBases(l.dir)
	if err != nil {
		return fmt.Errorf("buffer: %w", err)
	}
	cursorPos := map[string]int64{}
	openNS := l.now().UnixNano()
	needRoll := false
	for i, base := range bases {
		last := i == len(bases)-1
		seg, unreadable, err := l.scanSegment(base, last, openNS, cursorPos)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, seg)
		if last && unreadable {
			needRoll = true // never append after bytes we cannot read
		}
	}
	if len(l.segs) == 0 {
		if err := l.createSegment(0); err != nil {
			return fmt.Errorf("buffer: %w", err)
		}
	} else {
		// Cursors first: the checkpoints written below must carry them.
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
		a := l.active()
		switch {
		case a.size < magicLen:
			// A segment created just before a power cut: start it again.
			if err := a.w.Truncate(0); err != nil {
				return fmt.Errorf("buffer: %w", err)
			}
			a.size, a.synced = 0, 0
			if err := l.writeHeader(a); err != nil {
				return fmt.Errorf("buffer: %w", err)
			}
		case needRoll:
			if err := l.createSegment(a.end()); err != nil {
				return fmt.Errorf("buffer: %w", err)
			}
		case a.ckptEnd == 0:
			// The active segment lost its checkpoint: write one, so older
			// segments can be deleted without losing the seq table.
			l.wbuf = appendCheckpoint(l.wbuf, l.seqs, l.cursorPositions())
			a.ckptEnd = a.size + int64(len(l.wbuf))
			if err := l.flushLocked(); err != nil {
				return fmt.Errorf("buffer: %w", err)
			}
		}
	}
	l.total = 0
	for _, s := range l.segs {
		l.total += s.size
	}
	if err := l.syncFiles(); err != nil {
		return fmt.Errorf("buffer: %w", err)
	}
	l.durable = l.end()
	return nil
}

// scanSegment opens and scans one segment file at open.
func (l *Log) scanSegment(base int64, last bool, openNS int64, cursorPos map[string]int64) (*segment, bool, error) {
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
	var magic [magicLen]byte
	n, _ := f.ReadAt(magic[:], 0)
	validEnd := int64(0)
	unreadable := false
	switch {
	case int64(n) < magicLen:
		// Torn before the magic was written: nothing valid.
	case string(magic[:]) == segMagic:
		validEnd = magicLen
	case string(magic[:magicLen-1]) == segMagic[:magicLen-1]:
		f.Close()
		return nil, false, fmt.Errorf("buffer: %s: unsupported format version %q", name, magic[magicLen-1])
	default:
		l.st.CorruptSkipped++
		l.log.Warn("buffer: corrupt segment header, scanning for records", "segment", name)
		validEnd = magicLen
	}
	if validEnd > 0 {
		var rd segReader
		rd.reset(f, validEnd, seg.size)
		for {
			rec, skipped, ok, err := rd.next()
			if err != nil {
				l.st.CorruptSkipped++
				l.log.Error("buffer: unreadable segment, skipping its rest", "segment", name, "offset", validEnd, "err", err)
				unreadable = true
				break
			}
			if !ok {
				if skipped > 0 {
					validEnd = rd.pos - skipped
				}
				break
			}
			if skipped > 0 {
				l.st.CorruptSkipped++
				l.corruptSeen[base+rec.start-skipped] = true
				l.log.Warn("buffer: skipped corrupt bytes", "segment", name, "offset", rec.start-skipped, "bytes", skipped)
			}
			validEnd = rec.end
			l.applyRecord(seg, rec, openNS, cursorPos, name)
		}
	}
	if unreadable {
		validEnd = seg.size
	}
	if tail := seg.size - validEnd; tail > 0 {
		if last {
			if err := f.Truncate(validEnd); err != nil {
				f.Close()
				return nil, false, fmt.Errorf("buffer: truncate %s: %w", name, err)
			}
			l.st.TornTruncated++
			l.log.Warn("buffer: truncated torn tail", "segment", name, "offset", validEnd, "bytes", tail)
			seg.size = validEnd
		} else {
			l.st.CorruptSkipped++
			l.corruptSeen[base+validEnd] = true
			l.log.Warn("buffer: skipped corrupt tail of a closed segment", "segment", name, "offset", validEnd, "bytes", tail)
		}
	}
	if !last {
		// Flush what a killed process left in the page cache, then close.
		l.st.Fsyncs++
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

// applyRecord accounts one valid record found at open.
func (l *Log) applyRecord(seg *segment, rec record, openNS int64, cursorPos map[string]int64, name string) {
	switch rec.kind {
	case kindReading:
		k, err := decodeReadingKey(rec.payload)
		if err != nil {
			l.st.CorruptSkipped++
			l.log.Warn("buffer: skipped undecodable record", "segment", name, "offset", rec.start)
			return
		}
		if k.seq > l.seqs[string(k.sensor)] {
			l.seqs[string(k.sensor)] = k.seq
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
			if v > l.seqs[s] {
				l.seqs[s] = v
			}
		}
		for n, p := range c.cursors {
			notePos(cursorPos, n, p)
		}
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
		notePos(cursorPos, n, p)
	}
}

// notePos records a cursor position found at open: the greatest wins,
// since a cursor never moves back.
func notePos(m map[string]int64, name string, pos int64) {
	if old, ok := m[name]; !ok || pos > old {
		m[name] = pos
	}
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
