// Command benchfloor is the floor of scripts/bench.sh's side-by-side run:
// the least a Go program can do that still does the benchmark's work.
//
//	benchfloor W1DIR
//	benchfloor -mqtt tcp://HOST:PORT W1DIR
//
// Once a second it opens, reads and closes every W1DIR/*/w1_slave, and
// does nothing else: no parsing, no buffer, no page. What that costs is the
// price of waking a Go process once a second on the machine (the runtime's
// timer, poller and sysmon threads, cold caches), which no agent reading
// the same files at the same rate can go below.
//
// With -mqtt it also publishes each file's bytes, as read, to the broker at
// QoS 1 through the MQTT client Kelvin uses (paho, its defaults: one
// message per reading on floor/<device>, keep-alive 30 s) and waits for
// every acknowledgement before the next second: what an agent costs here
// that hands each reading to paho as it comes and does no work of its own.
// (One that sends a second's messages in one write, as Kelvin does, can go
// lower.)
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func main() {
	broker := flag.String("mqtt", "", "also publish each file at QoS 1 to this broker (tcp://host:port)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: benchfloor [-mqtt tcp://host:port] W1DIR")
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	files, err := filepath.Glob(filepath.Join(flag.Arg(0), "*", "w1_slave"))
	if err != nil || len(files) == 0 {
		fmt.Fprintln(os.Stderr, "benchfloor: no */w1_slave in", flag.Arg(0))
		os.Exit(1)
	}
	var pc paho.Client
	topics := make([]string, len(files))
	if *broker != "" {
		opts := paho.NewClientOptions().AddBroker(*broker).SetClientID(fmt.Sprintf("benchfloor-%d", os.Getpid())).
			SetKeepAlive(30 * time.Second)
		pc = paho.NewClient(opts)
		if t := pc.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
			fmt.Fprintln(os.Stderr, "benchfloor: connect:", *broker, t.Error())
			os.Exit(1)
		}
		for i, f := range files {
			topics[i] = "floor/" + filepath.Base(filepath.Dir(f))
		}
	}
	buf := make([]byte, 128)
	tokens := make([]paho.Token, 0, len(files))
	read := 0
	for range time.Tick(time.Second) {
		tokens = tokens[:0]
		for i, f := range files {
			fd, err := syscall.Open(f, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
			if err != nil {
				continue
			}
			n, _ := syscall.Read(fd, buf)
			syscall.Close(fd)
			read += n
			if pc != nil && n > 0 {
				tokens = append(tokens, pc.Publish(topics[i], 1, false, append([]byte(nil), buf[:n]...)))
			}
		}
		for _, t := range tokens {
			t.Wait()
		}
		if read < 0 { // keeps the reads from being optimised away
			fmt.Println(read)
		}
	}
}
