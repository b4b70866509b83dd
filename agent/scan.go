package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/sensors"
	"github.com/kelvin-gw/kelvin/sensors/hw"
)

// cmdScan lists what is attached: the kernel's 1-Wire devices with a live
// reading, and every I²C bus with the addresses that answer and the chip
// identified where it has an ID register. It ends with a sensors: block to
// paste into kelvin.yaml.
func cmdScan(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kelvin scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file, for onewire.sysfs (optional)")
	sysfs := fs.String("sysfs", "", "the kernel's 1-Wire devices directory (default /sys/bus/w1/devices, or the config's)")
	dev := fs.String("dev", hw.DevDir, "where the I²C bus device files i2c-N are")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if *sysfs == "" {
		*sysfs = sensors.DefaultW1SysfsDir
		if *path != "" {
			cfg, err := LoadFile(*path)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return ExitUsage
			}
			*sysfs = cfg.OneWire.Sysfs
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var yaml []string
	found := 0

	w1, err := hw.ScanW1(ctx, *sysfs, wallclock.Now)
	switch {
	case errors.Is(err, sensors.ErrNoDevice) || errors.Is(err, os.ErrNotExist):
		fmt.Fprintf(stdout, "1-Wire: no kernel 1-Wire bus at %s (enable it: dtoverlay=w1-gpio,gpiopin=4 in config.txt)\n", *sysfs)
	case err != nil:
		fmt.Fprintf(stdout, "1-Wire: %v %s\n", err, hw.PermissionHint(err))
	case len(w1) == 0:
		fmt.Fprintf(stdout, "1-Wire (%s): no temperature sensors found\n", *sysfs)
	default:
		fmt.Fprintf(stdout, "1-Wire (%s):\n", *sysfs)
		for _, d := range w1 {
			found++
			if d.OK {
				fmt.Fprintf(stdout, "  %s  %s °C\n", d.Address, strconv.FormatFloat(d.Celsius, 'f', -1, 64))
			} else {
				fmt.Fprintf(stdout, "  %s  faulty: %v\n", d.Address, d.Err)
			}
			yaml = append(yaml, fmt.Sprintf("  - id: %s\n    type: ds18b20\n    address: %s\n", w1ID(d.Address), d.Address))
		}
		printW1Bulk(stdout, *sysfs)
	}

	buses, _ := hw.ListI2C(*dev)
	if len(buses) == 0 {
		fmt.Fprintf(stdout, "I²C: no buses at %s/i2c-* (enable I²C: dtparam=i2c_arm=on in config.txt, or raspi-config; then modprobe i2c-dev)\n", *dev)
	}
	b := hw.NewBuses()
	defer b.Close()
	for _, n := range buses {
		res := b.ScanBus(ctx, n)
		if res.Err != nil {
			fmt.Fprintf(stdout, "I²C bus %d: %v\n", n, res.Err)
			continue
		}
		if len(res.Found) == 0 {
			fmt.Fprintf(stdout, "I²C bus %d: nothing answers\n", n)
			continue
		}
		fmt.Fprintf(stdout, "I²C bus %d:\n", n)
		for _, f := range res.Found {
			found++
			switch {
			case f.Chip == "ds2482":
				fmt.Fprintf(stdout, "  0x%02x  DS2482 1-Wire bridge: %d devices %s\n", f.Addr, len(f.Devices), strings.Join(f.Devices, " "))
				for _, d := range f.Devices {
					if y, ok := bridgeSensorYAML(d, n, f.Addr); ok {
						yaml = append(yaml, y)
					}
				}
			case f.Chip == "":
				fmt.Fprintf(stdout, "  0x%02x  unknown%s\n", f.Addr, hw.UnknownHint(f.Addr))
			default:
				fmt.Fprintf(stdout, "  0x%02x  %s\n", f.Addr, f.Chip)
				yaml = append(yaml, fmt.Sprintf("  - id: %s_%d_%02x\n    type: %s\n    bus: %d\n    address: 0x%02x\n", f.Chip, n, f.Addr, f.Chip, n, f.Addr))
			}
		}
	}
	if len(yaml) > 0 {
		fmt.Fprintf(stdout, "\nPaste into kelvin.yaml (rename the ids as you like):\nsensors:\n%s", strings.Join(yaml, ""))
	} else if found == 0 {
		fmt.Fprintln(stdout, "\nNothing attached was found. docs/hardware.md shows the wiring and the config.txt lines.")
	}
	return ExitOK
}

// printW1Bulk reports, per kernel 1-Wire bus with a thermometer, whether
// the user running scan may start a bulk conversion there (one conversion
// for the whole bus instead of one per sensor).
func printW1Bulk(stdout io.Writer, sysfs string) {
	sts, err := sensors.W1BulkAccess(sysfs)
	if err != nil || len(sts) == 0 {
		return
	}
	who := "this user"
	if u, err := user.Current(); err == nil {
		who = "user " + u.Username
	}
	fmt.Fprintf(stdout, "1-Wire bulk conversion, for %s:\n", who)
	for _, st := range sts {
		fmt.Fprintf(stdout, "  %s\n", st)
	}
}

// bridgeSensorYAML is the sensors: entry suggested for device d found
// behind the DS2482 at addr on I²C bus bus; false for a device that is not
// a thermometer the config takes (sensors.ValidW1Address is the one table
// of 1-Wire temperature families, for the kernel's bus and a bridge alike).
func bridgeSensorYAML(d string, bus int, addr uint16) (string, bool) {
	if sensors.ValidW1Address(d) != nil {
		return "", false
	}
	return fmt.Sprintf("  - id: %s\n    type: ds18b20\n    address: %s\n    bus: %d\n    bridge: 0x%02x\n", w1ID(d), d, bus, addr), true
}

// w1ID suggests a unique sensor id from a 1-Wire name: w1_28_0316a2b8ff01
// for 28-0316a2b8ff01.
func w1ID(addr string) string {
	return "w1_" + strings.ReplaceAll(addr, "-", "_")
}
