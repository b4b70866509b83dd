package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Seq reservations: the high-water file that makes a seq never reused,
// even when the tail of the log is lost after it was durable (an SD card
// that drops writes it acknowledged, a restored backup, a hot tail lost in
// a power cut).
//
// The file SEQ holds, per sensor, a seq up to which seqs are reserved, and
// the log's durable end when it was written. Append hands out seqs up to
// the reservation; before it passes one, it reserves reserveBlock more for
// every sensor close to its own (so sensors read at one rate share one
// write), and writes the file: a temporary file, fsync, rename, fsync of
// the directory. A write happens when a sensor has used up its block, and
// renews every sensor within half a block of the end of its own, so
// sensors read at one rate share it: at 1 Hz one write every 18 hours (two
// fsyncs); at 10 Hz, one every 2 hours. Each new sensor costs one more.
// At Open every sensor resumes after its reservation (Log.Resumed), so a
// restart after a crash leaves a gap in each sensor's seqs, which the agent
// announces, and never a reuse. Close records the exact last seqs, marked
// as a clean end, so a clean restart leaves no gap and announces none: with
// the hot tail, the readings every output acknowledged are on no disk, so
// the log alone cannot say where its seqs ended. Open writes a reservation
// over the clean end at once.

// reserveBlock is how many seqs each reservation adds per sensor.
const reserveBlock = 1 << 16

const (
	reserveFile  = "SEQ"
	reserveMagic = "KLVNSEQ1"
)

// seqTable is the log's own seqs: the last handed out per sensor, and
// their reservations; guarded by Log.mu. Forwarded readings are not in it.
type seqTable struct {
	last     map[string]uint64    // per sensor, the last seq handed out
	reserved map[string]uint64    // per sensor, seqs reserved on disk
	resumed  map[string]uint64    // per sensor, where this run resumed after a gap
	skipped  map[string][2]uint64 // per sensor, the gap's seqs [first, last]
	err      error                // last reservation write's error
	tried    time.Time            // when it was tried
}

// next takes sensor's next seq, noting in b how to give it back.
func (t *seqTable) next(sensor string, b *batch) uint64 {
	last, existed := t.last[sensor]
	touched := false
	for _, u := range b.undo {
		if u.sensor == sensor {
			touched = true
			break
		}
	}
	if !touched {
		b.undo = append(b.undo, seqUndo{sensor, last, existed})
	}
	seq := last + 1
	t.last[sensor] = seq
	if seq > t.reserved[sensor] {
		b.reserve = true
	}
	return seq
}

// giveBack returns the seqs b took: its batch was refused.
func (t *seqTable) giveBack(b *batch) {
	for i := len(b.undo) - 1; i >= 0; i-- {
		if u := b.undo[i]; u.existed {
			t.last[u.sensor] = u.seq
		} else {
			delete(t.last, u.sensor)
		}
	}
}

// reservation is the decoded SEQ file.
type reservation struct {
	seqs  map[string]uint64 // per sensor, the highest seq reserved
	end   int64             // the log's durable end when written
	clean bool              // seqs are the exact last ones, recorded by Close
}

func appendReservation(b []byte, r reservation) []byte {
	b = append(b, reserveMagic...)
	b, start := beginRecord(b)
	b = append(b, kindCheckpoint)
	b = binary.AppendUvarint(b, uint64(len(r.seqs)))
	for _, k := range sortedKeys(r.seqs) {
		b = appendString(b, k)
		b = binary.AppendUvarint(b, r.seqs[k])
	}
	// The durable end, as a "cursor" of a checkpoint record, and a clean
	// end as another (a file without it, as every file before it, is a
	// reservation).
	n := uint64(1)
	if r.clean {
		n++
	}
	b = binary.AppendUvarint(b, n)
	b = appendString(b, "end")
	b = binary.AppendUvarint(b, uint64(max(r.end, 0)))
	if r.clean {
		b = appendString(b, "clean")
		b = binary.AppendUvarint(b, 1)
	}
	return finishRecord(b, start)
}

// readReservation reads dir/SEQ; a missing file is no reservation.
func readReservation(dir string) (reservation, error) {
	b, err := os.ReadFile(filepath.Join(dir, reserveFile))
	if errors.Is(err, fs.ErrNotExist) {
		return reservation{}, nil
	}
	if err != nil {
		return reservation{}, err
	}
	bad := fmt.Errorf("%s: not a valid seq reservation", reserveFile)
	if len(b) < len(reserveMagic)+headerLen || string(b[:len(reserveMagic)]) != reserveMagic {
		return reservation{}, bad
	}
	b = b[len(reserveMagic):]
	n := int(binary.LittleEndian.Uint32(b))
	if n != len(b)-headerLen || recordCRC(b[:4], b[headerLen:]) != binary.LittleEndian.Uint32(b[4:8]) {
		return reservation{}, bad
	}
	c, err := decodeCheckpoint(b[headerLen:])
	if err != nil {
		return reservation{}, bad
	}
	return reservation{seqs: c.seqs, end: c.cursors["end"], clean: c.cursors["clean"] == 1}, nil
}

// writeReservation replaces dir/SEQ durably.
func writeReservation(dir string, r reservation) (fsyncs int, err error) {
	tmp := filepath.Join(dir, reserveFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return 0, err
	}
	_, err = f.Write(appendReservation(nil, r))
	if err == nil {
		fsyncs++
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, reserveFile))
	}
	if err != nil {
		os.Remove(tmp)
		return fsyncs, err
	}
	d, err := os.Open(dir)
	if err != nil {
		return fsyncs, err
	}
	defer d.Close()
	fsyncs++
	return fsyncs, d.Sync()
}

