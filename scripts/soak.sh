#!/usr/bin/env bash
# Usage: scripts/soak.sh [BIN]
# A long run of the agent BIN (default: built from this tree) under network
# outages and kill -9, to find what short tests cannot: slow leaks of
# memory, file descriptors or goroutines, and readings lost over hours.
#
# Setup: SENSORS fake DS18B20s (the kernel's w1_slave format) read at 1 Hz,
# MQTT QoS 1 to a loopback mosquitto, the page on, the hot tail on a tmpfs
# that outlives the agent (as systemd's RuntimeDirectory does). The agent
# reaches the broker through scripts/flaky, its network link; a subscriber
# connected to the broker directly records every message.
#
# Every FLAP seconds the link goes down for OUTAGE seconds, alternately cut
# (connections reset, connects refused: the broker's host went away) and
# blackholed (nothing flows, no error: a Wi-Fi link dropped; the agent must
# notice by itself). From KILL_AT seconds on, every KILL seconds (0: never),
# the agent is killed with SIGKILL and started again at once: with the
# defaults in the middle of a cut outage, with the link up, in the middle of
# a blackholed outage, with the link up, and so on. Every SAMPLE seconds one
# CSV row: VmRSS, open descriptors, threads, goroutines, bytes sent to
# storage, CPU ticks, and the buffer's bytes and fsyncs from /metrics. At the end the link stays
# up for DRAIN seconds, the agent is stopped with SIGTERM, and every
# sensor's seqs are checked: each one from the first to the last must have
# arrived, except those a restart announced as skipped (kelvin/{agent}/
# restart). It prints the summary and exits 1 when a reading is missing.
#
# POWERCUT=1 makes each kill a power cut for the buffer: the tmpfs that
# holds the hot tail is emptied before the agent starts again, so the
# restart has only the disk's copies. The README promises that a power cut
# loses at most the readings of the last buffer.sync that no output had
# acknowledged. From outside: per sensor and cut, the newest reading that
# arrived from before the cut must have been taken at most one read
# period (1 s), plus buffer.sync (1 s), plus a second of slack, before it;
# the summary gives the widest such window and about how many readings
# the cuts took (one per second of window beyond the first), and a window
# wider than the bound is a failure.
# The readings in that window are among those the restart announces as
# skipped. Not simulated: the disk still holds what the killed process
# wrote without fsync, which a real cut may lose (the buffer's torn-tail
# tests cover that).
#
# Env: DURATION (seconds, default 3600), SENSORS (8), FLAP (300), OUTAGE
# (60), KILL (450), KILL_AT (330), SAMPLE (30), DRAIN (60), POWERCUT (0),
# OUT (directory kept with the logs, the samples and what the subscriber
# got; default a temporary one). Needs Go, mosquitto, mosquitto-clients, curl and python3.
# Not a test: it runs for an hour; docs/BENCHMARKS.md quotes it.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-3600} SENSORS=${SENSORS:-8} FLAP=${FLAP:-300}
OUTAGE=${OUTAGE:-60} KILL=${KILL:-450} KILL_AT=${KILL_AT:-330}
SAMPLE=${SAMPLE:-30} DRAIN=${DRAIN:-60} POWERCUT=${POWERCUT:-0}
for t in mosquitto mosquitto_sub curl python3; do
	command -v "$t" >/dev/null || {
		echo "soak: $t is missing (apt-get install mosquitto mosquitto-clients curl python3)" >&2
		exit 2
	}
done
d=${OUT:-$(mktemp -d /tmp/kelvin-soak.XXXXXX)}
mkdir -p "$d"
if [ -n "$(ls -A "$d")" ]; then
	echo "soak: $d is not empty: a run needs a new data_dir, whose seqs start at 1" >&2
	exit 2
fi
rt=$(mktemp -d /dev/shm/kelvin-soak.XXXXXX)
bin=${1:-}
if [ -z "$bin" ]; then
	go build -o "$d/kelvin" .
	bin=$d/kelvin
