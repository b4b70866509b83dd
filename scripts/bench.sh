#!/usr/bin/env bash
# Measures Kelvin: the Go benchmarks of every stage (with their baselines,
# e.g. mosquitto_pub on the same broker), the running agent's memory, CPU
# and start-up time against a loopback mosquitto, and the binary sizes.
# Prints Markdown tables of medians with min–max; docs/BENCHMARKS.md quotes
# them. Numbers, never pass/fail: nothing here is a test.
#
# Usage: scripts/bench.sh [all|go|agent|start|disk|size]
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
#   size   stripped binaries for every target, with and without Kafka
#
# Environment: COUNT (default 5), WINDOW (seconds, default 30),
# DISK_WINDOW (seconds, default 60), DISK_COUNT (default 3),
# OUT (raw output directory, default a temporary one).
# Needs mosquitto and mosquitto-clients (scripts/test.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

mode=${1:-all}
COUNT=${COUNT:-5}
WINDOW=${WINDOW:-30}
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

free_port() {
	local p
	for p in $(shuf -i 20000-60000 -n 50); do
		if ! (echo >/dev/tcp/127.0.0.1/"$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	echo "bench.sh: no free port" >&2
	exit 1
}

find_prog() {
	command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || {
		echo "bench.sh: $1 not found: apt-get install $2" >&2
		exit 1
	}
}

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
	"$mosq" -c "$dir/mosquitto.conf" &
	local mpid=$!
	trap 'kill $mpid 2>/dev/null || true; rm -rf "$dir"' RETURN
	sleep 0.5
	local tck
	tck=$(getconf CLK_TCK)

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
	case ${1:-} in
	start) agent_start ;;
	disk) agent_disk ;;
	*)
		agent_rss
		agent_disk
		agent_start
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
			t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
			sleep "$WINDOW"
			t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
			rss+=("$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$pid/status")")
			anon+=("$(awk '/RssAnon/ {printf "%.1f", $2/1024}' "/proc/$pid/status")")
			cpu+=("$(awk -v d=$((t1 - t0)) -v t="$tck" -v w="$WINDOW" 'BEGIN {printf "%.2f", 100*d/t/w}')")
			if [ "$n" != 1 ]; then
				per+=("$(awk -v d=$((t1 - t0)) -v t="$tck" -v w="$WINDOW" -v n="$n" 'BEGIN {printf "%.0f", 1e6*d/t/(w*n)}')")
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

agent_start() {
	echo
	echo "== agent: start → first message at the broker (one sim sensor at 10ms; COUNT=$COUNT)"
	config 1 10ms >"$dir/kelvin.yaml"
	local lat=()
	for ((c = 0; c < COUNT; c++)); do
		rm -rf "$dir/data"
		"$sub" -h 127.0.0.1 -p "$port" -t 'kelvin/bench/s0' -C 1 -W 20 >/dev/null &
		local spid=$!
		sleep 0.5
		local s0 s1
		s0=$(date +%s%N)
		"$bin" run -config "$dir/kelvin.yaml" 2>>"$OUT/agent.log" &
		local pid=$!
		wait "$spid"
		s1=$(date +%s%N)
		lat+=("$(awk -v a="$s0" -v b="$s1" 'BEGIN {printf "%.1f", (b-a)/1e6}')")
		kill -TERM "$pid"
		wait "$pid" || true
	done
	echo "start → first message: median $(printf '%s\n' "${lat[@]}" | median) ms (min $(printf '%s\n' "${lat[@]}" | sort -n | head -1), max $(printf '%s\n' "${lat[@]}" | sort -n | tail -1); runs: ${lat[*]})"
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
size) bench_size ;;
all)
	bench_size
	echo
	bench_agent
	echo
	bench_go
	;;
*)
	echo "usage: scripts/bench.sh [all|go|agent|start|disk|size]" >&2
	exit 2
	;;
esac
