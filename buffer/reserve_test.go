package buffer

import (
	"testing"

	"github.com/kelvin-gw/kelvin/reading"
)

// OpenWith reserves the known sensors with Open's own reservation write: their
// first readings write none; an unknown sensor's first reading still does.
func TestOpenWithReservesKnownSensors(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenWith(dir, Config{Sync: "1h", HotDir: HotDirOff}, nil, nil, OpenOptions{Sensors: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if n := l.Stats().Reservations; n != 1 {
		t.Fatalf("reservations after OpenWith = %d, want 1", n)
	}
	r, err := readReservation(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"a", "b"} {
		if r.seqs[s] != reserveBlock {
			t.Errorf("SEQ reserves %s up to %d, want %d", s, r.seqs[s], reserveBlock)
		}
	}
	if err := l.Append([]reading.Reading{rd("a", 1), rd("b", 2)}); err != nil {
		t.Fatal(err)
	}
	if n := l.Stats().Reservations; n != 1 {
		t.Errorf("reservations after the known sensors' first readings = %d, want 1", n)
	}
	if err := l.Append([]reading.Reading{rd("c", 3)}); err != nil {
		t.Fatal(err)
	}
	if n := l.Stats().Reservations; n != 2 {
		t.Errorf("reservations after an unknown sensor's first reading = %d, want 2", n)
	}
}
