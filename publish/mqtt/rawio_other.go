//go:build !linux || 386

package mqtt

import "net"

// Elsewhere than Linux the connection's own Read and Write are used.
type rawSock struct{}

func newRawSockFor(net.Conn) *rawSock { return nil }

func (*rawSock) Read([]byte) (int, error)  { panic("no raw I/O") }
func (*rawSock) Write([]byte) (int, error) { panic("no raw I/O") }
func (*rawSock) SetLowat(int)              {}

func setQuickAck(uintptr) {}
