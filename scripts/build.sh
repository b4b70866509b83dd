#!/usr/bin/env bash
# Builds Kelvin's release artifacts: static binaries for every Raspberry Pi
# (and amd64), .deb packages made with nfpm, and SHA256SUMS, into dist/.
#
# Usage: scripts/build.sh [all|bin|deb|size] [TARGET...]
#   all (default)  binaries for every target, the three .debs, SHA256SUMS
#   bin            binaries only (and SHA256SUMS)
#   deb            the .debs (building their binaries first) and SHA256SUMS
#   size           what takes the room in a binary, per package (nothing written to dist)
#   version        print VERSION and the Debian version made of it, and exit
# TARGETs (default: all of them that the mode makes):
#   armv6  linux/arm GOARM=6: Pi Zero, Zero W, 1 (and every later Pi on a 32-bit OS)
#   armv7  linux/arm GOARM=7: Pi 2, 3, 4, 5 on a 32-bit OS; no .deb (armhf uses armv6)
#   arm64  linux/arm64: Pi 3, 4, 5, Zero 2 W on a 64-bit OS
#   amd64  linux/amd64
#   armhf is accepted as another name for armv6.
#
# Outputs: $DIST/kelvin-linux-TARGET, $DIST/kelvin_DEBVERSION_DEBARCH.deb
# (armhf from the armv6 binary, arm64, amd64), $DIST/SHA256SUMS.
# Every binary must fit the size budget (13 MiB, stripped): the build fails
# otherwise.
#
# Environment:
#   DIST         output directory (default: dist in the repo; a relative path
#                is taken from the current directory)
#   VERSION      version stamped into the binary (default: git describe
#                --tags --always --dirty, or "dev")
#   DEB_VERSION  the packages' Debian version (default: derived from VERSION:
#                v1.2.3 -> 1.2.3, v1.2.3-4-gabc1234 -> 1.2.3+4.gabc1234,
#                v1.3.0-rc1 -> 1.3.0~rc1, an untagged commit -> 0.0.0~gitN.gSHA)
#   TAGS         Go build tags, e.g. TAGS=nokafka
#   NFPM         the nfpm command (default: go run of the pinned version below,
#                downloaded and built once into the Go cache; nothing is added
#                to go.mod)
#   MAX_BYTES    the size budget (default 13631488, 13 MiB)
set -euo pipefail

caller_dir=$(pwd)
cd "$(dirname "$0")/.."
root=$(pwd)

# v2.46.0 and later need go.digitalxero.dev modules, which the Go proxy
# refused (403) where this was written; v2.45.2 builds with Go 1.26.
NFPM_VERSION=v2.45.2
NFPM=${NFPM:-go run github.com/goreleaser/nfpm/v2/cmd/nfpm@${NFPM_VERSION}}
MAX_BYTES=${MAX_BYTES:-13631488}
TAGS=${TAGS:-}

