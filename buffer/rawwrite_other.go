//go:build !linux || !(amd64 || arm64 || arm || riscv64 || loong64)

package buffer

import "os"

// pwriteRaw is os.File.WriteAt where raw system calls are not wired up.
func pwriteRaw(f *os.File, b []byte, off int64) (int, error) { return f.WriteAt(b, off) }
