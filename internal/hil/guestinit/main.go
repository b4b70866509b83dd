//go:build linux

// Command guestinit is /init of the initramfs that internal/hil boots under
// QEMU: a Linux guest with no distribution, only this program, Kelvin and
// the kernel modules the test needs.
//
// It mounts devtmpfs, proc, sysfs and a tmpfs for Kelvin's data directory,
// loads the modules listed in /lib/modules/order (in that order, from the
// same directory), brings up lo and eth0 (10.0.2.15/24: QEMU's user-mode
// network, whose 10.0.2.2 is the host's loopback), runs `kelvin scan` and
// then `kelvin run -config /etc/kelvin.yaml`, with their output on the
// console. A line "poweroff" on the console stops Kelvin with SIGTERM and
// powers the guest off, which ends QEMU with status 0; so does Kelvin
// exiting by itself. Lines starting with "hil: " tell the harness where the
// guest is.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	if err := setup(); err != nil {
		say("setup failed: %v", err)
		powerOff()
	}
	say("scan begin")
	start := time.Now()
	scan := exec.Command("/kelvin", "scan")
	scan.Stdout, scan.Stderr = os.Stdout, os.Stdout
	err := scan.Run()
	say("scan end: %v in %.1fs", status(err), time.Since(start).Seconds())

	waitCarrier("eth0", 10*time.Second)
	kelvin := exec.Command("/kelvin", "run", "-config", "/etc/kelvin.yaml")
	kelvin.Stdout, kelvin.Stderr = os.Stdout, os.Stdout
	if err := kelvin.Start(); err != nil {
		say("kelvin did not start: %v", err)
		powerOff()
	}
	say("kelvin started")
	exited := make(chan error, 1)
	go func() { exited <- kelvin.Wait() }()
	poweroff := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "poweroff" {
				close(poweroff)
				return
			}
		}
	}()
	select {
	case err := <-exited:
		say("kelvin exited by itself: %v", status(err))
	case <-poweroff:
		kelvin.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			say("kelvin exited: %v", status(err))
		case <-time.After(20 * time.Second):
			say("kelvin exited: still running 20s after SIGTERM")
		}
	}
	powerOff()
}

// say prints a line for the harness.
func say(format string, args ...any) {
	fmt.Printf("hil: "+format+"\n", args...)
}

func status(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

func powerOff() {
	syscall.Sync()
	say("poweroff")
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	for {
		time.Sleep(time.Hour) // pid 1 must not exit
	}
}

func setup() error {
	for _, m := range []struct{ src, dir, fs string }{
		{"devtmpfs", "/dev", "devtmpfs"},
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"tmpfs", "/data", "tmpfs"},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount(m.src, m.dir, m.fs, 0, ""); err != nil {
			return fmt.Errorf("mount %s: %w", m.dir, err)
		}
	}
	order, err := os.ReadFile("/lib/modules/order")
	if err != nil {
		return err
	}
	for _, name := range strings.Fields(string(order)) {
		if err := loadModule(filepath.Join("/lib/modules", name)); err != nil {
			return err
		}
	}
	if err := waitFor("/sys/class/net/eth0", 10*time.Second); err != nil {
		return err
	}
	if err := ifUp("lo", [4]byte{127, 0, 0, 1}, [4]byte{255, 0, 0, 0}); err != nil {
		return err
	}
	return ifUp("eth0", [4]byte{10, 0, 2, 15}, [4]byte{255, 255, 255, 0})
}

// loadModule loads a kernel module from its file (init_module).
func loadModule(path string) error {
	image, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	params := []byte{0}
	_, _, errno := syscall.Syscall(syscall.SYS_INIT_MODULE, uintptr(unsafe.Pointer(&image[0])), uintptr(len(image)), uintptr(unsafe.Pointer(&params[0])))
	if errno != 0 && errno != syscall.EEXIST {
		return fmt.Errorf("load %s: %w", path, errno)
	}
	return nil
}

func waitFor(path string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %v", path, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCarrier waits until the interface's link is up, at most d.
func waitCarrier(ifname string, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/sys/class/net/" + ifname + "/carrier")
		if err == nil && bytes.Equal(bytes.TrimSpace(b), []byte("1")) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	say("%s: no carrier after %v", ifname, d)
}

// ifreq is struct ifreq with a struct sockaddr_in or the flags.
type ifreq struct {
	name [16]byte
	data [16]byte
}

// ifUp gives the interface an IPv4 address and netmask and sets it up; the
// kernel adds the route to its subnet.
func ifUp(name string, addr, mask [4]byte) error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	ioctl := func(req uintptr, r *ifreq) error {
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(r))); errno != 0 {
			return fmt.Errorf("%s: ioctl 0x%x: %w", name, req, errno)
		}
		return nil
	}
	sin := func(a [4]byte) *ifreq {
		r := &ifreq{}
		copy(r.name[:], name)
		binary.NativeEndian.PutUint16(r.data[0:], syscall.AF_INET)
		copy(r.data[4:8], a[:])
		return r
	}
	if err := ioctl(syscall.SIOCSIFADDR, sin(addr)); err != nil {
		return err
	}
	if err := ioctl(syscall.SIOCSIFNETMASK, sin(mask)); err != nil {
		return err
	}
	r := &ifreq{}
	copy(r.name[:], name)
	if err := ioctl(syscall.SIOCGIFFLAGS, r); err != nil {
		return err
	}
	flags := binary.NativeEndian.Uint16(r.data[0:]) | syscall.IFF_UP | syscall.IFF_RUNNING
	binary.NativeEndian.PutUint16(r.data[0:], flags)
	if err := ioctl(syscall.SIOCSIFFLAGS, r); err != nil {
		return err
	}
	return nil
}
