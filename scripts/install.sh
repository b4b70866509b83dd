#!/usr/bin/env bash
# Installs Kelvin as a systemd service without apt (the .deb is the other
# way): the binary as /usr/bin/kelvin, the unit as
# /etc/systemd/system/kelvin.service, the udev rule that lets group kelvin
# start 1-Wire bulk conversions as /etc/udev/rules.d/60-kelvin-w1.rules
# (applied at once when udev runs), the example config as
# /etc/kelvin/kelvin.yaml (never overwriting one that exists), the kelvin
# system user in groups i2c and gpio (created when missing) and its state
# directory /var/lib/kelvin; then enables and (re)starts the service when
# systemd runs. Safe to run again: that is how to upgrade.
#
# Usage: sudo scripts/install.sh [BINARY]
#   BINARY defaults to ./kelvin, else dist/kelvin-linux-ARCH for this
#   machine (armv6, armv7, arm64 or amd64; scripts/build.sh makes them).
#
# Environment:
#   DESTDIR=DIR                    install under DIR instead of / (an image,
#                                  a test); systemctl is not run, users and
#                                  groups go into DIR/etc/{passwd,group}
#   KELVIN_INSTALL_NO_USER=1       create no user or group, chown nothing
#   KELVIN_INSTALL_NO_SYSTEMCTL=1  do not enable or start the service
# Root is required, except with DESTDIR and KELVIN_INSTALL_NO_USER=1.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
packaging=$root/packaging

DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}
no_user=${KELVIN_INSTALL_NO_USER:-}
no_systemctl=${KELVIN_INSTALL_NO_SYSTEMCTL:-}

user=kelvin
bin=/usr/bin/kelvin
unit=/etc/systemd/system/kelvin.service
rule=/etc/udev/rules.d/60-kelvin-w1.rules
conf=/etc/kelvin/kelvin.yaml
state=/var/lib/kelvin

say() { echo "install.sh: $*"; }
die() {
	echo "install.sh: $*" >&2
	exit 1
}

case ${1:-} in
-h | --help)
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
	exit 0
	;;
esac
[ $# -le 1 ] || die "want at most one argument, the binary (see --help)"

if [ "$(id -u)" != 0 ] && ! { [ -n "$DESTDIR" ] && [ "$no_user" = 1 ]; }; then
	die "must run as root: sudo $0 $*
  (to stage the files elsewhere without root: DESTDIR=DIR KELVIN_INSTALL_NO_USER=1 $0 $*)"
fi

for f in kelvin.service kelvin.yaml 60-kelvin-w1.rules; do
	[ -f "$packaging/$f" ] || die "$packaging/$f is missing: run this script from a Kelvin source tree"
done

# This machine's binary name in dist/. A 64-bit kernel (aarch64) runs the
# static arm64 binary even under a 32-bit Raspberry Pi OS.
machine_arch() {
	case $(uname -m) in
	armv6l) echo armv6 ;;
	armv7l | armv8l) echo armv7 ;;
	aarch64 | arm64) echo arm64 ;;
	x86_64 | amd64) echo amd64 ;;
	*) uname -m ;;
	esac
}

src=${1:-}
if [ -z "$src" ]; then
	arch=$(machine_arch)
	for c in ./kelvin "./dist/kelvin-linux-$arch" "$root/dist/kelvin-linux-$arch"; do
		if [ -f "$c" ]; then
			src=$c
			break
		fi
	done
	[ -n "$src" ] || die "no binary: give one as the argument, or put it at ./kelvin or dist/kelvin-linux-$arch (scripts/build.sh bin $arch)"
fi
[ -f "$src" ] || die "$src: no such file"
if [ -z "$DESTDIR" ]; then
	# Catch the wrong binary before it replaces a working one: a GOARM=7
	# build on a Pi Zero dies here with "illegal instruction".
	out=$("$src" version 2>&1) || die "$src does not run on this machine ($(uname -m)): $out"
	say "installing $out"
fi

