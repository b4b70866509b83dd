package buffer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// syncFiles fsyncs every segment with unsynced bytes and the directory,
// under mu: only for recovery and the rare paths that must make a
// checkpoint durable before deleting a segment.
func (l *Log) syncFiles() error {
	if err := l.flushLocked(); err != nil {
		return err
	}
	for _, s := range l.segs {
		if s.w != nil && s.synced < s.size {
			l.fsynced(1)
			if err := s.w.Sync(); err != nil {
				return fmt.Errorf("sync %s: %w", filepath.Base(s.w.Name()), err)
			}
			s.synced = s.size
		}
	}
	if l.commits.dirDirty {
		if err := l.syncDir(); err != nil {
			return err
		}
		l.commits.dirDirty = false
	}
	return nil
}

func (l *Log) syncDir() error {
	d, err := os.Open(l.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	l.fsynced(1)
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// commitLoop is the goroutine that runs the group commit (run).
type commitLoop struct {
	stop    chan struct{} // closed by Close
	kick    chan struct{} // one pending wake-up of run: something was appended
	acked   chan struct{} // with a hot tail: everything acknowledged, cursor positions to write
	timer   *time.Timer   // run's; with a hot tail armed only while a reading is unacknowledged
	armed   bool          // timer is set; guarded by Log.mu
	wg      sync.WaitGroup
	lastErr error // the last commit's error, logged on change; guarded by Log.mu
}

// commitState is what the next group commit owes; guarded by Log.mu.
type commitState struct {
	lastPersist time.Time // when cursor positions were last written
	dirDirty    bool      // the directory has entries not yet fsynced
}

// durablePoint is how far Next may read; guarded by Log.mu.
type durablePoint struct {
	end    int64         // global offset up to which every byte is durable
	notify chan struct{} // closed when end moves (replaced if taken), and at Close
	taken  bool          // wait handed notify out since it was made
}

// wait returns the channel closed when end moves next (or at Close).
func (d *durablePoint) wait() chan struct{} {
	d.taken = true
	return d.notify
}

// waitDone waits until ch (a durablePoint's wait channel) is closed, or
// returns ctx.Err() when ctx is done first.
func waitDone(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// advance makes everything before end visible to Next. The channel is
// replaced only when someone took it: a cursor keeping up reads each
// Append before the next one, so most Appends allocate none.
func (d *durablePoint) advance(end int64) {
	if end > d.end {
		d.end = end
		if d.taken {
			close(d.notify)
			d.notify, d.taken = make(chan struct{}), false
		}
	}
}

// run is the background group commit: at most one commit per syncEvery,
// and as soon as allowed. An Append after a quiet spell of at least
// syncEvery is committed at once (a sensor read every few seconds is
// published within one fsync, not up to a second later); appends that come
// faster are committed together syncEvery after the previous commit. Either
// way there are never more commits than one per syncEvery.
//
// With a hot tail the timer runs only while a reading in it is
// unacknowledged, due when the oldest has waited a whole interval (see
// armLocked); the Ack that leaves nothing unacknowledged stops it and wakes
// run in that same burst when cursor positions are due (ackedLocked). So a
// gateway whose outputs keep up is not woken a second time each second.
func (l *Log) run() {
	defer l.loop.wg.Done()
	t := l.loop.timer
	defer t.Stop()
	var last time.Time // of the last commit; zero: the first Append commits at once
	for {
		select {
		case <-l.loop.stop:
			return
		case <-l.loop.kick:
			if l.hot != "" || time.Since(last) < l.syncEvery {
				continue // the timer commits it at last+syncEvery
			}
		case <-l.loop.acked:
		case <-t.C:
		}
		last = time.Now()
		if l.hot == "" {
			t.Reset(l.syncEvery)
		}
		{
			l.syncMu.Lock()
			err := l.commit(false, false)
			l.syncMu.Unlock()
			l.mu.Lock()
			switch {
			case err != nil && (l.loop.lastErr == nil || l.loop.lastErr.Error() != err.Error()):
				l.log.Error("buffer: group commit failed", "err", err)
			case err == nil && l.loop.lastErr != nil:
				l.log.Info("buffer: group commit works again")
			}
			l.loop.lastErr = err
			if l.hot != "" {
				l.armLocked()
			}
			l.mu.Unlock()
		}
	}
}

// syncTo makes every byte before global offset end durable, sharing one
// fsync among concurrent callers.
func (l *Log) syncTo(end int64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	done := l.durable.end >= end
	if l.hot != "" {
		done = l.coldFrontier() >= end
	}
	l.mu.Unlock()
	if done {
		return nil
	}
	return l.commit(false, true)
}

// Sync writes and fsyncs everything appended so far and returns once it is
// durable (cursor positions are written at most once per sync interval, not
// by every Sync). Safe for concurrent use.
func (l *Log) Sync() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return l.commit(false, true)
}

// commit is one group commit; syncMu is held. Under mu it starts a new
// segment when the active one is too old (rollAged), writes the buffered
// records and the cursor records due (planCommit); outside mu it fsyncs
// every file with unsynced bytes, the hot tail's copies and the directory
// after a segment was created (commitPlan.fsync); under mu again it
// records what is now on disk, advances the durable offset, which wakes
// Next (finishCommit), and deletes the segments no longer needed.
//
// With a hot directory, spill says whether every unacknowledged byte of the
// hot tail must reach the disk now (Sync, Close, sync: always); otherwise
// only what waited a sync interval does (see hot.go). force writes every
// cursor that moved, whenever it was last written.
func (l *Log) commit(force, spill bool) error {
	l.mu.Lock()
	if l.shut {
		l.mu.Unlock()
		return ErrClosed
	}
	now := l.now()
	l.rollAged(now)
	p := l.planCommit(now, force, spill)
	l.mu.Unlock()

	p.fsync(l)

	l.mu.Lock()
	l.finishCommit(&p)
	l.retainLocked(false)
	l.mu.Unlock()
	if p.persisted != nil && l.o.committed != nil {
		l.o.committed(p.persisted)
	}
	if p.err != nil {
		return fmt.Errorf("buffer: %w", p.err)
	}
	return nil
}

// commitPlan is one group commit's work outside mu and its outcome.
type commitPlan struct {
	files     []fileSync       // files with unsynced bytes
	spills    []spillJob       // the hot tail's bytes copied to disk (hot.go)
	dir       bool             // the directory needs an fsync
	target    int64            // the global offset the commit makes durable
	persisted map[string]int64 // cursor positions written, by name

	fileErrs, spillErrs []error // per file and per spill, from fsync
	dirErr              error   // from the directory's fsync
	spillErr            error   // the first error of the hot tail's copies
	err                 error   // the first error of all: the commit's
}

// fileSync is one file to fsync: synced up to size once it succeeds.
type fileSync struct {
	seg  *segment
	f    *os.File
	size int64
}

// rollAged starts a new segment when the active one's newest reading is
// older than max_age, so that retention can delete it; mu is held.
func (l *Log) rollAged(now time.Time) {
	if a := l.active(); !l.closed && a.readings > 0 && a.newest < now.Add(-l.cfg.MaxAge).UnixNano() {
		if err := l.rollover(); err != nil {
			l.log.Error("buffer: cannot start a segment", "err", err)
		}
	}
}

// planCommit writes, under mu, what the commit makes durable: the cursor
// records due, the buffered records and, with a hot tail, the copies of
// what is due for the disk; and lists what to fsync.
func (l *Log) planCommit(now time.Time, force, spill bool) commitPlan {
	// While the disk holds a backlog, positions go out at every commit, so
	// the one that spills them when it drained has them.
	p := commitPlan{persisted: l.writeCursors(now, force || l.tail.coldBehind)}
	if err := l.flushLocked(); err != nil {
		p.err = err
		l.redirty(p.persisted)
		p.persisted = nil
	}
	for _, s := range l.segs {
		if s.w != nil && s.synced < s.size {
			p.files = append(p.files, fileSync{s, s.w, s.size})
		}
	}
	if l.hot != "" {
		p.spills, p.spillErr = l.planSpill(spill)
		for _, j := range p.spills {
			l.commits.dirDirty = l.commits.dirDirty || j.created
		}
	}
	p.dir, l.commits.dirDirty = l.commits.dirDirty, false
	p.target = l.active().end()
	return p
}

// writeCursors buffers one record per cursor that moved, at most once per
// cursor interval unless force, and returns the positions written (nil for
// none); mu is held.
func (l *Log) writeCursors(now time.Time, force bool) map[string]int64 {
	last := l.commits.lastPersist
	if !force && now.Sub(last) < l.o.cursorEvery && !now.Before(last) {
		return nil
	}
	var persisted map[string]int64
	for name, c := range l.cursors {
		if c.dirty {
			if persisted == nil {
				persisted = map[string]int64{}
			}
			l.pending.buf = appendCursor(l.pending.buf, name, c.acked.pos)
			persisted[name] = c.acked.pos
			c.dirty = false
		}
	}
	l.commits.lastPersist = now
	return persisted
}

// redirty marks the cursors whose records were lost as moved again; mu is
// held.
func (l *Log) redirty(persisted map[string]int64) {
	for name := range persisted {
		if c := l.cursors[name]; c != nil {
			c.dirty = true
		}
	}
}

// fsync does the plan's fsyncs, outside mu.
func (p *commitPlan) fsync(l *Log) {
	p.fileErrs = make([]error, len(p.files))
	for i, j := range p.files {
		p.fileErrs[i] = j.f.Sync()
	}
	p.spillErrs = make([]error, len(p.spills))
	for i, j := range p.spills {
		p.spillErrs[i] = j.seg.cold.Sync()
		if p.spillErrs[i] != nil && p.spillErr == nil {
			p.spillErr = fmt.Errorf("sync %s: %w", filepath.Base(j.seg.cold.Name()), p.spillErrs[i])
		}
	}
	if p.dir {
		p.dirErr = l.syncDirCounted()
		if p.dirErr != nil && p.err == nil {
			p.err = p.dirErr
		}
	}
}

// finishCommit records, under mu, what the fsyncs put on disk, then
// advances the durable offset and the cursors' persisted positions: with a
// hot tail always (what is in it is durable whatever the disk does),
// without one only if everything succeeded.
func (l *Log) finishCommit(p *commitPlan) {
	l.fsynced(len(p.files) + len(p.spills))
	if l.hot != "" {
		l.spillDone(p.spills, p.spillErrs)
		if p.dirErr != nil && p.spillErr == nil {
			p.spillErr = p.dirErr
		}
		l.noteWrite(p.spillErr)
		if p.err == nil {
			p.err = p.spillErr
		}
	}
	if p.dirErr != nil {
		l.commits.dirDirty = true
	}
	l.filesSynced(p)
	if l.hot == "" && p.err != nil {
		l.redirty(p.persisted)
		p.persisted = nil
		return
	}
	l.durable.advance(p.target)
	for name, pos := range p.persisted {
		if c := l.cursors[name]; c != nil && pos > c.persisted {
			c.persisted = pos
		}
	}
}

// filesSynced moves each synced file's durable size and closes the write
// handle of a sealed segment wholly on disk; the first failure becomes
// the commit's error; mu is held.
func (l *Log) filesSynced(p *commitPlan) {
	for i, j := range p.files {
		if j.seg.deleted {
			continue
		}
		if err := p.fileErrs[i]; err != nil {
			if p.err == nil {
				p.err = fmt.Errorf("sync %s: %w", filepath.Base(j.f.Name()), err)
			}
			continue
		}
		j.seg.synced = max(j.seg.synced, j.size)
		if j.seg != l.active() && j.seg.synced >= j.seg.size && j.seg.w != nil {
			j.seg.w.Close()
			j.seg.w = nil
		}
	}
}

// syncDirCounted fsyncs the directory outside mu.
func (l *Log) syncDirCounted() error {
	d, err := os.Open(l.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	err = d.Sync()
	l.mu.Lock()
	l.fsynced(1)
	l.mu.Unlock()
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}
