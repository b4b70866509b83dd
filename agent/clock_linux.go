package agent

import (
	"syscall"
	"unsafe"
)

const (
	clockBoottime = 7    // CLOCK_BOOTTIME
	staUnsync     = 0x40 // STA_UNSYNC in struct timex's status
)

// Both calls below are raw (syscall.RawSyscall): they never block, and
// syscall.Syscall would wake the runtime's sysmon thread from its deep
// sleep (see rawio_linux.go in publish/mqtt).

func boottime() int64 {
	var ts syscall.Timespec
	if _, _, e := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockBoottime, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0
	}
	return ts.Nano()
}

// kernelSynced reads the kernel's clock status (adjtimex with no change).
func kernelSynced() bool {
	var tx syscall.Timex
	if _, _, e := syscall.RawSyscall(syscall.SYS_ADJTIMEX, uintptr(unsafe.Pointer(&tx)), 0, 0); e != 0 {
		return true // cannot tell: trust it rather than mark every reading
	}
	return tx.Status&staUnsync == 0
}
