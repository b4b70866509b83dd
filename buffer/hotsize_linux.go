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

// tmpfsMagic is TMPFS_MAGIC, a tmpfs's f_type in statfs.
const tmpfsMagic = 0x01021994

// isTmpfs reports whether dir is on a tmpfs: memory, where a small write
// is a copy into the page cache and never waits for a device.
func isTmpfs(dir string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && int64(st.Type) == tmpfsMagic
}
