//go:build !linux

package buffer

import "errors"

// fsSize is the size in bytes of the file system holding dir: unknown here.
func fsSize(string) (int64, error) { return 0, errors.New("file system size unknown") }

// isTmpfs reports whether dir is on a tmpfs: never known here.
func isTmpfs(string) bool { return false }
