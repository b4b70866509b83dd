package buffer

import (
	"errors"
	"os"
	"syscall"
)

// fallocKeepSize is FALLOC_FL_KEEP_SIZE: reserve blocks without changing
// the file size.
const fallocKeepSize = 1

// preallocate reserves n bytes of disk for f without changing its size, so
// that appends inside a segment do not fail with ENOSPC: a full disk shows
// up when a segment is created, before any reading of a batch is written.
// Filesystems without fallocate are not an error.
func preallocate(f *os.File, n int64) error {
	err := syscall.Fallocate(int(f.Fd()), fallocKeepSize, 0, n)
	if err == nil || errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		return nil
	}
	return err
}