DIST=${DIST:-$root/dist}
case $DIST in
/*) ;;
*) DIST=$caller_dir/$DIST ;;
esac

die() {
	echo "build.sh: $*" >&2
	exit 1
}

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

have_git() { git -C "$root" rev-parse --verify -q HEAD >/dev/null 2>&1; }

if [ -z "${VERSION:-}" ]; then
	VERSION=dev
	if have_git; then
		VERSION=$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)
	fi
fi

# debversion turns a git describe string into a Debian version that sorts
# the same way: later commits after a tag higher, release candidates lower.
debversion() {
	local v=$1 dirty='' n='' sha='' tag out
	if [[ $v == *-dirty ]]; then
		dirty=1
		v=${v%-dirty}
	fi
	if [[ $v =~ ^(.+)-([0-9]+)-g([0-9a-f]+)$ ]]; then
		tag=${BASH_REMATCH[1]} n=${BASH_REMATCH[2]} sha=${BASH_REMATCH[3]}
	else
		tag=$v
	fi
	if [[ $tag =~ ^[0-9a-f]{7,40}$ ]] && have_git && git -C "$root" cat-file -e "$tag^{commit}" 2>/dev/null; then
		# No tag yet: describe --always gave the commit. Count commits so
		# later builds sort later.
		out="0.0.0~git$(git -C "$root" rev-list --count "$tag").g$tag"
	elif [[ $tag =~ ^v?[0-9] ]]; then
		out=${tag#v}
		out=${out//-/\~}
		if [ -n "$n" ]; then out+="+$n.g$sha"; fi
	else
		out="0.0.0~$tag"
	fi
	if [ -n "$dirty" ]; then
		if [[ $out == *+* ]]; then out+=.dirty; else out+=+dirty; fi
	fi
	# Only [A-Za-z0-9.+~] may appear in a Debian upstream version here.
	printf '%s\n' "${out//[^A-Za-z0-9.+~]/.}"
}
DEB_VERSION=${DEB_VERSION:-$(debversion "$VERSION")}

# Reproducible package timestamps: the last commit's time.
if [ -z "${SOURCE_DATE_EPOCH:-}" ] && have_git; then
	SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct)
	export SOURCE_DATE_EPOCH
fi

goarch() {
	case $1 in
	armv6 | armv7) echo arm ;;
	arm64 | amd64) echo "$1" ;;
	esac
}
goarm() {
	case $1 in
	armv6) echo 6 ;;
	armv7) echo 7 ;;
	esac
}
debarch() {
	case $1 in
	armv6) echo armhf ;;
	arm64 | amd64) echo "$1" ;;
	esac
}

# The release binaries leave out net/http's bundled HTTP/2 (the build tag
# nethttpomithttp2): the page and its API speak HTTP/1.1, which is all a
# gateway's page needs, and it saves about 370 KB, which keeps every
# binary under the budget.
alltags="nethttpomithttp2${TAGS:+,$TAGS}"

# gobuild TARGET OUT [extra go build flags...]: one static binary, with the
# flags the tests (internal/dist) use too.
gobuild() {
	local t=$1 out=$2 vcs=-buildvcs=false
	shift 2
	# Stamp the commit (kelvin version shows it) when git can tell it.
	if have_git; then vcs=-buildvcs=true; fi
	CGO_ENABLED=0 GOOS=linux GOARCH=$(goarch "$t") GOARM=$(goarm "$t") \
		go build -trimpath "$vcs" -tags "$alltags" "$@" -o "$out" .
}

ldflags="-X github.com/kelvin-gw/kelvin/agent.version=$VERSION"

build_bin() {
	local t=$1 out=$DIST/kelvin-linux-$1 arm size
	arm=$(goarm "$t")
	echo "== kelvin-linux-$t (GOARCH=$(goarch "$t")${arm:+ GOARM=$arm}, version $VERSION${TAGS:+, tags $TAGS})"
	gobuild "$t" "$out" -ldflags "-s -w $ldflags"
	size=$(stat -c %s "$out")
	if [ "$size" -gt "$MAX_BYTES" ]; then
		die "kelvin-linux-$t is $size bytes, over the budget of $MAX_BYTES (see: scripts/build.sh size $t)"
	fi
}

build_deb() {
	local t=$1 da
	da=$(debarch "$t")
	[ -n "$da" ] || die "no .deb for $t: the armhf package carries the armv6 binary, which runs on every Pi"
	echo "== kelvin_${DEB_VERSION}_$da.deb (from kelvin-linux-$t)"
	rm -f "$DIST"/kelvin_*_"$da".deb
	KELVIN_DEB_ARCH=$da KELVIN_DEB_VERSION=$DEB_VERSION KELVIN_BINARY=$DIST/kelvin-linux-$t \
		$NFPM package --config packaging/nfpm.yaml --packager deb --target "$DIST/" >/dev/null
	[ -f "$DIST/kelvin_${DEB_VERSION}_$da.deb" ] || die "nfpm did not write $DIST/kelvin_${DEB_VERSION}_$da.deb"
}

sums() {
	(
		cd "$DIST"
		shopt -s nullglob
		files=(kelvin-linux-* kelvin_*.deb)
		if [ ${#files[@]} -gt 0 ]; then sha256sum "${files[@]}" >SHA256SUMS; fi
	)
	echo "== $DIST"
	(cd "$DIST" && find . -maxdepth 1 \( -name 'kelvin-linux-*' -o -name 'kelvin_*.deb' \) -printf '%s %f\n' | sort -k2 |
		awk '{printf "%10d  %5.2f MiB  %s\n", $1, $1/1048576, $2}')
}

# awkhex defines hex(s) for any awk (mawk has no strtonum).
awkhex='function hex(s,  i, n) { n = 0; s = tolower(s); for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1; return n }'

# size TARGET: builds an unstripped binary into a temp dir and sums the
# symbol sizes per package (what -s -w strips is the symbol table and
# DWARF, not code, so the ranking holds for the stripped binary).

size_report() {
	local t=$1 tmp
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	gobuild "$t" "$tmp/kelvin" -ldflags "$ldflags"
	gobuild "$t" "$tmp/kelvin-stripped" -ldflags "-s -w $ldflags"
	echo "== kelvin-linux-$t${TAGS:+ (tags $TAGS)}: $(stat -c %s "$tmp/kelvin-stripped") bytes stripped, $(stat -c %s "$tmp/kelvin") unstripped"
	# Symbols at or past .bss take no room in the file (Go's nm marks
	# some of them D): leave them out when readelf can tell where it starts.
	local bss=0
	if command -v readelf >/dev/null; then
		# readelf -SW: "  [Nr] Name Type Address Off Size ...".
		readelf -SW "$tmp/kelvin-stripped" | awk "$awkhex"'
			{ l = $0; if (!sub(/^ *\[ *[0-9]+\] +/, "", l)) next; split(l, f, / +/) }
			f[1] ~ /^\.(text|rodata|gopclntab|noptrdata|data)$/ { printf "   section %-11s %6.0f KiB\n", f[1], hex(f[5]) / 1024 }'
		bss=$(readelf -SW "$tmp/kelvin" | awk '
			{ l = $0; if (!sub(/^ *\[ *[0-9]+\] +/, "", l)) next; split(l, f, / +/) }
			f[1] == ".bss" { print f[3] }')
	fi
	echo "   largest packages by the size of their code and data in the file (KiB; .gopclntab not included):"
	go tool nm -size "$tmp/kelvin" | awk -v bss="$bss" "$awkhex"'
		BEGIN { bss = hex(bss) }
		$3 ~ /^[TtRrDd]$/ && (bss == 0 || hex($1) < bss) {
			name = $4
			sub(/^(type:|go:itab\.|go:link\.|go:info\.)\**/, "", name)
			# The package is the name up to the first "." after the last "/".
			slash = 0
			for (i = length(name); i > 0; i--) if (substr(name, i, 1) == "/") { slash = i; break }
			rest = substr(name, slash + 1)
			dot = index(rest, ".")
			pkg = dot ? substr(name, 1, slash + dot - 1) : "(other)"
			if (pkg ~ /^(runtime|internal|syscall|reflect|sync|unicode|strconv|math|time|os|fmt|sort|strings|bytes|errors|io|encoding|crypto|net|compress|bufio|context|hash|log|regexp|slices|maps|container|mime|html|text|path|embed|iter|unique|weak|vendor)/) {
				split(pkg, p, "/"); pkg = "std:" p[1]
			} else {
				n = split(pkg, p, "/")
				if (n > 3) pkg = p[1] "/" p[2] "/" p[3]
			}
			sum[pkg] += $2
			total += $2
		}
		END {
			for (k in sum) printf "%10.0f  %5.1f%%  %s\n", sum[k] / 1024, 100 * sum[k] / total, k
		}' | sort -rn | head -25
	go tool nm -size -sort size "$tmp/kelvin" | awk -v bss="$bss" "$awkhex"'
		BEGIN { bss = hex(bss) }
		$3 ~ /^[TtRrDd]$/ && (bss == 0 || hex($1) < bss) && n++ < 10 {printf "   biggest symbol: %8d  %s\n", $2, $4}'
}

