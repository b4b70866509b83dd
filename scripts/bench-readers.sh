#!/usr/bin/env bash
# Usage: scripts/bench-readers.sh BIN LABEL
# Bytes the agent BIN sends to storage (write_bytes - cancelled_write_bytes
# of /proc/PID/io; tmpfs writes are not storage) over WIN seconds (default
# 60) after 5 s of warm-up, 8 simulated sensors at 1 Hz, the page on, the
# hot tail on a tmpfs given as $RUNTIME_DIRECTORY, mosquitto on loopback:
#   no outputs      the page alone (issue 14, item 2)
#   output removed  mqtt (up) and kafka (a closed port) for 20 s, then a
#                   restart with mqtt only (item 3)
# docs/BENCHMARKS.md quotes it; numbers, never pass/fail.
set -u
bin=$1 label=$2 win=${WIN:-60}
d=$(mktemp -d /tmp/kelvin-bench-readers.XXXXXX)
run=$(mktemp -d /dev/shm/kelvin-bench-readers.XXXXXX)
export RUNTIME_DIRECTORY=$run
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
mport=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n' "$mport" >$d/m.conf
mosquitto -c $d/m.conf & mpid=$!
sleep 0.5
sensors() { printf 'sensors:\n'; for i in 0 1 2 3 4 5 6 7; do printf '  - { id: s%d, type: sim, interval: 1s, filters: [ {median: 3}, {ema: 0.3}, {round: 2} ] }\n' $i; done; }
base() { printf 'agent: { id: bench, data_dir: %s/data }\nlog: { level: warn }\nhttp: { listen: "127.0.0.1:%s" }\nbuffer: { hot_dir: auto }\n' "$d" "$(free_port)"; }
wb() { awk '/^write_bytes/ {w=$2} /^cancelled_write_bytes/ {c=$2} END {print w-c}' /proc/$1/io; }
window() { # config -> bytes over win
  "$bin" run -config $1 2>>$d/agent.log & local pid=$!
  sleep 5; local w0=$(wb $pid); sleep $win; local w1=$(wb $pid)
  kill -TERM $pid; wait $pid
  echo $((w1-w0))
}
# item 2
{ base; sensors; } >$d/none.yaml
b=$(window $d/none.yaml)
echo "$label no outputs: $b bytes in ${win}s = $(awk -v b=$b -v w=$win 'BEGIN{printf "%.2f MB/day", b*86400/w/1e6}')"
rm -rf $d/data $run/*
# item 3
kport=$(free_port)
{ base; printf 'mqtt: { url: "tcp://127.0.0.1:%s", qos: 1 }\nkafka: { brokers: ["127.0.0.1:%s"] }\n' $mport $kport; sensors; } >$d/two.yaml
{ base; printf 'mqtt: { url: "tcp://127.0.0.1:%s", qos: 1 }\n' $mport; sensors; } >$d/one.yaml
"$bin" run -config $d/two.yaml 2>>$d/agent.log & pid=$!
sleep 20; kill -TERM $pid; wait $pid
b=$(window $d/one.yaml)
echo "$label output removed: $b bytes in ${win}s = $(awk -v b=$b -v w=$win 'BEGIN{printf "%.2f MB/day", b*86400/w/1e6}')"
grep -i "cursor\|removed\|no output" $d/agent.log | tail -5
kill $mpid; rm -rf $run; echo "logs in $d"
