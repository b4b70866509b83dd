// Command kelvin turns a Raspberry Pi (or any Linux gateway) into a
// temperature gateway: it reads I²C and 1-Wire sensors, smooths the
// readings, keeps them on disk while the network is down, forwards them to
// MQTT or Kafka and serves a live page. See README.md.
package main

import (
	"os"

	"github.com/kelvin-gw/kelvin/agent"
)

func main() { os.Exit(agent.Main(os.Args[1:], os.Stdout, os.Stderr)) }
