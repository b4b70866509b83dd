//go:build unix

package buffer

import "testing"

// OpenWith calls Locked once the directory is locked, and not when another
// Log holds it.
func TestOpenWithLocked(t *testing.T) {
	dir := t.TempDir()
	calls := 0
	l, err := OpenWith(dir, Config{HotDir: HotDirOff}, nil, nil, OpenOptions{Locked: func() { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if calls != 1 {
		t.Fatalf("Locked called %d times, want 1", calls)
	}
	if _, err := OpenWith(dir, Config{HotDir: HotDirOff}, nil, nil, OpenOptions{Locked: func() { calls++ }}); err == nil {
		t.Fatal("a second OpenWith of a locked directory succeeded")
	}
	if calls != 1 {
		t.Errorf("Locked called for a directory another Log holds")
	}
}
