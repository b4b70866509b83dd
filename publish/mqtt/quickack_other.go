//go:build !linux

package mqtt

func setQuickAck(uintptr) {}