fi
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
go build -o "$d/flaky" ./scripts/flaky
port=$(free_port) link=$(free_port) http=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nlog_dest none\n' "$port" >"$d/m.conf"
w1_tree "$d/w1" "$SENSORS"
{
	printf 'agent: { id: soak, data_dir: %s/data }\n' "$d"
	printf 'mqtt: { url: "tcp://127.0.0.1:%s", qos: 1 }\n' "$link"
	printf 'http: { listen: "127.0.0.1:%s" }\n' "$http"
	printf 'log: { level: info }\nbuffer: { hot_dir: auto }\nonewire: { sysfs: %s/w1 }\n' "$d"
	w1_sensors "$d/w1" 1s
} >"$d/k.yaml"

mpid= fpid= kpid= spid= down=
agent_up() {
	RUNTIME_DIRECTORY=$rt "$bin" run -config "$d/k.yaml" 2>>"$d/agent.log" &
	kpid=$!
}
cleanup() {
	kill $kpid $spid $fpid $mpid 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$rt"
}
trap cleanup EXIT

mosquitto -c "$d/m.conf" &
mpid=$!
sleep 0.3
"$d/flaky" -listen "127.0.0.1:$link" -to "127.0.0.1:$port" 2>>"$d/agent.log" &
fpid=$!
mosquitto_sub -p "$port" -q 1 -v -t 'kelvin/#' >"$d/received.txt" &
spid=$!
sleep 0.3
agent_up
echo "t,pid,rss_kib,fds,threads,goroutines,write_bytes,cpu_ticks,buffer_bytes,fsyncs,link" >"$d/samples.csv"
metric() { awk -v m="$1" '$1 == m {print $2; exit}' "$d/metrics.txt"; }
sample() {
	local t=$1 rss fds thr io cpu
	[ -d "/proc/$kpid" ] || return 0
	rss=$(awk '/^VmRSS/ {print $2}' "/proc/$kpid/status")
	thr=$(awk '/^Threads/ {print $2}' "/proc/$kpid/status")
	fds=$(ls "/proc/$kpid/fd" | wc -l)
	io=$(awk '/^write_bytes/ {w = $2} /^cancelled_write_bytes/ {c = $2} END {print w - c}' "/proc/$kpid/io")
	cpu=$(awk '{print $14 + $15}' "/proc/$kpid/stat")
	curl -s -m 5 "http://127.0.0.1:$http/metrics" >"$d/metrics.txt" || : >"$d/metrics.txt"
	echo "$t,$kpid,$rss,$fds,$thr,$(metric go_goroutines),$io,$cpu,$(metric kelvin_buffer_bytes),$(metric kelvin_buffer_fsyncs_total),${down:-up}" >>"$d/samples.csv"
}
echo "soak: $DURATION s, $SENSORS sensors, link down ${OUTAGE}s every ${FLAP}s, $([ "$POWERCUT" = 1 ] && echo "power cut" || echo "kill -9") every ${KILL}s from ${KILL_AT}s; $d"
: >"$d/cuts.txt"
# Second t of the run is due at start + t (µs of the wall clock), whatever
# the previous second's work took.
start=${EPOCHREALTIME/[.,]/} n=0
for ((t = 1; t <= DURATION; t++)); do
	wait_us=$((start + t * 1000000 - ${EPOCHREALTIME/[.,]/}))
	if ((wait_us > 0)); then sleep "$(printf '%d.%06d' $((wait_us / 1000000)) $((wait_us % 1000000)))"; fi
	if ((t % FLAP == 0 && t + OUTAGE <= DURATION)); then
		n=$((n + 1))
		if ((n % 2)); then down=cut sig=USR1; else down=blackhole sig=HUP; fi
		kill -"$sig" "$fpid"
		echo "soak: t=$t link $down" >>"$d/agent.log"
	fi
	if [ -n "$down" ] && ((t % FLAP >= OUTAGE)); then
		kill -USR2 "$fpid"
		down=
		echo "soak: t=$t link up" >>"$d/agent.log"
	fi
	if ((KILL > 0 && t >= KILL_AT && (t - KILL_AT) % KILL == 0)); then
		kill -KILL "$kpid"
		wait "$kpid" 2>/dev/null || true
		if [ "$POWERCUT" = 1 ]; then
			echo "${EPOCHREALTIME/,/.}" >>"$d/cuts.txt"
			find "$rt" -mindepth 1 -delete # the memory a power cut takes
			echo "soak: t=$t kill -9 and the tmpfs emptied: a power cut" >>"$d/agent.log"
		else
			echo "soak: t=$t kill -9" >>"$d/agent.log"
		fi
		agent_up
	fi
	if ((t % SAMPLE == 0)); then sample "$t"; fi
