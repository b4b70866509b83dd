//go:build !linux

package sensors

import "os"

// readSysfs reads the whole of a small file; sysfs exists on Linux only
// (see sysfs_linux.go).
func readSysfs(name string) ([]byte, error) { return os.ReadFile(name) }
