// Package dist tests how Kelvin ships: the static binaries that
// scripts/build.sh cross-compiles for every Raspberry Pi, the .deb packages
// it makes with nfpm from packaging/, and scripts/install.sh. It holds no
// code, only tests:
//
//   - TestARMBinariesRunUnderEmulation builds the armv6 (GOARM=6) and arm64
//     binaries with build.sh's flags and runs them under qemu-user: the
//     armv6 one on an ARM1176 core (a Pi Zero's), which kills a binary that
//     uses ARMv7 instructions. Each serves its page and API on loopback and
//     exits 0 on SIGTERM. Needs qemu-arm-static and qemu-aarch64-static
//     (Debian package qemu-user-static). TestARM1176RejectsARMv7 proves
//     the emulated core is strict: a GOARM=7 program dies on it.
//   - TestDebPackages runs `scripts/build.sh deb` for the host's
//     architecture and inspects the package with dpkg-deb (package dpkg):
//     files, conffiles, maintainer scripts, the packaged config passing
//     `kelvin check`, the unit passing `systemd-analyze verify` and its
//     hardening score (when systemd-analyze is installed).
//   - TestDebVersion checks the Debian versions build.sh derives from
//     `git describe`, and their order by dpkg's rules.
//   - TestPackagedConfig checks packaging/kelvin.yaml covers every key of
//     configs/kelvin.yaml and passes `kelvin check` as shipped and with its
//     commented-out sensor and output sections enabled.
//   - TestDebLifecycle installs, upgrades, removes and purges the package
//     with dpkg inside a private mount namespace whose /etc, /usr and /var
//     are throwaway overlays: it runs only as root where overlay mounts are
//     allowed, and changes nothing on the machine.
//   - TestInstallScript runs scripts/install.sh into a DESTDIR, twice, and
//     as another user (refused); TestInstallScriptUsers, as root, lets it
//     create the kelvin user in a DESTDIR with its own /etc/passwd.
//
// Missing programs skip a test locally and fail it in CI (CI=true), as
// everywhere in Kelvin (internal/testenv). With a warm build cache the
// package takes about 30 s; a cold one compiles the module for three
// architectures and builds nfpm once, about 5 minutes on 2 cores.
package dist
