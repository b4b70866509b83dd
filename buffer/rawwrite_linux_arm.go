package buffer

// pwriteOff is pwrite64's offset as its last three arguments: on 32-bit
// ARM (EABI) a padding word, then the low and the high half, as the
// syscall package's own pwrite passes it.
func pwriteOff(off int64) (a4, a5, a6 uintptr) { return 0, uintptr(off), uintptr(off >> 32) }
