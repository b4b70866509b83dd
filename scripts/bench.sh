#!/usr/bin/env bash
# Measures Kelvin: the Go benchmarks of every stage (with their baselines,
# e.g. mosquitto_pub on the same broker), the running agent's memory, CPU
# and start-up time against a loopback mosquitto, and the binary sizes.
# Prints Markdown tables of medians with min–max; docs/BENCHMARKS.md quotes
# them. Numbers, never pass/fail: nothing here is a test.
#
# Usage: scripts/bench.sh [all|go|agent|start|disk|together|size]
#   go     go test -bench of every package, COUNT runs each, one at a time,
#          so that a benchmark and its baseline (sub-benchmarks) interleave
#   agent  kelvin run with 1 (idle), 8 and 64 simulated sensors at 1 Hz
#          publishing at QoS 1: VmRSS, RssAnon and CPU share over WINDOW
#          seconds; bytes sent to storage and fsyncs per day (DISK_WINDOW
#          seconds, strace) at 8 and 64 sensors, with the buffer's hot tail
#          and without it (hot_dir: off, every reading written), the page on
#          and off (its history archive writes too); and start → first
#          message at the broker
#   start  only start → first message
#   disk   only the bytes to storage and fsyncs
#   together  (TELEGRAF only) Kelvin and Telegraf run at the same time, on
#          the same CPU, their CPU read at the same instants: a ratio per
#          window that the machine's load moves alike for both (SIZES,
#          COUNT rounds, WINDOW, WARMUP)
#   size   stripped binaries for every target, with and without Kafka
#
# With TELEGRAF=/path/to/telegraf, agent, start and disk measure Kelvin side
# by side with Telegraf on the same work: 8 and 64 DS18B20-style devices in
# a fake sysfs tree (w1_slave for Kelvin, a millidegree temperature file
# beside it for Telegraf's inputs.multifile), read at 1 Hz and published at
# QoS 1 as one JSON message per reading to the same broker. Runs interleave
# (Kelvin, Telegraf, Kelvin, …), both agents pinned to CPU 0 and the broker
# to CPU 1, each started under strace --seccomp-bpf (only fsync and
# fdatasync stop the process; the calls inside the window are
# counted), and every table gains a row of ratios Kelvin/Telegraf. Kelvin
# runs as packaged (hot tail, page on); the Kelvin-only rows of agent and
# disk (hot_dir: off, outage) are left out. The Telegraf config is written
# at run time into the temporary directory; the binary is built elsewhere
# (docs/BENCHMARKS.md).
#
# With BASELINE=/path/to/kelvin (another build, e.g. of main), start runs
# it too, interleaved with this tree's (and Telegraf), on the same config:
# a before/after comparison in one run, under the same load.
#
# Environment: COUNT (default 5), WINDOW (seconds, default 30),
# DISK_WINDOW (seconds, default 60), DISK_COUNT (default 3),
# START_COUNT (start runs, default COUNT, 9 with TELEGRAF), TELEGRAF,
# BASELINE, OUT (raw output directory, default a temporary one), SIZES
# (the sensor counts of disk with TELEGRAF, default "8 64"), STRACE=0 (with
# TELEGRAF: run the agents without strace, so that tracing costs neither
# anything: CPU and memory only, no fsync count), WARMUP (with TELEGRAF:
# seconds between an agent's start and its window, default 5; a few
# minutes measure the steady state of a long-running agent), SYSTEMS (with
# TELEGRAF: which of "kelvin telegraf floor paho" run, default all four;
# also kelvinall, Kelvin with agent.cpus: 0, and telegraf1p, Telegraf with
# GOMAXPROCS=1, the one-CPU setting Kelvin has by default), PIN=0 (with
# TELEGRAF: leave the agents unpinned, as a service runs, each with the
# CPUs of its own setting; the broker stays on CPU 1).
# Needs mosquitto and mosquitto-clients (scripts/test.sh installs them),
# python3 (scripts/lib.sh finds free ports with it), and strace for disk
# and for TELEGRAF.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

mode=${1:-all}
COUNT=${COUNT:-5}
WINDOW=${WINDOW:-30}
TELEGRAF=${TELEGRAF:-}
START_COUNT=${START_COUNT:-$([ -n "$TELEGRAF" ] && echo 9 || echo "$COUNT")}
if [ -n "$TELEGRAF" ] && [ ! -x "$TELEGRAF" ]; then
	echo "bench.sh: TELEGRAF=$TELEGRAF is not an executable" >&2
	exit 1
fi
BASELINE=${BASELINE:-}
if [ -n "$BASELINE" ] && [ ! -x "$BASELINE" ]; then
	echo "bench.sh: BASELINE=$BASELINE is not an executable" >&2
	exit 1
