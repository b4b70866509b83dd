//go:build !linux

package buffer

import "os"

// preallocate does nothing where fallocate is not available.
func preallocate(f *os.File, n int64) error { return nil }
