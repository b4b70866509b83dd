package buffer

import "syscall"

// fsSize is the size in bytes of the file system holding dir.
func fsSize(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Blocks) * int64(st.Bsize), nil // Bsize is int32 on 32-bit ARM
}
