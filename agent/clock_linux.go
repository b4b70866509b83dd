package agent

import (
	"syscall"
	"unsafe"
)

const (
	clockBoottime = 7    // CLOCK_BOOTTIME
	staUnsync     = 0x40 // STA_UNSYNC in struct timex's status
)

func boottime() int64 {
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockBoottime, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0
	}
	return ts.Nano()
}

// kernelSynced reads the kernel's clock status (adjtimex with no change).
func kernelSynced() bool {
	var tx syscall.Timex
	if _, err := syscall.Adjtimex(&tx); err != nil {
		return true // cannot tell: trust it rather than mark every reading
	}
	return tx.Status&staUnsync == 0
}
