package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"sort"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
)

// File format constants; see the package doc.
const (
	// segMagic opens every segment file; its last byte is the format version.
	segMagic = "KLVNSEG1"
	// magicLen is the length of segMagic.
	magicLen = int64(len(segMagic))
	// headerLen is the record header: payload length and CRC-32C, both
	// little-endian uint32.
	headerLen = 8
	// maxPayload bounds a record payload, so a corrupt length can never make
	// the reader allocate or scan far.
	maxPayload = 1 << 20
	// maxReadingPayload bounds the encoded size of one reading.
	maxReadingPayload = 64 << 10
)

// Record kinds: the first byte of every payload.
const (
	kindReading    = 1 // one reading.Reading
	kindCheckpoint = 2 // the seq table and every cursor position
	kindCursor     = 3 // one cursor position
)

// Reading flags.
const (
	flagRawSame  = 1 << 0 // Raw is bit-identical to Value and not stored
	flagLongTime = 1 << 1 // Time is stored as seconds + nanoseconds, not unix nanoseconds
	flagClock    = 1 << 2 // Clock, Mono and Boot follow the time
	// flagForwarded marks a reading another agent took: its Agent, Sensor
	// and Seq are its identity, and its seq is not one of this log's (see
	// Log.AppendForwarded).
	flagForwarded = 1 << 3
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadPayload is a record whose CRC matched but whose payload does not
// decode: a bug or a format this version does not know.
var errBadPayload = errors.New("malformed payload")

// recordCRC is the CRC-32C of a record's length field and payload.
func recordCRC(lenField, payload []byte) uint32 {
	return crc32.Update(crc32.Update(0, castagnoli, lenField), castagnoli, payload)
}

// beginRecord reserves a record header at the end of b.
func beginRecord(b []byte) ([]byte, int) {
	return append(b, 0, 0, 0, 0, 0, 0, 0, 0), len(b)
}

// finishRecord fills in the header of the record that starts at start and
// runs to the end of b.
func finishRecord(b []byte, start int) []byte {
	n := len(b) - start - headerLen
	binary.LittleEndian.PutUint32(b[start:], uint32(n))
	binary.LittleEndian.PutUint32(b[start+4:], recordCRC(b[start:start+4], b[start+headerLen:]))
	return b
}

// appendReading appends r as one framed record to b; forwarded marks a
// reading whose seq is not this log's.
func appendReading(b []byte, r *reading.Reading, forwarded bool) []byte {
	b, start := beginRecord(b)
	var flags byte
	if forwarded {
		flags |= flagForwarded
	}
	if math.Float64bits(r.Raw) == math.Float64bits(r.Value) {
		flags |= flagRawSame
	}
	if y := r.Time.Year(); y < 1700 || y > 2200 {
		flags |= flagLongTime // outside UnixNano's range (or the zero time)
	}
	if r.Clock != "" {
		flags |= flagClock
	}
	b = append(b, kindReading, flags)
	b = binary.AppendUvarint(b, r.Seq)
	b = appendString(b, r.Agent)
	b = appendString(b, r.Sensor)
	b = appendString(b, r.Quantity)
	b = appendString(b, r.Unit)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.Value))
	if flags&flagRawSame == 0 {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.Raw))
	}
	if flags&flagLongTime == 0 {
		b = binary.AppendVarint(b, r.Time.UnixNano())
	} else {
		b = binary.AppendVarint(b, r.Time.Unix())
		b = binary.AppendUvarint(b, uint64(r.Time.Nanosecond()))
	}
	if flags&flagClock != 0 {
		b = appendString(b, r.Clock)
		b = binary.AppendVarint(b, r.Mono)
		b = binary.LittleEndian.AppendUint32(b, r.Boot)
	}
	return finishRecord(b, start)
}

