#!/usr/bin/env bash
# Usage: scripts/bench-cpu.sh BIN N [WINDOW [threads|seconds|strace|perf]]
# Where the agent BIN's CPU goes, as bench.sh's side-by-side run sets it up:
# N fake DS18B20s (the kernel's w1_slave format) read at 1 Hz, MQTT QoS 1 to
# a loopback mosquitto on CPU 1, the page on, the hot tail on a tmpfs, the
# agent pinned to CPU 0 (so GOMAXPROCS is 1). After WARMUP seconds of
# warm-up (default 5), over WINDOW seconds (default 30), it prints:
#   (no mode)  the CPU of all threads (sum of /proc/PID/task/*/schedstat, ns):
#              µs per second and per reading, and the page faults (minflt)
#              per second
#   threads    per thread: µs per second, runs (times scheduled) per second,
#              µs per run — the Go runtime's sysmon is one of the threads
#   strace     strace -f of the window into the run's directory (kept),
#              with $STRACE_OPTS (default -c, a summary)
#   perf       perf record -g into the run's directory (kept)
#   seconds    one line per second: the CPU of all threads (µs) and, per
#              thread, the times it was scheduled (tid:runs); sysmon is
#              the thread scheduled most often, and its runs show which of
#              its two polling modes that second was in (docs/BENCHMARKS.md)
# Env: WARMUP, QOS (default 1), NOMQTT=1 (no output), NOHTTP=1 (no page), EXTRA
# (YAML lines appended to the config), PERF_F (perf's samples per second,
# default 4999), KEEP=1 (keep the run's directory: the agent's config and
# log, e.g. with GODEBUG=gctrace=1 in the environment). Compare two binaries interleaved
# (A, B, A, B, …): the machine's other work moves single runs a lot.
# Numbers, never pass/fail; docs/BENCHMARKS.md quotes it.
set -u
bin=$1 n=$2 win=${3:-30} mode=${4:-}
d=$(mktemp -d /tmp/kelvin-bench-cpu.XXXXXX)
rt=$(mktemp -d /dev/shm/kelvin-bench-cpu.XXXXXX)
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
port=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n' "$port" >"$d/m.conf"
taskset -c 1 mosquitto -c "$d/m.conf" & mpid=$!
w1_tree "$d/w1" "$n"
{
	printf 'agent: { id: bench, data_dir: %s/data }\n' "$d"
	[ -z "${NOMQTT:-}" ] && printf 'mqtt: { url: "tcp://127.0.0.1:%s", qos: %s }\n' "$port" "${QOS:-1}"
	if [ -z "${NOHTTP:-}" ]; then printf 'http: { listen: "127.0.0.1:%s" }\n' "$(free_port)"; else printf 'http: { listen: "" }\n'; fi
	printf 'log: { level: error }\nbuffer: { hot_dir: auto }\nonewire: { sysfs: %s/w1 }\n' "$d"
	w1_sensors "$d/w1" 1s
	[ -n "${EXTRA:-}" ] && printf '%s\n' "$EXTRA"
} >"$d/k.yaml"
sleep 0.3
RUNTIME_DIRECTORY=$rt taskset -c 0 "$bin" run -config "$d/k.yaml" 2>"$d/agent.log" & kpid=$!
trap 'kill $kpid $mpid 2>/dev/null; wait $kpid $mpid 2>/dev/null; rm -rf "$rt"' EXIT
sleep "${WARMUP:-5}"
# minflt: the process's minor page faults so far (field 10 of stat; the
# command name in field 2 has no spaces here).
minflt() { awk '{print $10}' "/proc/$kpid/stat"; }
threads() { for t in /proc/$kpid/task/*; do echo "${t##*/} $(cat "$t/schedstat")"; done; }
finish() { if [ -n "${KEEP:-}" ]; then echo "kept: $d"; else rm -rf "$d"; fi; }
case $mode in
perf)
	perf record -F "${PERF_F:-4999}" -g -p "$kpid" -o "$d/perf.data" -- sleep "$win" >/dev/null 2>&1
	echo "perf: $d/perf.data"
	;;
strace)
	# shellcheck disable=SC2086 # the options are split on purpose
	strace -f ${STRACE_OPTS:--c} -p "$kpid" -o "$d/strace.txt" & spid=$!
	sleep "$win"
	kill -INT "$spid"
	wait "$spid"
	echo "strace: $d/strace.txt"
	;;
seconds)
	for ((i = 0; i < win; i++)); do
		threads | sort >"$d/t0"
		sleep 1
		threads | sort >"$d/t1"
		join "$d/t0" "$d/t1" | awk -v i="$i" '{cpu += $5 - $2; r = r sprintf(" %s:%d", $1, $7 - $4)} END {printf "second %d: %.0f µs,%s\n", i, cpu / 1e3, r}'
	done
	finish
	;;
threads)
	threads | sort >"$d/t0"
	sleep "$win"
	threads | sort >"$d/t1"
	join "$d/t0" "$d/t1" | awk -v w="$win" '{printf "thread %s: %.0f µs/s, %.1f runs/s, %.1f µs/run\n", $1, ($5-$2)/1e3/w, ($7-$4)/w, (($7-$4) > 0 ? ($5-$2)/1e3/($7-$4) : 0)}'
	finish
	;;
*)
	a=$(threads | awk '{s += $2} END {printf "%.0f", s}') fa=$(minflt)
	sleep "$win"
	b=$(threads | awk '{s += $2} END {printf "%.0f", s}') fb=$(minflt)
	awk -v a="$a" -v b="$b" -v n="$n" -v w="$win" -v f=$((fb - fa)) 'BEGIN {printf "%.0f µs CPU per second, %.1f µs per reading, %.1f page faults per second\n", (b-a)/1e3/w, (b-a)/1e3/(n*w), f/w}'
	finish
	;;
esac
