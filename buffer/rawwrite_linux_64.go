//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package buffer

// pwriteOff is pwrite64's offset as its last three arguments: one
// register on a 64-bit system.
func pwriteOff(off int64) (a4, a5, a6 uintptr) { return uintptr(off), 0, 0 }
