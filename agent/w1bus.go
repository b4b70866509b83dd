package agent

import (
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/kelvin-gw/kelvin/sensors"
)

// w1Buses keeps what the kernel 1-Wire bulk reader found out about each
// bus: it logs, once per bus and reason, whether the bus converts in bulk
// or why it falls back to one conversion per sensor, and gives the page a
// notice for every bus that falls back now. Its methods are safe for
// concurrent use.
type w1Buses struct {
	log *slog.Logger

	mu     sync.Mutex
	now    map[string]sensors.W1BusStatus // per master, the latest
	logged map[[2]string]bool             // master and reason already logged
}

func newW1Buses(log *slog.Logger) *w1Buses {
	return &w1Buses{log: log, now: map[string]sensors.W1BusStatus{}, logged: map[[2]string]bool{}}
}

// report takes a bus's new status (sensors.W1Bulk.OnBusChange).
func (w *w1Buses) report(st sensors.W1BusStatus) {
	w.mu.Lock()
	w.now[st.Master] = st
	key := [2]string{st.Master, st.Reason()}
	first := !w.logged[key]
	w.logged[key] = true
	w.mu.Unlock()
	if !first {
		return
	}
	if st.Bulk() {
		w.log.Info(st.String(), "bus", st.Master, "sensors", st.Devices)
	} else {
		w.log.Warn(st.String(), "bus", st.Master, "sensors", st.Devices, "err", st.Err)
	}
}

// notices returns one sentence per bus that falls back now, sorted by bus.
func (w *w1Buses) notices() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, m := range slices.Sorted(maps.Keys(w.now)) {
		if st := w.now[m]; !st.Bulk() {
			out = append(out, st.String())
		}
	}
	return out
}