mode=all
case ${1:-} in
version)
	echo "$VERSION $DEB_VERSION"
	exit 0
	;;
all | bin | deb | size)
	mode=$1
	shift
	;;
-h | --help | help)
	usage
	exit 0
	;;
esac

targets=()
for t in "$@"; do
	case $t in
	armhf) t=armv6 ;;
	armv6 | armv7 | arm64 | amd64) ;;
	*) die "unknown target $t (want armv6, armv7, arm64, amd64; see scripts/build.sh --help)" ;;
	esac
	targets+=("$t")
done

mkdir -p "$DIST"
case $mode in
all)
	[ ${#targets[@]} -eq 0 ] || die "all builds every target; use bin or deb with targets"
	rm -f "$DIST"/kelvin-linux-* "$DIST"/kelvin_*.deb "$DIST"/SHA256SUMS
	for t in armv6 armv7 arm64 amd64; do build_bin "$t"; done
	for t in armv6 arm64 amd64; do build_deb "$t"; done
	sums
	;;
bin)
	[ ${#targets[@]} -gt 0 ] || targets=(armv6 armv7 arm64 amd64)
	for t in "${targets[@]}"; do build_bin "$t"; done
	sums
	;;
deb)
	[ ${#targets[@]} -gt 0 ] || targets=(armv6 arm64 amd64)
	for t in "${targets[@]}"; do
		[ -n "$(debarch "$t")" ] || die "no .deb for $t: the armhf package carries the armv6 binary, which runs on every Pi"
	done
	for t in "${targets[@]}"; do
		build_bin "$t"
		build_deb "$t"
	done
	sums
	;;
size)
	[ ${#targets[@]} -gt 0 ] || targets=(armv6 arm64)
	for t in "${targets[@]}"; do size_report "$t"; done
	;;
esac
