// Command benchfloor is the floor of scripts/bench.sh's side-by-side run:
// the least a Go program can do that still reads the benchmark's sensors.
// Once a second it opens, reads and closes every DIR/*/w1_slave given, and
// does nothing else: no parsing, no buffer, no broker, no page. What it
// costs is the price of waking a Go process once a second on the machine
// (the runtime's timer, poller and sysmon threads, cold caches), which no
// agent reading the same files at the same rate can go below.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: benchfloor W1DIR")
		os.Exit(2)
	}
	files, err := filepath.Glob(filepath.Join(os.Args[1], "*", "w1_slave"))
	if err != nil || len(files) == 0 {
		fmt.Fprintln(os.Stderr, "benchfloor: no */w1_slave in", os.Args[1])
		os.Exit(1)
	}
	buf := make([]byte, 128)
	read := 0
	for range time.Tick(time.Second) {
		for _, f := range files {
			fd, err := syscall.Open(f, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
			if err != nil {
				continue
			}
			n, _ := syscall.Read(fd, buf)
			syscall.Close(fd)
			read += n
		}
		if read < 0 { // keeps the reads from being optimised away
			fmt.Println(read)
		}
	}
}
