//go:build !linux

package sensors

import "os"

// readSysfs reads the whole of a small file; sysfs exists on Linux only
// (see sysfs_linux.go).
func readSysfs(name string) ([]byte, error) { return os.ReadFile(name) }

// sysfsFile is a file read whole at each read; on Linux it is a sysfs
// attribute kept open between reads (see sysfs_linux.go).
type sysfsFile struct{ name string }

func newSysfsFile(name string, _ int) *sysfsFile { return &sysfsFile{name: name} }

func (f *sysfsFile) ReadFile() ([]byte, error) { return os.ReadFile(f.name) }

func (f *sysfsFile) WriteFile(data []byte) error { return osW1FS{}.WriteFile(f.name, data) }

func (f *sysfsFile) Close() error { return nil }
