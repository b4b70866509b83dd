package archive

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"os"
	"sort"
	"time"
)

const (
	blockMagic  = "KHA1"
	headerSize  = 12
	minRecord   = 26       // bytes of a record at least: two varints and three floats
	maxPayload  = 64 << 20 // a block larger than this is garbage, not a block
	fileExt     = ".hist"
	dayLayout   = "2006-01-02"
	legacySize  = 40 // a record of the per-series files of older versions
	tornWarning = "history: cut a torn block off"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// seriesKey names one series.
type seriesKey struct{ sensor, quantity string }

// minute is a bucket's start as unix minutes.
type minute uint32

func minuteOf(t time.Time) minute { return minute(t.Unix() / 60) }

func (m minute) time() time.Time { return time.Unix(int64(m)*60, 0).UTC() }

// batch is what one block holds: buckets by series and minute.
type batch map[seriesKey]map[minute]*Bucket

func (b batch) add(k seriesKey, m minute, o Bucket) {
	ms := b[k]
	if ms == nil {
		ms = map[minute]*Bucket{}
		b[k] = ms
	}
	if cur := ms[m]; cur != nil {
		cur.merge(o)
		return
	}
	// A copy made here, not &o: taking o's address would move every call's
	// o to the heap, one allocation per reading instead of one per minute.
	nb := new(Bucket)
	*nb = o
	nb.Start = m.time()
	ms[m] = nb
}

// appendBlock appends b as one block to dst.
func appendBlock(dst []byte, b batch) []byte {
	start := len(dst)
	dst = append(dst, blockMagic...)
	dst = append(dst, make([]byte, 8)...)
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	var ms []minute
	for k, bs := range b {
		dst = binary.AppendUvarint(dst, uint64(len(k.sensor)))
		dst = append(dst, k.sensor...)
		dst = binary.AppendUvarint(dst, uint64(len(k.quantity)))
		dst = append(dst, k.quantity...)
		dst = binary.AppendUvarint(dst, uint64(len(bs)))
		ms = ms[:0]
		for m := range bs {
			ms = append(ms, m)
		}
		sort.Slice(ms, func(i, j int) bool { return ms[i] < ms[j] })
		prev := minute(0)
		for _, m := range ms {
			bk := bs[m]
			dst = binary.AppendUvarint(dst, uint64(m-prev))
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(bk.Min))
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(bk.Mean))
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(bk.Max))
			dst = binary.AppendUvarint(dst, uint64(bk.N))
			prev = m
		}
	}
	payload := dst[start+headerSize:]
	binary.LittleEndian.PutUint32(dst[start+4:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+8:], crc32.Checksum(payload, castagnoli))
	return dst
}

var errBadPayload = errors.New("bad block payload")

// decodePayload calls fn for every finite, non-empty record of a block's
// payload (whose CRC was checked).
func decodePayload(p []byte, fn func(k seriesKey, m minute, b Bucket)) error {
	str := func() (string, bool) {
		n, w := binary.Uvarint(p)
		if w <= 0 || n > uint64(len(p)-w) {
			return "", false
		}
		s := string(p[w : w+int(n)])
		p = p[w+int(n):]
		return s, true
	}
	series, w := binary.Uvarint(p)
	if w <= 0 {
		return errBadPayload
	}
	p = p[w:]
	for range series {
		sensor, ok1 := str()
		quantity, ok2 := str()
		if !ok1 || !ok2 {
			return errBadPayload
		}
		n, w := binary.Uvarint(p)
		if w <= 0 || n > uint64(len(p)-w)/minRecord {
			return errBadPayload
		}
		p = p[w:]
		k := seriesKey{sensor, quantity}
		var m minute
		for range n {
			d, w := binary.Uvarint(p)
			if w <= 0 || d > math.MaxUint32-uint64(m) || len(p) < w+24 {
				return errBadPayload
			}
			m += minute(d)
			p = p[w:]
			b := Bucket{
				Start: m.time(),
				Min:   math.Float64frombits(binary.LittleEndian.Uint64(p[0:])),
				Mean:  math.Float64frombits(binary.LittleEndian.Uint64(p[8:])),
				Max:   math.Float64frombits(binary.LittleEndian.Uint64(p[16:])),
			}
			p = p[24:]
			cnt, w := binary.Uvarint(p)
			if w <= 0 || cnt > math.MaxUint32 {
				return errBadPayload
			}
			p = p[w:]
			b.N = uint32(cnt)
			if b.N > 0 && b.finite() {
				fn(k, m, b)
			}
		}
	}
	return nil
}

// scanFile reads the blocks of a day file up to size bytes (the whole file
// when size < 0) and calls fn for every record. It returns the offset
// where the last good block ends and how many blocks were skipped because
// their CRC failed.
func scanFile(path string, size int64, fn func(k seriesKey, m minute, b Bucket)) (end int64, skipped int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var r io.Reader = f
	if size >= 0 {
		r = io.LimitReader(f, size)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return 0, 0, err
	}
	off := 0
	for off+headerSize <= len(data) {
		h := data[off : off+headerSize]
		n := int(binary.LittleEndian.Uint32(h[4:]))
		if string(h[:4]) != blockMagic || n > maxPayload || off+headerSize+n > len(data) {
			break // torn, or not a block: nothing after it can be trusted
		}
		p := data[off+headerSize : off+headerSize+n]
		if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(h[8:]) || decodePayload(p, fn) != nil {
			skipped++
		}
		off += headerSize + n
	}
	return int64(off), skipped, nil
}

// readLegacy reads a per-series file of an older version: 40-byte records
// of minute start (unix seconds, uint64), min, mean, max (float64), count
// (uint32) and CRC-32C. Records whose CRC fails, that are empty or that are
// not finite (an older version could write -Inf) are skipped.
func readLegacy(path string, fn func(m minute, b Bucket)) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for off := 0; off+legacySize <= len(data); off += legacySize {
		r := data[off : off+legacySize]
		if crc32.Checksum(r[:36], castagnoli) != binary.LittleEndian.Uint32(r[36:]) {
			continue
		}
		b := Bucket{
			Min:  math.Float64frombits(binary.LittleEndian.Uint64(r[8:])),
			Mean: math.Float64frombits(binary.LittleEndian.Uint64(r[16:])),
			Max:  math.Float64frombits(binary.LittleEndian.Uint64(r[24:])),
			N:    binary.LittleEndian.Uint32(r[32:]),
		}
		sec := int64(binary.LittleEndian.Uint64(r[0:]))
		if b.N == 0 || !b.finite() || sec < 0 || sec/60 > math.MaxUint32 {
			continue
		}
		fn(minute(sec/60), b)
	}
	return nil
}
