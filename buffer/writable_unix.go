//go:build unix

package buffer

import "syscall"

// writable reports whether this process may create files in dir
// (access(2) with W_OK: the real uid's permission, as the kernel checks it).
func writable(dir string) bool {
	return syscall.Access(dir, 2 /* W_OK */) == nil
}
