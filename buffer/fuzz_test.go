package buffer

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/kelvin-gw/kelvin/reading"
)

// FuzzSegmentReader feeds arbitrary bytes to the segment reader: it never
// panics, always advances, and never returns a record whose CRC is wrong;
// a reading record it returns decodes without panicking.
func FuzzSegmentReader(f *testing.F) {
	var seg []byte
	seg = append(seg, segMagic...)
	seg = appendCheckpoint(seg, map[string]uint64{"air": 3}, map[string]int64{"mqtt": 8})
	for i := range 3 {
		r := rd("air", float64(i))
		r.Seq = uint64(i + 1)
		seg = appendReading(seg, &r, i == 2)
	}
	seg = appendCursor(seg, "mqtt", int64(len(seg)))
	f.Add(seg)
	f.Add(seg[:len(seg)-5])
	f.Add(append(bytes.Clone(seg[:40]), seg[60:]...))
	f.Add([]byte{})
	f.Add([]byte(segMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		var sr segReader
		sr.reset(bytes.NewReader(b), 0, int64(len(b)))
		var dec decoder
		for {
			before := sr.pos
			rec, skipped, ok, err := sr.next()
			if err != nil {
				t.Fatalf("I/O error from a byte slice: %v", err)
			}
			if !ok {
				if sr.pos != int64(len(b)) || before+skipped != sr.pos {
					t.Fatalf("stopped at %d of %d after skipping %d from %d", sr.pos, len(b), skipped, before)
				}
				return
			}
			// Zero bytes before a record are a hole, not skipped (see
			// segReader.next).
			hole := skipped == 0 && rec.start > before && len(bytes.TrimLeft(b[before:rec.start], "\x00")) == 0
			if (rec.start != before+skipped && !hole) || rec.end <= rec.start || sr.pos != rec.end {
				t.Fatalf("record [%d,%d) after skipping %d from %d", rec.start, rec.end, skipped, before)
			}
			raw := b[rec.start:rec.end]
			n := binary.LittleEndian.Uint32(raw)
			if int(n) != len(raw)-headerLen || recordCRC(raw[:4], raw[headerLen:]) != binary.LittleEndian.Uint32(raw[4:]) {
				t.Fatalf("record at %d has a wrong length or CRC", rec.start)
			}
			if !bytes.Equal(rec.payload, raw[headerLen:]) {
				t.Fatal("payload does not match the file bytes")
			}
			switch rec.kind {
			case kindReading:
				var r reading.Reading
				dec.decodeReading(rec.payload, &r)
				decodeReadingKey(rec.payload)
			case kindCheckpoint:
				decodeCheckpoint(rec.payload)
			case kindCursor:
				decodeCursor(rec.payload)
			}
		}
	})
}
