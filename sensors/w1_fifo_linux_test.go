package sensors

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
)

// TestW1ReadBlockedFIFO emulates the kernel's blocking w1_slave read with a
// FIFO that nobody writes: Read must return when its context is cancelled,
// refuse a second read while the first is stuck, and work again once the
// stuck read finishes.
func TestW1ReadBlockedFIFO(t *testing.T) {
	t.Parallel()
	sysfs := t.TempDir()
	const address = "28-0316a2b8ff01"
	dir := filepath.Join(sysfs, address)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	slave := filepath.Join(dir, "w1_slave")
	if err := syscall.Mkfifo(slave, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	w, err := NewW1(sysfs, address, fixedClock)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := w.Read(ctx)
		errc <- err
	}()

	// Wait until the reader is on the FIFO: a non-blocking open for
	// writing fails with ENXIO until some process has it open for reading.
	// Holding the write end open without writing keeps the reader blocked
	// in read(2), as a conversion in progress would.
	fd := -1
	testenv.WaitFor(t, "the reader to open the FIFO", func() bool {
		fd, err = syscall.Open(slave, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if err != nil && !errors.Is(err, syscall.ENXIO) {
			t.Fatalf("open the FIFO for writing: %v", err)
		}
		return err == nil
	})
	defer func() {
		if fd >= 0 {
			syscall.Close(fd)
		}
	}()

	if _, err := w.Read(context.Background()); !errors.Is(err, ErrBusy) {
		t.Errorf("Read during a blocked read: %v, want ErrBusy", err)
	}
	cancel()
	select {
	case err := <-errc:
		if err != context.Canceled {
			t.Errorf("Read after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return after its context was cancelled")
	}

	// Replace the FIFO with a regular file for the next read, then let the
	// stuck read finish with some bytes and EOF; its result is dropped.
	if err := os.Remove(slave); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(slave, readW1Fixture(t, address), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := syscall.Write(fd, []byte("late\n")); err != nil {
		t.Fatal(err)
	}
	syscall.Close(fd)
	fd = -1
	if got := pollRead(t, w); got != 25.875 {
		t.Errorf("Read after the blocked read finished: %v °C, want 25.875", got)
	}
}