# put SRC DST MODE: copy via a temporary file and rename, so a running
# binary is replaced, not overwritten in place (ETXTBSY).
put() {
	local dst=$DESTDIR$2
	mkdir -p "$(dirname "$dst")"
	cp "$1" "$dst.new"
	chmod "$3" "$dst.new"
	mv -f "$dst.new" "$dst"
	say "wrote $2"
}

put "$src" "$bin" 0755
put "$packaging/kelvin.service" "$unit" 0644
put "$packaging/60-kelvin-w1.rules" "$rule" 0644
if [ -e "$DESTDIR$conf" ]; then
	say "kept $conf (the example is $packaging/kelvin.yaml)"
else
	put "$packaging/kelvin.yaml" "$conf" 0644
fi

# Users and groups: in DESTDIR's own /etc when set.
root_args=()
if [ -n "$DESTDIR" ]; then root_args=(--root "$DESTDIR"); fi
has_group() {
	if [ -n "$DESTDIR" ]; then
		grep -q "^$1:" "$DESTDIR/etc/group" 2>/dev/null
	else
		getent group "$1" >/dev/null
	fi
}
has_user() {
	if [ -n "$DESTDIR" ]; then
		grep -q "^$1:" "$DESTDIR/etc/passwd" 2>/dev/null
	else
		getent passwd "$1" >/dev/null
	fi
}
# ids NAME: "uid:gid" as the passwd file under DESTDIR (or the system) has them.
ids() {
	if [ -n "$DESTDIR" ]; then
		awk -F: -v u="$1" '$1 == u { print $3 ":" $4 }' "$DESTDIR/etc/passwd"
	else
		echo "$1:$1"
	fi
}

mkdir -p "$DESTDIR$state"
chmod 0750 "$DESTDIR$state"
if [ "$no_user" = 1 ]; then
	say "KELVIN_INSTALL_NO_USER=1: no user $user, groups or ownership"
else
	for g in i2c gpio "$user"; do
		if ! has_group "$g"; then
			groupadd "${root_args[@]}" --system "$g"
			say "created group $g"
		fi
	done
	if has_user "$user"; then
		usermod "${root_args[@]}" --append --groups i2c,gpio "$user"
	else
		useradd "${root_args[@]}" --system --gid "$user" --groups i2c,gpio \
			--home-dir "$state" --no-create-home \
			--shell /usr/sbin/nologin --comment "Kelvin temperature gateway" "$user"
		say "created user $user (groups i2c, gpio)"
	fi
	# Not recursive: a reinstall leaves the buffer's files alone.
	chown "$(ids "$user")" "$DESTDIR$state"
fi

# The udev rule, for the 1-Wire thermometers already there, before the
# service (re)starts.
if [ -z "$DESTDIR" ] && [ "$no_user" != 1 ] && [ -d /run/udev ] && command -v udevadm >/dev/null; then
	udevadm control --reload-rules || true
	udevadm trigger --subsystem-match=w1 --action=add || true
	udevadm settle --timeout=10 || true
	say "applied $rule to the 1-Wire devices"
fi

if [ -n "$DESTDIR" ]; then
	say "DESTDIR set: not enabling or starting the service"
elif [ "$no_systemctl" = 1 ]; then
	say "KELVIN_INSTALL_NO_SYSTEMCTL=1: not enabling or starting the service"
elif [ ! -d /run/systemd/system ]; then
	say "systemd is not running here: start Kelvin yourself with  $bin run -config $conf"
else
	if ! "$bin" check -config "$conf"; then
		die "$conf has errors (above): fix it, then: sudo systemctl restart kelvin"
	fi
	systemctl daemon-reload
	systemctl enable --quiet kelvin.service
	# Type=notify: restart returns once the agent said READY=1.
	if systemctl restart kelvin.service && systemctl is-active --quiet kelvin.service; then
		say "kelvin is running: journalctl -u kelvin -f; the page is on port 8080"
	else
		die "kelvin did not start: journalctl -u kelvin -n 50"
	fi
fi
