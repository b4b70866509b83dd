//go:build !linux

package mqtt

import "syscall"

// Elsewhere than Linux the connection's own Read and Write are used.
const haveRawIO = false

func rawRead(syscall.RawConn, []byte) (int, error)  { panic("no raw I/O") }
func rawWrite(syscall.RawConn, []byte) (int, error) { panic("no raw I/O") }

func setLowat(syscall.RawConn, int) {}

func setQuickAck(uintptr) {}
