package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// OpenUnder counts this process's file descriptors open on files under dir
// (read from /proc/self/fd), so that tests running in parallel, which open
// files elsewhere, do not disturb the count. It skips the test where there
// is no /proc/self/fd.
func OpenUnder(t testing.TB, dir string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.HasPrefix(target, dir+string(filepath.Separator)) {
			n++
		}
	}
	return n
}