fi
OUT=${OUT:-$(mktemp -d /tmp/kelvin-bench.XXXXXX)}
mkdir -p "$OUT"

machine() {
	echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3), $(date -u +%F)"
}

bench_go() {
	echo "== go benchmarks (COUNT=$COUNT; raw output in $OUT/go.txt)"
	: >"$OUT/go.txt"
	run() { # package, pattern, benchtime
		echo "-- $1 $2" >&2
		# -count N would run all N repeats of one sub-benchmark before the
		# next; COUNT runs of -count 1 interleave a benchmark with its
		# baseline (A B A B), as comparisons here need.
		for _ in $(seq "$COUNT"); do
			go test -run '^$' -bench "$2" -benchtime "$3" -count 1 "$1" | tee -a "$OUT/go.txt" >/dev/null
		done
	}
	run ./filter Chain 1s
	run ./reading 'AppendJSON|Format' 1s
	run ./buffer 'Append$' 1s
	run ./buffer FsyncsPaced 1x
	run ./buffer 'Drain$' 2x
	run ./buffer BacklogMemory 1x
	run ./publish/mqtt 'Drain$' 3x
	run ./publish/kafka PublishZstd 2s
	run ./httpui PublishFanout 2s
	run ./httpui FanoutLatency 200x
	run ./httpui ServePage 1s
	run ./sensors W1BulkVsSequential 3x
	run ./agent ReadingPath 2s
	run ./agent 'IngestHTTP' 3x
	run ./agent 'IngestMQTT' 2000x
	machine
	go run ./scripts/benchsum <"$OUT/go.txt"
}


find_prog() {
	command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || {
		echo "bench.sh: $1 not found: apt-get install $2" >&2
		exit 1
	}
}

# cpu_ns pid: the CPU time of pid's threads in nanoseconds (the sum of
# /proc/PID/task/*/schedstat), not in 10 ms clock ticks as /proc/PID/stat
# counts it: at 8 sensors an agent uses a few ticks a minute, too few to
# compare two of them.
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'; }

# cpu_pct ns prints ns of CPU over WINDOW seconds as a share of one core, %.
cpu_pct() { awk -v d="$1" -v w="$WINDOW" 'BEGIN {printf "%.3f", 100*d/1e9/w}'; }

median() { sort -n | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else printf "%.2f\n", (v[NR/2]+v[NR/2+1])/2}'; }

bench_agent() {
	local mosq sub bin dir port
	mosq=$(find_prog mosquitto mosquitto)
	sub=$(find_prog mosquitto_sub mosquitto-clients)
	dir=$(mktemp -d /tmp/kelvin-bench-agent.XXXXXX)
	bin=$dir/kelvin
	CGO_ENABLED=0 go build -tags nethttpomithttp2 -trimpath -ldflags "-s -w" -o "$bin" .
	port=$(free_port)
	printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n' "$port" >"$dir/mosquitto.conf"
	# Side by side, the broker (and the counting subscriber) get CPU 1 and
	# the two agents CPU 0 (with PIN=0, whatever CPU the kernel gives them).
	local pin0=() pin1=()
	[ -n "$TELEGRAF" ] && pin1=(taskset -c 1)
	[ -n "$TELEGRAF" ] && [ "${PIN:-1}" != 0 ] && pin0=(taskset -c 0)
	"${pin1[@]}" "$mosq" -c "$dir/mosquitto.conf" &
	local mpid=$!
	trap 'kill $mpid 2>/dev/null || true; rm -rf "$dir"' RETURN
	sleep 0.5
	config() { # sensors interval [hot_dir [page: on|off [broker: up|down]]]
		local i p=$port
		[ "${5:-up}" = down ] && p=$(free_port) # nothing listens there: an outage
		printf 'agent: { id: bench, data_dir: %s/data }\nmqtt: { url: "tcp://127.0.0.1:%s", qos: 1 }\nlog: { level: error }\nbuffer: { hot_dir: %s }\n' "$dir" "$p" "${3:-auto}"
		if [ "${4:-on}" = on ]; then
			printf 'http: { listen: "127.0.0.1:%s" }\n' "$(free_port)"
		else
			printf 'http: { listen: "" }\n' # no page, no history archive
		fi
		printf 'sensors:\n'
		for ((i = 0; i < $1; i++)); do
			printf '  - { id: s%d, type: sim, interval: %s, filters: [ {median: 3}, {ema: 0.3}, {round: 2} ] }\n' "$i" "$2"
		done
	}

	# The hot tail's tmpfs, as systemd's RuntimeDirectory= gives it.
	local run
	run=$(mktemp -d /dev/shm/kelvin-bench-run.XXXXXX)
	export RUNTIME_DIRECTORY=$run
	trap 'kill $mpid 2>/dev/null || true; rm -rf "$dir" "$run"' RETURN
	case ${1:-}:$TELEGRAF in
	start:) agent_start ;;
	disk:) agent_disk ;;
	start:*) peer_start ;;
	disk:*) peer_disk ${SIZES:-8 64} ;;
	together:*) peer_together ${SIZES:-8 64} ;;
	together:)
		echo "bench.sh: together needs TELEGRAF=/path/to/telegraf" >&2
		return 2
		;;
	*:)
		agent_rss
		agent_disk
		agent_start
		;;
	*)
		peer_disk 1 8 64
		peer_start
		;;
	esac
}

