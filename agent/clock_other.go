//go:build !linux

package agent

func boottime() int64 { return 0 }

func kernelSynced() bool { return true }
