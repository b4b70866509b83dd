//go:build !unix

package buffer

import "os"

// writable reports whether dir's owner may write it. Without access(2)
// (Windows: a development machine, never a gateway) the permission bits
// are the best cheap answer; Open reports a real failure to write anyway.
func writable(dir string) bool {
	st, err := os.Stat(dir)
	return err == nil && st.Mode().Perm()&0o200 != 0
}