// appendCheckpoint appends a checkpoint record: the whole seq table and
// every cursor position, sorted by name so the bytes are deterministic.
func appendCheckpoint(b []byte, seqs map[string]uint64, cursors map[string]int64) []byte {
	b, start := beginRecord(b)
	b = append(b, kindCheckpoint)
	b = binary.AppendUvarint(b, uint64(len(seqs)))
	for _, k := range sortedKeys(seqs) {
		b = appendString(b, k)
		b = binary.AppendUvarint(b, seqs[k])
	}
	b = binary.AppendUvarint(b, uint64(len(cursors)))
	for _, k := range sortedKeys(cursors) {
		b = appendString(b, k)
		b = binary.AppendUvarint(b, uint64(cursors[k]))
	}
	return finishRecord(b, start)
}

// appendCursor appends a cursor record: name has acknowledged everything
// before global offset pos.
func appendCursor(b []byte, name string, pos int64) []byte {
	b, start := beginRecord(b)
	b = append(b, kindCursor)
	b = appendString(b, name)
	b = binary.AppendUvarint(b, uint64(pos))
	return finishRecord(b, start)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder decodes payloads. It interns the strings of readings (agent,
// sensor, quantity and unit repeat in every record), so a drain allocates
// one string per distinct value rather than four per reading.
type decoder struct {
	strs map[string]string
}

// maxInterned bounds the decoder's string table.
const maxInterned = 4096

func (d *decoder) intern(b []byte) string {
	if s, ok := d.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	if d.strs == nil || len(d.strs) >= maxInterned {
		d.strs = make(map[string]string)
	}
	d.strs[s] = s
	return s
}

// payloadReader walks a payload; the first failure sticks.
type payloadReader struct {
	b   []byte
	err bool
}

func (p *payloadReader) byte() byte {
	if len(p.b) < 1 {
		p.err = true
		return 0
	}
	c := p.b[0]
	p.b = p.b[1:]
	return c
}

func (p *payloadReader) uvarint() uint64 {
	v, n := binary.Uvarint(p.b)
	if n <= 0 {
		p.err = true
		return 0
	}
	p.b = p.b[n:]
	return v
}

func (p *payloadReader) varint() int64 {
	v, n := binary.Varint(p.b)
	if n <= 0 {
		p.err = true
		return 0
	}
	p.b = p.b[n:]
	return v
}

func (p *payloadReader) u64() uint64 {
	if len(p.b) < 8 {
		p.err = true
		return 0
	}
	v := binary.LittleEndian.Uint64(p.b)
	p.b = p.b[8:]
	return v
}

func (p *payloadReader) u32() uint32 {
	if len(p.b) < 4 {
		p.err = true
		return 0
	}
	v := binary.LittleEndian.Uint32(p.b)
	p.b = p.b[4:]
	return v
}

func (p *payloadReader) bytes() []byte {
	n := p.uvarint()
	if p.err || n > uint64(len(p.b)) {
		p.err = true
		return nil
	}
	s := p.b[:n]
	p.b = p.b[n:]
	return s
}

// done reports an error unless the payload was consumed exactly.
func (p *payloadReader) done() error {
	if p.err || len(p.b) != 0 {
		return errBadPayload
	}
	return nil
}

// decodeReading decodes a kindReading payload into r.
func (d *decoder) decodeReading(payload []byte, r *reading.Reading) error {
	p := payloadReader{b: payload}
	if p.byte() != kindReading {
		return errBadPayload
	}
	flags := p.byte()
	r.Seq = p.uvarint()
	r.Agent = d.intern(p.bytes())
	r.Sensor = d.intern(p.bytes())
	r.Quantity = d.intern(p.bytes())
	r.Unit = d.intern(p.bytes())
	r.Value = math.Float64frombits(p.u64())
	r.Raw = r.Value
	if flags&flagRawSame == 0 {
		r.Raw = math.Float64frombits(p.u64())
	}
	if flags&flagLongTime == 0 {
		r.Time = time.Unix(0, p.varint()).UTC()
	} else {
		sec := p.varint()
		nsec := p.uvarint()
		if nsec >= 1e9 {
			p.err = true
		}
		r.Time = time.Unix(sec, int64(nsec)).UTC()
	}
	r.Clock, r.Mono, r.Boot = "", 0, 0
	if flags&flagClock != 0 {
		r.Clock = d.intern(p.bytes())
		r.Mono = p.varint()
		r.Boot = p.u32()
	}
	if flags&^(flagRawSame|flagLongTime|flagClock|flagForwarded) != 0 {
		p.err = true
	}
	return p.done()
}

// readingKey is what recovery needs from a reading: no allocation but the
// sensor bytes, which alias the payload.
type readingKey struct {
	sensor    []byte
	seq       uint64
	time      int64 // unix nanoseconds; 0 for the zero time
	forwarded bool  // taken by another agent: seq is not this log's
}

// decodeReadingKey decodes the sensor, seq and time of a kindReading payload.
func decodeReadingKey(payload []byte) (readingKey, error) {
	var k readingKey
	p := payloadReader{b: payload}
	if p.byte() != kindReading {
		return k, errBadPayload
	}
	flags := p.byte()
	k.forwarded = flags&flagForwarded != 0
	k.seq = p.uvarint()
	p.bytes() // agent
	k.sensor = p.bytes()
	p.bytes() // quantity
	p.bytes() // unit
	p.u64()   // value
	if flags&flagRawSame == 0 {
		p.u64()
	}
	if flags&flagLongTime == 0 {
		k.time = p.varint()
	} else {
		// Outside [1700, 2200]: the zero time is unknown (0), anything
		// else is very old or very new.
		sec := p.varint()
		nsec := p.uvarint()
		switch {
		case time.Unix(sec, int64(nsec%1e9)).IsZero():
			k.time = 0
		case sec < 0:
			k.time = math.MinInt64 + 1
		default:
			k.time = math.MaxInt64
		}
	}
	if flags&flagClock != 0 {
		p.bytes()
		p.varint()
		p.u32()
		k.time = math.MaxInt64 // taken on a wrong clock: never too old (see Log.Append)
	}
	return k, p.done()
}

// checkpoint is a decoded kindCheckpoint payload.
type checkpoint struct {
	seqs    map[string]uint64
	cursors map[string]int64
}

func decodeCheckpoint(payload []byte) (checkpoint, error) {
	p := payloadReader{b: payload}
	if p.byte() != kindCheckpoint {
		return checkpoint{}, errBadPayload
	}
	c := checkpoint{seqs: map[string]uint64{}, cursors: map[string]int64{}}
	n := p.uvarint()
	for i := uint64(0); i < n && !p.err; i++ {
		k := string(p.bytes())
		c.seqs[k] = p.uvarint()
	}
	n = p.uvarint()
	for i := uint64(0); i < n && !p.err; i++ {
		k := string(p.bytes())
		v := p.uvarint()
		if v > math.MaxInt64 {
			p.err = true
		}
		c.cursors[k] = int64(v)
	}
	return c, p.done()
}

func decodeCursor(payload []byte) (string, int64, error) {
	p := payloadReader{b: payload}
	if p.byte() != kindCursor {
		return "", 0, errBadPayload
	}
	name := string(p.bytes())
	v := p.uvarint()
	if v > math.MaxInt64 {
		p.err = true
	}
	return name, int64(v), p.done()
}

// record is one framed record read from a segment. payload aliases the
// reader's buffer and is valid until the next call.
type record struct {
	kind       byte
	payload    []byte
	start, end int64 // file positions of the record's first byte and of the byte after it
}

// readBufSize is the reader's window on the file.
const readBufSize = 64 << 10

// segReader reads framed records from one segment file, from a position up
// to a limit, and resynchronises past corrupt bytes by scanning forward for
// the next position where a record with a sane length and a matching CRC
// starts. It never reads at or beyond limit, so bytes a writer is still
// appending are never seen.
type segReader struct {
	r      io.ReaderAt
	pos    int64 // file position of the next record
	limit  int64 // bytes [0, limit) may be read
	buf    []byte
	bufOff int64 // file position of buf[0]
}

// reset points the reader at r, from pos up to limit, dropping its window.
func (s *segReader) reset(r io.ReaderAt, pos, limit int64) {
	s.r, s.pos, s.limit = r, pos, limit
	s.buf = s.buf[:0]
	s.bufOff = 0
}

// window returns the n file bytes at off, reading them into the buffer if
// needed. The caller guarantees off+n <= limit.
func (s *segReader) window(off int64, n int) ([]byte, error) {
	if off >= s.bufOff && off+int64(n) <= s.bufOff+int64(len(s.buf)) {
		i := off - s.bufOff
		return s.buf[i : i+int64(n)], nil
	}
	want := max(n, readBufSize)
	if rest := s.limit - off; int64(want) > rest {
		want = int(rest)
	}
	if cap(s.buf) < want {
		s.buf = make([]byte, want)
	}
	s.buf = s.buf[:want]
	got, err := s.r.ReadAt(s.buf, off)
	if got < want {
		s.buf, s.bufOff = s.buf[:0], 0
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF // the file is shorter than the limit said
		}
		return nil, err
	}
	s.bufOff = off
	return s.buf[:n], nil
}

// at checks for a valid record at file position off. It returns the
// record, ok=false when none starts there, or an I/O error.
func (s *segReader) at(off int64) (record, bool, error) {
	if s.limit-off < headerLen+1 {
		return record{}, false, nil
	}
	h, err := s.window(off, headerLen)
	if err != nil {
		return record{}, false, err
	}
	n := int64(binaryLE32(h))
	if n == 0 || n > maxPayload || off+headerLen+n > s.limit {
		return record{}, false, nil
	}
	b, err := s.window(off, headerLen+int(n))
	if err != nil {
		return record{}, false, err
	}
	if k := b[headerLen]; k != kindReading && k != kindCheckpoint && k != kindCursor {
		return record{}, false, nil
	}
	if recordCRC(b[:4], b[headerLen:]) != binaryLE32(b[4:8]) {
		return record{}, false, nil
	}
	return record{kind: b[headerLen], payload: b[headerLen:], start: off, end: off + headerLen + n}, true, nil
}

func binaryLE32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

// next returns the next valid record and advances past it. skipped is the
// number of corrupt bytes passed over before it; zero bytes followed by a
// valid record are a hole in a sparse segment, not corruption. At the limit it returns
// ok=false; skipped then counts a corrupt tail that held no valid record
// (a torn write). err is an I/O error only.
func (s *segReader) next() (rec record, skipped int64, ok bool, err error) {
	start := s.pos
	for off := start; off < s.limit; off++ {
		rec, ok, err := s.at(off)
		if err != nil {
			return record{}, 0, false, fmt.Errorf("read at %d: %w", off, err)
		}
		if ok {
			s.pos = rec.end
			skipped := off - start
			if skipped > 0 && s.zeros(start, off) {
				// A hole: bytes every output had acknowledged before they
				// were due for the disk were never written (hot.go).
				skipped = 0
				// zeros moved the window, and rec's payload with it: a hole
				// wider than the window left the payload on other bytes.
				if rec, ok, err = s.at(off); err != nil {
					return record{}, 0, false, fmt.Errorf("read the record at %d again after a hole: %w", off, err)
				} else if !ok {
					return record{}, 0, false, fmt.Errorf("read the record at %d again after a hole: it is no longer there", off)
				}
			}
			return rec, skipped, true, nil
		}
	}
	s.pos = s.limit
	return record{}, s.limit - start, false, nil
}

// zeros reports whether the file bytes [from, to) are all zero.
func (s *segReader) zeros(from, to int64) bool {
	for off := from; off < to; {
		n := int(min(to-off, readBufSize))
		b, err := s.window(off, n)
		if err != nil {
			return false
		}
		for _, c := range b {
			if c != 0 {
				return false
			}
		}
		off += int64(n)
	}
	return true
}
