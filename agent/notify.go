package agent

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"
)

// notifier speaks systemd's sd_notify protocol over $NOTIFY_SOCKET, so the
// unit can be Type=notify with a watchdog. Without the variable it does
// nothing.
type notifier struct {
	addr string
	log  *slog.Logger
}

func newNotifier(log *slog.Logger) *notifier {
	return &notifier{addr: os.Getenv("NOTIFY_SOCKET"), log: log}
}

// send writes one state datagram ("READY=1", "WATCHDOG=1", "STOPPING=1").
func (n *notifier) send(state string) {
	if n.addr == "" {
		return
	}
	addr := n.addr
	if addr[0] == '@' { // abstract socket
		addr = "\x00" + addr[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		n.log.Debug("sd_notify failed", "state", state, "err", err)
		return
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		n.log.Debug("sd_notify failed", "state", state, "err", err)
	}
}

// watchdogInterval returns half of $WATCHDOG_USEC (how often systemd wants
// to hear from us), or 0 when no watchdog is set for this process.
func watchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// watchdog pings systemd every interval while healthy() holds, until ctx
// is done. When the pipeline stalls, the pings stop and systemd restarts
// the service. The pings fall on the agent's read grid (grid plus whole
// intervals; the interval is half of WatchdogSec, whole seconds in
// practice), so that the process wakes for them together with the
// sensors rather than once more at an instant of their own. now is the
// clock grid was read from.
func (n *notifier) watchdog(ctx context.Context, grid time.Time, now func() time.Time, interval time.Duration, healthy func() bool) {
	if n.addr == "" || interval <= 0 {
		return
	}
	next := grid.Add(interval)
	t := time.NewTimer(next.Sub(now()))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if healthy() {
				n.send("WATCHDOG=1")
			} else {
				n.log.Warn("pipeline stalled: not pinging the systemd watchdog")
			}
			next = next.Add(interval)
			if late := now().Sub(next); late >= 0 { // skip the pings missed, stay on the grid
				next = next.Add((late/interval + 1) * interval)
			}
			t.Reset(next.Sub(now()))
		}
	}
}