# agent_disk: what the running agent sends to storage (write_bytes −
# cancelled_write_bytes of /proc/PID/io: tmpfs writes are not storage) and
# the fsync/fdatasync calls strace counts, over DISK_WINDOW seconds after 5 s
# of warm-up, projected to a day. The rows without the page show the buffer
# alone; the page adds its history archive (httpui/archive.go). The rows
# with the broker down measure an outage: every reading is stored on disk,
# and "B/reading" is what each one costs the storage.
agent_disk() {
	local strace
	strace=$(find_prog strace strace)
	local win=${DISK_WINDOW:-60} count=${DISK_COUNT:-3}
	echo
	echo "== agent: bytes to storage and fsyncs (DISK_WINDOW=${win}s, DISK_COUNT=$count; projected per day; /proc/PID/io, strace -f -c)"
	machine
	echo "data_dir on $(df --output=fstype "$dir" | tail -1), hot tail on $(df --output=fstype "$RUNTIME_DIRECTORY" | tail -1)"
	echo
	echo "| sensors @ 1 Hz | buffer | page | broker | MB/day to storage | fsyncs/day | B to storage per reading |"
	echo "|---|---|---|---|---:|---:|---:|"
	local row
	for row in ${DISK_ROWS:-8:auto:on:up 8:auto:off:up 8:off:on:up 64:auto:on:up 64:off:on:up 8:auto:off:down 8:off:off:down}; do
		local n hot page broker
		IFS=: read -r n hot page broker <<<"$row"
		config "$n" 1s "$hot" "$page" "$broker" >"$dir/kelvin.yaml"
		local mb=() fs=() per=()
		local c
		for ((c = 0; c < count; c++)); do
			rm -rf "$dir/data" "${RUNTIME_DIRECTORY:?}"/*
			"$bin" run -config "$dir/kelvin.yaml" 2>>"$OUT/agent.log" &
			local pid=$!
			sleep 5
			local w0 w1
			w0=$(awk '/^write_bytes/ {w=$2} /^cancelled_write_bytes/ {c=$2} END {print w-c}' "/proc/$pid/io")
			"$strace" -f -c -e trace=fsync,fdatasync -p "$pid" -o "$OUT/strace.txt" 2>/dev/null &
			local spid=$!
			sleep "$win"
			kill -INT "$spid"
			wait "$spid" || true
			w1=$(awk '/^write_bytes/ {w=$2} /^cancelled_write_bytes/ {c=$2} END {print w-c}' "/proc/$pid/io")
			kill -TERM "$pid"
			wait "$pid" || true
			mb+=("$(awk -v d=$((w1 - w0)) -v w="$win" 'BEGIN {printf "%.2f", d*86400/w/1e6}')")
			per+=("$(awk -v d=$((w1 - w0)) -v w="$win" -v n="$n" 'BEGIN {printf "%.0f", d/(w*n)}')")
			fs+=("$(awk -v w="$win" '$NF ~ /^(fsync|fdatasync)$/ {n += (NF == 6 ? $4 : $(NF-1))} END {printf "%.0f", n*86400/w}' "$OUT/strace.txt")")
		done
		printf '| %s | %s | %s | %s | %s (%s–%s) | %s (%s–%s) | %s |\n' "$n" \
			"$([ "$hot" = off ] && echo "hot_dir: off (every reading written)" || echo "hot tail")" "$page" "$broker" \
			"$(printf '%s\n' "${mb[@]}" | median)" "$(printf '%s\n' "${mb[@]}" | sort -n | head -1)" "$(printf '%s\n' "${mb[@]}" | sort -n | tail -1)" \
			"$(printf '%s\n' "${fs[@]}" | median)" "$(printf '%s\n' "${fs[@]}" | sort -n | head -1)" "$(printf '%s\n' "${fs[@]}" | sort -n | tail -1)" \
			"$(printf '%s\n' "${per[@]}" | median)"
	done
}

agent_rss() {
	echo "== agent: memory and CPU (WINDOW=${WINDOW}s, COUNT=$COUNT; kelvin amd64 stripped, mosquitto on loopback)"
	machine
	echo
	echo "| sensors @ 1 Hz | VmRSS MiB | RssAnon MiB | CPU % of one core | µs CPU per reading |"
	echo "|---|---:|---:|---:|---:|"
	local n
	for n in 1 8 64; do
		local interval=1s
		[ "$n" = 1 ] && interval=1h # idle: one sensor that reads once
		config "$n" "$interval" >"$dir/kelvin.yaml"
		local rss=() anon=() cpu=() per=()
		local c
		for ((c = 0; c < COUNT; c++)); do
			rm -rf "$dir/data"
			"$bin" run -config "$dir/kelvin.yaml" 2>>"$OUT/agent.log" &
			local pid=$!
			sleep 5
			local t0 t1
			t0=$(cpu_ns "$pid")
			sleep "$WINDOW"
			t1=$(cpu_ns "$pid")
			rss+=("$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$pid/status")")
			anon+=("$(awk '/RssAnon/ {printf "%.1f", $2/1024}' "/proc/$pid/status")")
			cpu+=("$(cpu_pct $((t1 - t0)))")
			if [ "$n" != 1 ]; then
				per+=("$(awk -v d=$((t1 - t0)) -v w="$WINDOW" -v n="$n" 'BEGIN {printf "%.0f", d/1e3/(w*n)}')")
			fi
			kill -TERM "$pid"
			wait "$pid" || true
		done
		local perm="–"
		[ ${#per[@]} -gt 0 ] && perm=$(printf '%s\n' "${per[@]}" | median)
		printf '| %s | %s (%s–%s) | %s | %s (%s–%s) | %s |\n' \
			"$([ "$n" = 1 ] && echo "idle (1 sensor, 1h)" || echo "$n")" \
			"$(printf '%s\n' "${rss[@]}" | median)" "$(printf '%s\n' "${rss[@]}" | sort -n | head -1)" "$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)" \
			"$(printf '%s\n' "${anon[@]}" | median)" \
			"$(printf '%s\n' "${cpu[@]}" | median)" "$(printf '%s\n' "${cpu[@]}" | sort -n | head -1)" "$(printf '%s\n' "${cpu[@]}" | sort -n | tail -1)" \
			"$perm"
	done

}

# first_message topic log cmd…: runs cmd (on CPU 0 when pin0 is set) with
# a subscriber to topic waiting (on CPU 1 when pin1 is set), and prints the
# milliseconds from its start to the first message; then stops it.
first_message() {
	local topic=$1 log=$2
	shift 2
	rm -rf "$dir/data"
	"${pin1[@]}" "$sub" -h 127.0.0.1 -p "$port" -t "$topic" -C 1 -W 20 >/dev/null &
	local spid=$!
	sleep 0.5
	local s0 s1
	s0=$(date +%s%N)
	"${pin0[@]}" "$@" >>"$log" 2>&1 &
	local pid=$!
	wait "$spid"
	s1=$(date +%s%N)
	kill -TERM "$pid"
	wait "$pid" || true
	awk -v a="$s0" -v b="$s1" 'BEGIN {printf "%.1f", (b-a)/1e6}'
}

agent_start() {
	echo
	echo "== agent: start → first message at the broker (one sim sensor at 10ms; START_COUNT=$START_COUNT${BASELINE:+; kelvin and the baseline $BASELINE interleaved})"
	config 1 10ms >"$dir/kelvin.yaml"
	declare -A lat=()
	local c s
	for ((c = 0; c < START_COUNT; c++)); do
		for s in kelvin ${BASELINE:+baseline}; do
			local b=$bin
			[ "$s" = baseline ] && b=$BASELINE
			lat[$s]+="$(first_message kelvin/bench/s0 "$OUT/$s.log" "$b" run -config "$dir/kelvin.yaml") "
		done
	done
	for s in kelvin ${BASELINE:+baseline}; do
		# shellcheck disable=SC2086
		echo "$s: start → first message: median $(mmm ${lat[$s]}) ms; runs: ${lat[$s]}"
	done
}

# mmm prints "median (min–max)" of its arguments.
mmm() {
	printf '%s (%s–%s)' "$(printf '%s\n' "$@" | median)" "$(printf '%s\n' "$@" | sort -n | head -1)" "$(printf '%s\n' "$@" | sort -n | tail -1)"
}

# ratio a b prints a/b to two places, or says why there is none.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/) printf "–"; else if (b > 0) printf "%.2f", a/b; else if (a > 0) printf "∞ (Telegraf 0)"; else printf "– (both 0)"}'
}

# col_ratio name: the ratio Kelvin/Telegraf of the medians in the
# associative array name (runs' figures, space-separated, per agent).
col_ratio() {
	local -n m=$1
	# shellcheck disable=SC2086 # the lists are split on purpose
	ratio "$(printf '%s\n' ${m[kelvin]} | median)" "$(printf '%s\n' ${m[telegraf]} | median)"
}

# kelvin_w1_config n interval: Kelvin reading the n devices of w1_tree.
kelvin_w1_config() {
	printf 'agent: { id: bench, data_dir: %s/data }\nmqtt: { url: "tcp://127.0.0.1:%s", qos: 1 }\nhttp: { listen: "127.0.0.1:%s" }\nlog: { level: error }\nbuffer: { hot_dir: auto }\nonewire: { sysfs: %s/w1 }\n' "$dir" "$port" "$(free_port)" "$dir"
	w1_sensors "$dir/w1" "$2"
}

# telegraf_config n interval: Telegraf's smallest build doing the same
# work: one inputs.multifile per device (its temperature file, millidegrees
# as float(3)), flushed every interval to outputs.mqtt at QoS 1, one JSON
# message per reading (layout non-batch), on loopback only.
telegraf_config() {
	local a
	cat <<-EOF
		[agent]
		  interval = "$2"
		  round_interval = false
		  collection_jitter = "0s"
		  flush_interval = "$2"
		  flush_jitter = "0s"
		  omit_hostname = true
		  quiet = true
		[[outputs.mqtt]]
		  servers = ["tcp://127.0.0.1:$port"]
		  topic = 'telegraf/{{ .Tag "sensor" }}'
		  qos = 1
		  keep_alive = 30
		  layout = "non-batch"
		  data_format = "json"
		  json_timestamp_units = "1ms"
	EOF
	for a in $(ls "$dir/w1"); do
		cat <<-EOF
			[[inputs.multifile]]
			  name_override = "w1"
			  base_dir = "$dir/w1/$a"
			  [[inputs.multifile.file]]
			    file = "temperature"
			    dest = "temperature"
			    conversion = "float(3)"
			  [inputs.multifile.tags]
			    sensor = "$a"
		EOF
	done
}

# peer_cmd kelvin|telegraf n interval writes that agent's config for the
# current w1_tree and prints its command line and its readings' topic.
peer_cmd() {
	case $1 in
	kelvin)
		kelvin_w1_config "$2" "$3" >"$dir/kelvin.yaml"
		echo "kelvin/bench/+|$bin run -config $dir/kelvin.yaml"
		;;
	kelvinall) # Kelvin on every CPU (agent.cpus: 0), as before its default of one
		kelvin_w1_config "$2" "$3" | sed 's/^agent: { /agent: { cpus: 0, /' >"$dir/kelvin.yaml"
		echo "kelvin/bench/+|$bin run -config $dir/kelvin.yaml"
		;;
	telegraf)
		telegraf_config "$2" "$3" >"$dir/telegraf.conf"
		echo "telegraf/+|$TELEGRAF --config $dir/telegraf.conf"
		;;
	telegraf1p) # Telegraf on one CPU at a time, as Kelvin's default (GOMAXPROCS=1)
		telegraf_config "$2" "$3" >"$dir/telegraf.conf"
		echo "telegraf/+|env GOMAXPROCS=1 $TELEGRAF --config $dir/telegraf.conf"
		;;
	floor) # reads the files once a second and publishes nothing
		echo "floor/none|$dir/benchfloor $dir/w1"
		;;
	paho) # the floor, publishing each file at QoS 1 through paho
		echo "floor/+|$dir/benchfloor -mqtt tcp://127.0.0.1:$port $dir/w1"
		;;
	esac
}

# peer_disk sensor counts…: for each count (1 is idle: one device read
# hourly), COUNT interleaved runs of Kelvin (hot tail, page on) and
# Telegraf, each measured over WINDOW seconds after WARMUP (default 5)
# seconds of warm-up: VmRSS and RssAnon at the end, CPU share of one core,
# bytes to storage (write_bytes − cancelled_write_bytes) and fsyncs, both
# projected per day, and readings per second a subscriber counted at the
# broker. Then the ratios Kelvin/Telegraf of the medians. Interleaved with
# them (not in the idle row), scripts/benchfloor: a Go program that only
# reads the same files once a second, the least any agent doing this work
# costs here; its CPU over Telegraf's is the lowest ratio reachable. And
# (paho) the same program publishing each file's bytes at QoS 1 through the
# MQTT client Kelvin uses, awaiting the acknowledgements: what a program
# costs here that hands each reading to paho as it comes and does no work
# of its own (a publisher that batches its writes can go lower).
peer_disk() {
	local strace
	strace=$(find_prog strace strace)
	local systems
	read -ra systems <<<"${SYSTEMS:-kelvin telegraf floor paho}"
	local need
	for need in kelvin telegraf; do
		case " ${systems[*]} " in
		*" $need "*) ;;
		*) echo "bench.sh: SYSTEMS must name kelvin and telegraf: the ratios are theirs" >&2; return 1 ;;
		esac
	done
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$dir/benchfloor" ./scripts/benchfloor
	echo "== agent: memory, CPU, storage (WINDOW=${WINDOW}s after ${WARMUP:-5}s, COUNT=$COUNT; ${systems[*]} interleaved; kelvin amd64 stripped, mosquitto on loopback)"
	machine
	echo "data_dir on $(df --output=fstype "$dir" | tail -1), hot tail on $(df --output=fstype "$RUNTIME_DIRECTORY" | tail -1); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "telegraf: $TELEGRAF ($(stat -c %s "$TELEGRAF") bytes); $([ "${PIN:-1}" = 0 ] && echo "agents unpinned" || echo "agents on CPU 0"), broker on CPU 1"
	echo
	echo "| sensors @ 1 Hz | agent | VmRSS MiB | RssAnon MiB | CPU % of one core | MB/day to storage | fsyncs/day | readings/s at broker |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|"
	local n s c
	for n in "$@"; do
		local interval=1s
		[ "$n" = 1 ] && interval=1h # idle: one sensor that reads once
		w1_tree "$dir/w1" "$n"
		declare -A rss=() anon=() cpu=() mb=() fs=() rate=()
		local these=("${systems[@]}")
		[ "$n" = 1 ] && these=(kelvin telegraf) # the floor reads every second
		for ((c = 0; c < COUNT; c++)); do
			for s in "${these[@]}"; do
				local topic cmd
				IFS='|' read -r topic cmd <<<"$(peer_cmd "$s" "$n" "$interval")"
				rm -rf "$dir/data" "${RUNTIME_DIRECTORY:?}"/*
				# shellcheck disable=SC2086 # cmd is split on purpose
				if [ "${STRACE:-1}" = 0 ]; then
					"${pin0[@]}" sh -c 'exec "$@"' sh $cmd 2>>"$OUT/$s.log" &
				else
					"${pin0[@]}" "$strace" --seccomp-bpf -f -ttt -e trace=fsync,fdatasync -o "$OUT/strace-$s.txt" -- $cmd 2>>"$OUT/$s.log" &
				fi
				local tpid=$! pid=
				[ "${STRACE:-1}" = 0 ] && pid=$tpid # exec'd: no tracer in between
				for _ in $(seq 100); do
					[ -n "$pid" ] && break
					pid=$(pgrep -P "$tpid" || true)
					sleep 0.05
				done
				sleep "${WARMUP:-5}"
				"${pin1[@]}" "$sub" -h 127.0.0.1 -p "$port" -t "$topic" -v >"$OUT/sub-$s.txt" &
				local spid=$!
				local t0 t1 w0 w1 e0 e1
				e0=$(date +%s.%N)
				t0=$(cpu_ns "$pid")
				w0=$(awk '/^write_bytes/ {w=$2} /^cancelled_write_bytes/ {c=$2} END {print w-c}' "/proc/$pid/io")
				sleep "$WINDOW"
				e1=$(date +%s.%N)
				t1=$(cpu_ns "$pid")
				w1=$(awk '/^write_bytes/ {w=$2} /^cancelled_write_bytes/ {c=$2} END {print w-c}' "/proc/$pid/io")
				rss[$s]+="$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$pid/status") "
				anon[$s]+="$(awk '/RssAnon/ {printf "%.1f", $2/1024}' "/proc/$pid/status") "
				kill -TERM "$spid" "$pid"
				# mosquitto_sub has been seen to hang on SIGTERM: a
				# watchdog, so that one stuck subscriber cannot stall the run.
				{ sleep 10; kill -KILL "$spid" 2>/dev/null; } &
				wait "$spid" "$tpid" || true
				cpu[$s]+="$(cpu_pct $((t1 - t0))) "
				mb[$s]+="$(awk -v d=$((w1 - w0)) -v w="$WINDOW" 'BEGIN {printf "%.2f", d*86400/w/1e6}') "
				# Only the calls inside the window count, not those at start.
				if [ "${STRACE:-1}" = 0 ]; then
					fs[$s]+="– "
				else
					fs[$s]+="$(awk -v a="$e0" -v b="$e1" -v w="$WINDOW" '/ (fsync|fdatasync)\(/ && $2 >= a && $2 <= b {n++} END {printf "%.0f", n*86400/w}' "$OUT/strace-$s.txt") "
				fi
				# Telegraf's JSON ends in a newline: count topic lines only.
				rate[$s]+="$(awk -v w="$WINDOW" '/^(kelvin|telegraf|floor)\// && !/\/status / {n++} END {printf "%.1f", n/w}' "$OUT/sub-$s.txt") "
			done
		done
		local label=$n
		[ "$n" = 1 ] && label="idle (1 sensor, 1h)"
		for s in "${these[@]}"; do
			# shellcheck disable=SC2086 # the lists are split on purpose
			printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$s" \
				"$(mmm ${rss[$s]})" "$(printf '%s\n' ${anon[$s]} | median)" "$(mmm ${cpu[$s]})" \
				"$(mmm ${mb[$s]})" "$(mmm ${fs[$s]})" "$(printf '%s\n' ${rate[$s]} | median)"
		done
		local col r=()
		for col in rss anon cpu mb fs rate; do
			r+=("$(col_ratio "$col")")
		done
		printf '| %s | **Kelvin/Telegraf** | %s | %s | %s | %s | %s | %s |\n' "$label" "${r[@]}"
		if [ -n "${cpu[floor]:-}" ]; then
			# shellcheck disable=SC2086 # the lists are split on purpose
			printf '| %s | floor/Telegraf (the lowest CPU ratio reachable here) | – | – | %s | – | – | – |\n' "$label" \
				"$(ratio "$(printf '%s\n' ${cpu[floor]} | median)" "$(printf '%s\n' ${cpu[telegraf]} | median)")"
		fi
		if [ -n "${cpu[paho]:-}" ]; then
			# shellcheck disable=SC2086 # the lists are split on purpose
			printf '| %s | paho/Telegraf (a bare paho publisher at QoS 1) | – | – | %s | – | – | – |\n' "$label" \
				"$(ratio "$(printf '%s\n' ${cpu[paho]} | median)" "$(printf '%s\n' ${cpu[telegraf]} | median)")"
		fi
		unset rss anon cpu mb fs rate
	done
	echo
	echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# peer_together sensor counts…: Kelvin and Telegraf at the same time, both
# on CPU 0 (with PIN=0 unpinned, as services run; the broker on CPU 1), on
# the same tree, COUNT rounds (each a
# fresh start of both, the starting order alternating) of one WINDOW after
# WARMUP seconds; both agents' CPU is read at the same instants, so each
# window gives a ratio of two figures measured under the same load. The
# interleaved runs of disk measure each agent in a window of its own, and
# the machine's load moves between windows by more than the ratio's
# distance to its goal; here it moves both alike. The two together use
# well under 1 % of the CPU they share, so they seldom wait for each
# other, and a wait is not counted as CPU. pin0 and pin1 are bench_agent's.
peer_together() {
	local n c windows=
	echo "== together: Kelvin and Telegraf running at the same time (WINDOW=${WINDOW}s after ${WARMUP:-5}s, COUNT=$COUNT rounds; $([ "${PIN:-1}" = 0 ] && echo "both unpinned" || echo "both on CPU 0"), mosquitto on CPU 1)"
	machine
	echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo
	echo "| sensors @ 1 Hz | Kelvin, CPU % of one core | Telegraf, CPU % of one core | Kelvin/Telegraf per window, median (min–max) | readings/s at broker, Kelvin / Telegraf |"
	echo "|---|---:|---:|---:|---:|"
	for n in "$@"; do
		w1_tree "$dir/w1" "$n"
		local kc=() tc=() rs=() kr=() tr=()
		for ((c = 0; c < COUNT; c++)); do
			local order=(kelvin telegraf) s
			[ $((c % 2)) = 1 ] && order=(telegraf kelvin)
			rm -rf "$dir/data" "${RUNTIME_DIRECTORY:?}"/*
			declare -A pid=()
			for s in "${order[@]}"; do
				local topic cmd
				IFS='|' read -r topic cmd <<<"$(peer_cmd "$s" "$n" 1s)"
				# shellcheck disable=SC2086 # cmd is split on purpose
				"${pin0[@]}" sh -c 'exec "$@"' sh $cmd 2>>"$OUT/$s.log" &
				pid[$s]=$!
			done
			sleep "${WARMUP:-5}"
			"${pin1[@]}" "$sub" -h 127.0.0.1 -p "$port" -t 'kelvin/bench/+' -t 'telegraf/+' -v >"$OUT/sub-together.txt" &
			local spid=$! k0 t0 k1 t1
			k0=$(cpu_ns "${pid[kelvin]}")
			t0=$(cpu_ns "${pid[telegraf]}")
			sleep "$WINDOW"
			k1=$(cpu_ns "${pid[kelvin]}")
			t1=$(cpu_ns "${pid[telegraf]}")
			kill -TERM "$spid" "${pid[kelvin]}" "${pid[telegraf]}"
			{ sleep 10; kill -KILL "$spid" 2>/dev/null; } & # see peer_disk
			wait "$spid" "${pid[kelvin]}" "${pid[telegraf]}" || true
			kc+=("$(cpu_pct $((k1 - k0)))")
			tc+=("$(cpu_pct $((t1 - t0)))")
			rs+=("$(awk -v k=$((k1 - k0)) -v t=$((t1 - t0)) 'BEGIN {printf "%.2f", k/t}')")
			kr+=("$(awk -v w="$WINDOW" '/^kelvin\/bench\// && !/\/status / {n++} END {printf "%.1f", n/w}' "$OUT/sub-together.txt")")
			tr+=("$(awk -v w="$WINDOW" '/^telegraf\// {n++} END {printf "%.1f", n/w}' "$OUT/sub-together.txt")")
			unset pid
		done
		printf '| %s | %s | %s | **%s** | %s / %s |\n' "$n" "$(mmm "${kc[@]}")" "$(mmm "${tc[@]}")" "$(mmm "${rs[@]}")" \
			"$(printf '%s\n' "${kr[@]}" | median)" "$(printf '%s\n' "${tr[@]}" | median)"
		windows+="$n sensors, each window's ratio in order: ${rs[*]}"$'\n'
	done
	echo
	printf '%s' "$windows"
	echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# peer_start: start → first message at the broker, START_COUNT times each,
# Kelvin and Telegraf interleaved, both reading one source every 10 ms and
# Telegraf flushing every 10 ms (Kelvin's ds18b20 type refuses intervals
# under 750 ms, so Kelvin reads one simulated sensor, as agent_start does).
peer_start() {
	echo
	echo "== agent: start → first message at the broker (10ms interval; START_COUNT=$START_COUNT; kelvin${BASELINE:+, the baseline $BASELINE} and telegraf interleaved)"
	w1_tree "$dir/w1" 1
	config 1 10ms >"$dir/kelvin.yaml"
	telegraf_config 1 10ms >"$dir/telegraf.conf"
	declare -A lat=()
	local c s
	for ((c = 0; c < START_COUNT; c++)); do
		for s in kelvin ${BASELINE:+baseline} telegraf; do
			local topic cmd
			case $s in
			kelvin) topic=kelvin/bench/s0 cmd="$bin run -config $dir/kelvin.yaml" ;;
			baseline) topic=kelvin/bench/s0 cmd="$BASELINE run -config $dir/kelvin.yaml" ;;
			telegraf) topic='telegraf/+' cmd="$TELEGRAF --config $dir/telegraf.conf" ;;
			esac
			# shellcheck disable=SC2086 # cmd is split on purpose
			lat[$s]+="$(first_message "$topic" "$OUT/$s.log" $cmd) "
		done
	done
	for s in kelvin ${BASELINE:+baseline} telegraf; do
		# shellcheck disable=SC2086
		echo "$s: start → first message: median $(mmm ${lat[$s]}) ms; runs: ${lat[$s]}"
	done
	# shellcheck disable=SC2086
	echo "ratio Kelvin/Telegraf of the medians: $(ratio "$(printf '%s\n' ${lat[kelvin]} | median)" "$(printf '%s\n' ${lat[telegraf]} | median)")"
}

bench_size() {
	echo "== size: stripped static binaries, as scripts/build.sh makes them (-trimpath -ldflags '-s -w' -tags nethttpomithttp2)"
	machine
	echo
	echo "| target | bytes | MiB | without Kafka (-tags nokafka) | MiB |"
	echo "|---|---:|---:|---:|---:|"
	local dir t
	dir=$(mktemp -d /tmp/kelvin-bench-size.XXXXXX)
	for t in armv6:arm:6 armv7:arm:7 arm64:arm64: amd64:amd64:; do
		IFS=: read -r name arch arm <<<"$t"
		CGO_ENABLED=0 GOOS=linux GOARCH=$arch GOARM=$arm go build -tags nethttpomithttp2 -trimpath -ldflags "-s -w" -o "$dir/k" .
		CGO_ENABLED=0 GOOS=linux GOARCH=$arch GOARM=$arm go build -tags nethttpomithttp2,nokafka -trimpath -ldflags "-s -w" -o "$dir/n" .
		local a b
		a=$(stat -c %s "$dir/k")
		b=$(stat -c %s "$dir/n")
		awk -v n="$name" -v a="$a" -v b="$b" 'BEGIN {printf "| %s | %d | %.2f | %d | %.2f |\n", n, a, a/1048576, b, b/1048576}'
	done
	rm -rf "$dir"
}

case $mode in
go) bench_go ;;
agent) bench_agent ;;
start) bench_agent start ;;
disk) bench_agent disk ;;
together) bench_agent together ;;
size) bench_size ;;
all)
	bench_size
	echo
	bench_agent
	echo
	bench_go
	;;
*)
	echo "usage: scripts/bench.sh [all|go|agent|start|disk|together|size]" >&2
	exit 2
	;;
esac
