package buffer

import (
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
			l.st.Fsyncs++
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
	l.st.Fsyncs++
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// commitLoop is the goroutine that runs the group commit (run).
type commitLoop struct {
	stop    chan struct{} // closed by Close
	kick    chan struct{} // one pending wake-up of run: something was appended
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
	notify chan struct{} // closed and replaced when end moves, and at Close
}

// advance makes everything before end visible to Next.
func (d *durablePoint) advance(end int64) {
	if end > d.end {
		d.end = end
		close(d.notify)
		d.notify = make(chan struct{})
	}
}

// run is the background group commit: at most one commit per syncEvery,
// and as soon as allowed. An Append after a quiet spell of at least
// syncEvery is committed at once (a sensor read every few seconds is
// published within one fsync, not up to a second later); appends that come
// faster are committed together syncEvery after the previous commit. Either
// way there are never more commits than one per syncEvery.
func (l *Log) run() {
	defer l.loop.wg.Done()
	t := time.NewTimer(l.syncEvery)
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
		case <-t.C:
		}
		last = time.Now()
		t.Reset(l.syncEvery)
		if l.hot != "" {
			// Wake when the oldest unacknowledged reading has waited a
			// whole interval.
			t.Reset(l.nextDue())
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

// commit is one group commit; syncMu is held. It writes the buffered
// records and, at most once per interval (or when force), one record per
// cursor that moved; fsyncs outside mu every file with unsynced bytes (and
// the directory after a segment was created); then advances the durable
// offset, wakes Next, and deletes the segments no longer needed.
//
// With a hot directory, spill says whether every unacknowledged byte of the
// hot tail must reach the disk now (Sync, Close, sync: always); otherwise
// only what waited a sync interval does (see hot.go).
func (l *Log) commit(force, spill bool) error {
	l.mu.Lock()
	if l.shut {
		l.mu.Unlock()
		return ErrClosed
	}
	now := l.now()
	if a := l.active(); !l.closed && a.readings > 0 && a.newest < now.Add(-l.cfg.MaxAge).UnixNano() {
		if err := l.rollover(); err != nil {
			l.log.Error("buffer: cannot start a segment", "err", err)
		}
	}
	var persisted map[string]int64
	// While the disk holds a backlog, positions go out at every commit, so
	// the one that spills them when it drained has them.
	force = force || l.tail.coldBehind
	if force || now.Sub(l.commits.lastPersist) >= l.o.cursorEvery || now.Before(l.commits.lastPersist) {
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
	}
	var firstErr error
	if err := l.flushLocked(); err != nil {
		firstErr = err
		for name := range persisted {
			l.cursors[name].dirty = true
		}
		persisted = nil
	}
	type job struct {
		seg  *segment
		f    *os.File
		size int64
	}
	var jobs []job
	for _, s := range l.segs {
		if s.w != nil && s.synced < s.size {
			jobs = append(jobs, job{s, s.w, s.size})
		}
	}
	var spills []spillJob
	var spillErr error
	if l.hot != "" {
		spills, spillErr = l.planSpill(spill)
		for _, j := range spills {
			l.commits.dirDirty = l.commits.dirDirty || j.created
		}
	}
	dir := l.commits.dirDirty
	l.commits.dirDirty = false
	target := l.active().end()
	l.mu.Unlock()

	errs := make([]error, len(jobs))
	for i, j := range jobs {
		errs[i] = j.f.Sync()
	}
	spillErrs := make([]error, len(spills))
	for i, j := range spills {
		spillErrs[i] = j.seg.cold.Sync()
		if spillErrs[i] != nil && spillErr == nil {
			spillErr = fmt.Errorf("sync %s: %w", filepath.Base(j.seg.cold.Name()), spillErrs[i])
		}
	}
	var dirErr error
	if dir {
		dirErr = l.syncDirCounted()
		if dirErr != nil && firstErr == nil {
			firstErr = dirErr
		}
	}

	l.mu.Lock()
	l.st.Fsyncs += uint64(len(jobs) + len(spills))
	if l.hot != "" {
		l.spillDone(spills, spillErrs)
		if dirErr != nil && spillErr == nil {
			spillErr = dirErr
		}
		l.noteWrite(spillErr)
		if firstErr == nil {
			firstErr = spillErr
		}
	}
	if dirErr != nil {
		l.commits.dirDirty = true
	}
	failed := false
	for i, j := range jobs {
		if j.seg.deleted {
			continue
		}
		if errs[i] != nil {
			failed = true
			if firstErr == nil {
				firstErr = fmt.Errorf("sync %s: %w", filepath.Base(j.f.Name()), errs[i])
			}
			continue
		}
		j.seg.synced = max(j.seg.synced, j.size)
		if j.seg != l.active() && j.seg.synced >= j.seg.size && j.seg.w != nil {
			j.seg.w.Close()
			j.seg.w = nil
		}
	}
	if l.hot != "" || (firstErr == nil && !failed) {
		// With a hot tail, what is in it is durable whatever the disk does.
		l.durable.advance(target)
		for name, pos := range persisted {
			if c := l.cursors[name]; c != nil && pos > c.persisted {
				c.persisted = pos
			}
		}
	} else {
		for name := range persisted {
			if c := l.cursors[name]; c != nil {
				c.dirty = true
			}
		}
		persisted = nil
	}
	l.retainLocked(false)
	l.mu.Unlock()
	if persisted != nil && l.o.committed != nil {
		l.o.committed(persisted)
	}
	if firstErr != nil {
		return fmt.Errorf("buffer: %w", firstErr)
	}
	return nil
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
	l.st.Fsyncs++
	l.mu.Unlock()
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}