done
[ -n "$down" ] && kill -USR2 "$fpid"
down=
sleep "$DRAIN"
sample drained
kill -TERM "$kpid"
wait "$kpid" || echo "soak: the agent exited with status $?" >>"$d/agent.log"
kpid=
sleep 2
kill "$spid" 2>/dev/null || true
wait "$spid" 2>/dev/null || true
spid=

python3 - "$d" <<'EOF'
import csv, json, sys
from datetime import datetime
d = sys.argv[1]
seqs, skips, dup, other = {}, {}, 0, 0
taken = {}  # per sensor, when each reading received was taken (unix s)
for line in open(f"{d}/received.txt", encoding="utf-8", errors="replace"):
    topic, _, payload = line.rstrip("\n").partition(" ")
    try:
        m = json.loads(payload)
    except ValueError:
        other += 1
        continue
    if topic.endswith("/restart") and isinstance(m, dict):
        for s, first in (m.get("skip_from") or {}).items():
            skips.setdefault(s, []).append((first, m["seq_resume"][s]))
        continue
    if not isinstance(m, dict) or "seq" not in m:
        other += 1
        continue
    got = seqs.setdefault(m["sensor"], set())
    dup += m["seq"] in got
    got.add(m["seq"])
    taken.setdefault(m["sensor"], []).append(datetime.fromisoformat(m["ts"].replace("Z", "+00:00")).timestamp())
missing = 0
for s, got in sorted(seqs.items()):
    skipped = set()
    for a, b in skips.get(s, []):
        skipped.update(range(a, b))
    want = set(range(1, max(got) + 1)) - skipped  # a new data_dir starts at 1
    lost = sorted(want - got)
    missing += len(lost)
    if lost:
        print(f"{s}: seqs 1..{max(got)}, {len(got)} received, {len(skipped)} announced as skipped, {len(lost)} missing (first {lost[:5]})")
rows = list(csv.DictReader(open(f"{d}/samples.csv")))
def col(k):
    return [float(r[k]) for r in rows if r[k] not in ("", None)]
print(f"readings: {sum(len(g) for g in seqs.values())} distinct from {len(seqs)} sensors, {dup} duplicates, {missing} missing; other messages: {other}")
for k, unit in (("rss_kib", "KiB"), ("fds", ""), ("threads", ""), ("goroutines", ""), ("buffer_bytes", "B")):
    v = col(k)
    if v:
        print(f"{k}: first {v[0]:.0f}, last {v[-1]:.0f}, min {min(v):.0f}, max {max(v):.0f} {unit}")
pids = [r["pid"] for r in rows]
print(f"agent runs: {len(dict.fromkeys(pids))}; samples: {len(rows)}")
# Power cuts: per sensor and cut, how long before the cut the newest
# reading that arrived from before it was taken.
cuts = [float(x) for x in open(f"{d}/cuts.txt").read().split()]
bound, worst = 3.0, 0.0
if cuts:
    windows = []
    for s, ts in sorted(taken.items()):
        for k in cuts:
            before = [t for t in ts if t <= k]
            if before:
                windows.append((k - max(before), s, k))
    windows.sort()
    worst = windows[-1][0] if windows else 0.0
    med = windows[len(windows) // 2][0] if windows else 0.0
    lost = sum(max(0, round(w) - 1) for w, _, _ in windows)  # read every second
    print(f"power cuts: {len(cuts)}; newest reading delivered from before a cut: taken {med:.2f} s before it (median of {len(windows)}), {worst:.2f} s at most (bound {bound:.0f} s); about {lost} readings lost to the cuts")
    for w, s, k in windows[::-1][:3]:
        if w > bound:
            print(f"  {s}: nothing taken in the {w:.2f} s before the cut at {k:.3f} arrived")
sys.exit(1 if missing or worst > bound else 0)
EOF
