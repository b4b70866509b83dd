#!/usr/bin/env bash
# Sets up and runs every Kelvin test: installs the programs the tests talk
# to (a real mosquitto broker, kcat, chromium, qemu for the ARM builds and
# the hardware-in-the-loop guest, dpkg, systemd-analyze for the unit) when
# missing and run as root, lets apt see armhf packages (the guest's kernel,
# which internal/hil downloads into its cache outside the repository), then
# checks formatting, vets, and runs the whole suite with the race detector.
# In CI (CI=true) a program that is still missing fails the run; locally the
# tests that need it skip with a message naming the package.
#
# Usage: scripts/test.sh [go test flags...]   e.g. scripts/test.sh -run Config ./agent/
set -euo pipefail
cd "$(dirname "$0")/.."

# program:debian-package
needs=(mosquitto:mosquitto mosquitto_sub:mosquitto-clients kcat:kcat chromium:chromium
       qemu-arm-static:qemu-user-static qemu-aarch64-static:qemu-user-static dpkg-deb:dpkg
       systemd-analyze:systemd qemu-system-arm:qemu-system-arm)

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

missing=()
for n in "${needs[@]}"; do
  have "${n%%:*}" || missing+=("${n#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "test.sh: missing Debian packages: ${missing[*]} (run as root to install them, or: sudo apt-get install ${missing[*]})" >&2
    if [ "${CI:-}" = true ]; then exit 1; fi
  fi
fi

# internal/hil boots Debian's armhf kernel, resolved through the metapackage
# and fetched with apt-get download on each new version: apt must list armhf.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && command -v dpkg >/dev/null; then
  if ! dpkg --print-foreign-architectures | grep -qx armhf; then
    echo "test.sh: adding the armhf architecture to apt (the guest kernel of internal/hil)"
    dpkg --add-architecture armhf
    apt-get update -qq
  elif ! apt-cache depends linux-image-armmp:armhf >/dev/null 2>&1; then
    apt-get update -qq
  fi
fi

if ! command -v go >/dev/null; then
  echo "test.sh: Go is not installed (https://go.dev/dl/)" >&2
  exit 1
fi

echo "== gofmt"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "gofmt wants to rewrite:" >&2
  echo "$unformatted" >&2
  exit 1
fi

echo "== go vet (and with -tags nokafka, the MQTT-only build)"
go vet ./...
go vet -tags nokafka ./...

echo "== build (CGO_ENABLED=0; for a Pi Zero: linux/arm GOARM=6; for 32-bit x86 gateways: linux/386; for the demo on a Mac: darwin/arm64)"
CGO_ENABLED=0 go build -o /dev/null .
CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=6 go build -o /dev/null .
CGO_ENABLED=0 GOOS=linux GOARCH=386 go build -o /dev/null .
CGO_ENABLED=0 GOOS=darwin GOARCH=arm64 go build -o /dev/null .
CGO_ENABLED=0 go build -tags nokafka -o /dev/null .

# Each go test run has a timeout well under CI's limit, so a hung test
# fails fast and Go prints where every goroutine was.
echo "== go test -race"
args=("$@")
if [ ${#args[@]} -eq 0 ]; then args=(./...); fi
go test -race -count=1 -timeout 10m "${args[@]}"

# The suite must not depend on the calendar: run the packages with age,
# expiry, retention, rate and clock-sanity logic again with the clock they
# read (internal/wallclock) moved 400 days ahead.
if [ $# -eq 0 ]; then
  echo "== go test, clock 400 days ahead (-tags kelvin_skew, KELVIN_CLOCK_SKEW=9600h)"
  KELVIN_CLOCK_SKEW=9600h go test -tags kelvin_skew -count=1 -timeout 10m \
    ./internal/wallclock ./agent ./archive ./buffer ./fleet/... ./httpui ./ingest ./filter ./reading ./publish/...
fi

# The Pi builds (armv6, armv7) are 32-bit: 64-bit atomics need alignment
# there, and sizes computed from the word size differ. linux/386 is the
# 32-bit build this machine runs natively (no -race there). internal/hil
# already runs the armv7 binary in an ARM guest, so it is left out here,
# as are the load generators under scripts/.
if [ $# -eq 0 ]; then
  echo "== go test, 32-bit build (GOARCH=386)"
  # shellcheck disable=SC2046 # one package path per word
  GOARCH=386 go test -count=1 -timeout 10m $(go list ./... | grep -v -e /internal/hil -e /scripts/)
fi