// resumeAfterReservation, at Open, moves every sensor's seq to its
// reservation and compares the log's end with the end the file recorded:
// a log shorter than that lost bytes after they were durable. After a
// clean end the seqs go on from the exact last ones, without a gap.
func (l *Log) resumeAfterReservation() {
	r, err := readReservation(l.dir)
	if err != nil {
		// Without it a lost tail could make seqs be reused; say so, and go
		// on with what the log holds.
		l.log.Error("buffer: cannot read the seq reservation; seqs resume after the log's", "err", err)
		l.st.CorruptSkipped++
	}
	l.seq.resumed = map[string]uint64{}
	l.seq.skipped = map[string][2]uint64{}
	for s, v := range r.seqs {
		if v <= l.seq.last[s] {
			continue
		}
		if !r.clean { // a reservation: the seqs after the log's are a gap
			l.seq.skipped[s] = [2]uint64{l.seq.last[s] + 1, v}
			l.seq.resumed[s] = v + 1
		}
		l.seq.last[s] = v
	}
	l.seq.reserved = map[string]uint64{}
	if end := l.coldEnd(); r.end > end {
		l.st.LostBytes += uint64(r.end - end)
		l.log.Error("buffer: the log is shorter than it was when last known durable: its tail was lost (a disk that dropped acknowledged writes, or a restored backup); seqs resume after their reservation, never reused",
			"lost_bytes", r.end-end, "end", end, "durable_end_recorded", r.end)
	}
}

// coldEnd is the end of what the disk must still hold: the end of the
// newest segment that has a file on disk (a hot segment's copy counts up
// to what was copied). Segments retention deleted, and hot segments never
// copied because every output acknowledged them in time, do not count: a
// log found shorter than this at Open lost data it should have kept.
func (l *Log) coldEnd() int64 {
	if l.hot == "" {
		return l.durable.end
	}
	var end int64
	for _, s := range l.segs {
		switch {
		case !s.hot:
			end = max(end, s.end())
		case s.cold != nil:
			end = max(end, s.base+s.spilled)
		}
	}
	return end
}

// reserveLocked writes a reservation covering every sensor's next seqs; mu
// is held. A failure (a full disk) is logged once per failure spell and
// retried at most once per sync interval; the seqs are handed out anyway,
// since refusing readings for it would lose more than it protects.
func (l *Log) reserveLocked(extra map[string]uint64) {
	now := time.Now()
	if l.seq.err != nil && now.Sub(l.seq.tried) < l.syncEvery && now.After(l.seq.tried) {
		return
	}
	l.seq.tried = now
	next := make(map[string]uint64, len(l.seq.last))
	for s, v := range l.seq.last {
		next[s] = max(v, extra[s])
	}
	for s, v := range extra {
		next[s] = max(next[s], v)
	}
	res := reservation{seqs: make(map[string]uint64, len(next)), end: l.coldEnd()}
	for s, v := range next {
		r := l.seq.reserved[s]
		if v+reserveBlock/2 > r {
			r = v + reserveBlock
		}
		res.seqs[s] = r
	}
	n, err := writeReservation(l.dir, res)
	l.fsynced(n)
	switch {
	case err != nil && l.seq.err == nil:
		l.log.Error("buffer: cannot write the seq reservation; retrying, seqs are still handed out", "err", err)
	case err == nil && l.seq.err != nil:
		l.log.Info("buffer: seq reservation written again")
	}
	l.seq.err = err
	if err == nil {
		l.seq.reserved = res.seqs
		l.st.Reservations++
	}
}

// Resumed returns, per sensor, the seq this run started at when it is
// after a gap: the sensor's seqs resumed after the reservation of the
// previous run, not after its last reading in the log. Seqs in the gap were
// never handed out (or were lost with a tail the log reported); a consumer
// that sees the gap can tell a restart from a loss by it. Sensors whose
// seqs continue without a gap are absent.
func (l *Log) Resumed() map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string]uint64, len(l.seq.resumed))
	for s, v := range l.seq.resumed {
		m[s] = v
	}
	return m
}

// Skipped returns, per sensor whose seqs resumed after a gap (Resumed),
// the seqs of the gap [first, last]: from the one after the sensor's last
// reading the log holds to the end of the previous run's reservation. No
// reading of this log has a seq in it, and none will: last+1 is where the
// sensor resumed. After a crash the hot tail holds every reading taken,
// so the gap's seqs were never used (or were lost with a tail the log
// reported). After a power cut the disk holds no reading that every output
// acknowledged before it was due, so the gap also covers those delivered
// readings, and the readings of the last sync interval that the cut took.
// Safe for concurrent use.
func (l *Log) Skipped() map[string][2]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string][2]uint64, len(l.seq.skipped))
	for s, r := range l.seq.skipped {
		m[s] = r
	}
	return m
}

// recordEndLocked, at Close once everything is durable, writes the exact
// last seqs (so a clean restart resumes without a gap) and end, the log's
// durable end (coldEnd; so a tail lost later, as by a restored backup, is
// found and reported by what was really cut). mu is held.
func (l *Log) recordEndLocked(end int64) {
	seqs := make(map[string]uint64, len(l.seq.last))
	for s, v := range l.seq.last {
		seqs[s] = v
	}
	n, err := writeReservation(l.dir, reservation{seqs: seqs, end: end, clean: true})
	l.fsynced(n)
	if err != nil {
		l.log.Warn("buffer: cannot record the log's end in the seq reservation", "err", err)
	}
}

// LastSeq returns the last seq handed out to sensor, or, after a crash,
// the reservation it resumes after (0 for a sensor never seen). After a
// clean Close and Open it is the seq of the sensor's last reading. Safe for
// concurrent use.
func (l *Log) LastSeq(sensor string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq.last[sensor]
}
