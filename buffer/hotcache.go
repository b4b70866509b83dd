package buffer

import "os"

// hotCacheBytes bounds the newest bytes of the hot segment the Log keeps in
// memory (hotCache): 64 KiB, the size of a cursor's read window, about 860
// readings of 76 bytes, close to two minutes of 8 sensors at 1 Hz.
const hotCacheBytes = 64 << 10

// hotCache is a copy of the newest bytes Append wrote to the active hot
// segment, so that a cursor at or near the head (an output keeping up)
// reads what was just appended from memory: no pread, no system call at
// all. It holds at most hotCacheBytes, contiguous and ending at the
// segment's end; a cursor further behind, a segment on disk and a log
// reopened after a restart are read from their files as before. Its bytes
// are those of the hot file, so a cursor decodes the same records either
// way. Guarded by Log.mu.
type hotCache struct {
	base int64  // global offset of the segment the bytes belong to
	off  int64  // file offset of b[0] in that segment
	b    []byte // allocated once, hotCacheBytes, at the first hot write
}

// add notes that p was written at file offset off of the hot segment at
// base; bytes that do not follow what it holds start it over. When full it
// drops the older half at once, so that it moves memory once per 32 KiB
// appended, not at every Append.
func (h *hotCache) add(base, off int64, p []byte) {
	if h.b == nil {
		h.b = make([]byte, 0, hotCacheBytes)
	}
	if base != h.base || off != h.off+int64(len(h.b)) {
		h.base, h.off, h.b = base, off, h.b[:0]
	}
	if len(p) > hotCacheBytes {
		skip := len(p) - hotCacheBytes
		h.off, h.b, p = off+int64(skip), h.b[:0], p[skip:]
	}
	if over := len(h.b) + len(p) - hotCacheBytes; over > 0 {
		drop := min(max(over, hotCacheBytes/2), len(h.b))
		h.b = h.b[:copy(h.b, h.b[drop:])]
		h.off += int64(drop)
	}
	h.b = append(h.b, p...)
}

// read copies into p the bytes at file offset off of the segment at base
// and reports whether it holds all of them.
func (h *hotCache) read(base int64, p []byte, off int64) bool {
	if base != h.base || h.b == nil || off < h.off || off+int64(len(p)) > h.off+int64(len(h.b)) {
		return false
	}
	copy(p, h.b[off-h.off:])
	return true
}

// readCached serves a cursor's read of the segment at base from the hot
// cache while that segment is still in the hot directory (a sealed one
// whose copy went to disk is read from disk, holes and all).
func (l *Log) readCached(base int64, p []byte, off int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.segmentAt(base)
	return s != nil && s.hot && !s.deleted && l.cache.read(base, p, off)
}

// segSource is what a cursor's reader reads one segment from: the hot
// cache when it holds the bytes asked for, else the segment's file.
type segSource struct {
	l    *Log
	base int64
	f    *os.File
}

func (s *segSource) ReadAt(p []byte, off int64) (int, error) {
	if s.l.readCached(s.base, p, off) {
		return len(p), nil
	}
	return s.l.o.readAt(s.f, p, off)
}
