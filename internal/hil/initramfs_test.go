//go:build linux

package hil

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strconv"
	"testing"
)

// File modes of initramfs entries (type bits as in stat(2)).
const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeChar = 0o020000
)

// cpioFile is one entry of an initramfs.
type cpioFile struct {
	Name         string // without the leading slash: "init", "etc/kelvin.yaml"
	Mode         uint32 // type and permission bits: modeFile|0o755
	Data         []byte
	Major, Minor uint32 // of a device node
}

// writeInitramfs writes files as a gzip-compressed "newc" cpio archive, the
// format the kernel unpacks into its rootfs (cpio(5): "new ASCII" format;
// Linux: Documentation/driver-api/early-userspace/buffer-format.rst).
// Directories must come before what they hold. gzip's fastest level: the
// guest's decompression is emulated, and the archive is made on every run.
func writeInitramfs(w io.Writer, files []cpioFile) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	var off int64
	write := func(b []byte) error {
		n, err := zw.Write(b)
		off += int64(n)
		return err
	}
	pad := func() error {
		if r := off % 4; r != 0 {
			return write(make([]byte, 4-r))
		}
		return nil
	}
	entry := func(ino int, f cpioFile) error {
		nlink := 1
		if f.Mode&0o170000 == modeDir {
			nlink = 2
		}
		// magic, then 13 fields of 8 hex digits: ino, mode, uid, gid,
		// nlink, mtime, filesize, devmajor, devminor, rdevmajor,
		// rdevminor, namesize (with the NUL), check (0 for newc).
		h := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, f.Mode, 0, 0, nlink, 0, len(f.Data), 0, 0, f.Major, f.Minor, len(f.Name)+1, 0)
		if err := write([]byte(h + f.Name + "\x00")); err != nil {
			return err
		}
		if err := pad(); err != nil {
			return err
		}
		if err := write(f.Data); err != nil {
			return err
		}
		return pad()
	}
	for i, f := range files {
		if err := entry(i+1, f); err != nil {
			return err
		}
	}
	if err := entry(0, cpioFile{Name: "TRAILER!!!"}); err != nil {
		return err
	}
	return zw.Close()
}

// readInitramfs parses what writeInitramfs wrote.
func readInitramfs(r io.Reader) ([]cpioFile, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	var out []cpioFile
	off := 0
	align := func() { off = (off + 3) &^ 3 }
	for {
		if off+110 > len(b) || string(b[off:off+6]) != "070701" {
			return nil, fmt.Errorf("no newc header at offset %d", off)
		}
		field := func(i int) uint32 {
			v, _ := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			return uint32(v)
		}
		mode, size, major, minor, namesize := field(1), field(6), field(9), field(10), field(11)
		name := string(b[off+110 : off+110+int(namesize)-1])
		off += 110 + int(namesize)
		align()
		if name == "TRAILER!!!" {
			return out, nil
		}
		out = append(out, cpioFile{Name: name, Mode: mode, Data: b[off : off+int(size)], Major: major, Minor: minor})
		off += int(size)
		align()
	}
}

// TestInitramfsFormat writes an archive with a directory, files whose sizes
// need each amount of padding, and a device node, and reads it back.
func TestInitramfsFormat(t *testing.T) {
	in := []cpioFile{
		{Name: "dev", Mode: modeDir | 0o755},
		{Name: "dev/console", Mode: modeChar | 0o600, Major: 5, Minor: 1},
		{Name: "init", Mode: modeFile | 0o755, Data: []byte("#!")},
		{Name: "a", Mode: modeFile | 0o644, Data: []byte("x")},
		{Name: "bb", Mode: modeFile | 0o644, Data: []byte("xyz")},
		{Name: "ccc", Mode: modeFile | 0o644, Data: []byte("wxyz")},
	}
	var buf bytes.Buffer
	if err := writeInitramfs(&buf, in); err != nil {
		t.Fatal(err)
	}
	out, err := readInitramfs(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%+v", out) != fmt.Sprintf("%+v", in) {
		t.Errorf("read back\n%+v\nwant\n%+v", out, in)
	}
}
