package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
)

// Exit statuses of the kelvin command.
const (
	ExitOK     = 0
	ExitFailed = 1 // a runtime failure: a port in use, an unwritable data directory
	ExitUsage  = 2 // a bad command line or a bad config: nothing was started
)

// stopTimeout bounds a clean shutdown; past it the process exits anyway.
const stopTimeout = 5 * time.Second

const usage = `Kelvin turns a Linux gateway into a temperature gateway.

Usage:
  kelvin run [-config FILE]     run the agent (without -config: a built-in demo
                                with simulated sensors and the page on :8080)
  kelvin check -config FILE     validate a config file and exit
  kelvin scan [-config FILE]    list the attached 1-Wire and I²C sensors, with a
                                ready-to-paste sensors: block
  kelvin version                print version, commit, Go version and platform

Exit status: 0 ok, 1 runtime failure, 2 bad usage or bad config.
`

// Main is the kelvin command: it parses args (without the program name) and
// returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(args, stderr)
	case "check":
		return cmdCheck(args, stdout, stderr)
	case "scan":
		return cmdScan(args, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, versionLine())
		return ExitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return ExitOK
	}
	fmt.Fprintf(stderr, "kelvin: unknown command %q\n\n%s", cmd, usage)
	return ExitUsage
}

func versionLine() string {
	commit := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	return fmt.Sprintf("kelvin %s (commit %s, %s, %s/%s)", version, commit, runtime.Version(), runtime.GOOS, goarch())
}

func goarch() string {
	if runtime.GOARCH != "arm" {
		return runtime.GOARCH
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOARM" {
				return "arm/v" + strings.TrimSuffix(s.Value, ",softfloat")
			}
		}
	}
	return "arm"
}

// loadFlags parses -config and loads it (or the demo when allowed).
func loadFlags(name string, args []string, stderr io.Writer, demoOK bool) (*Config, int) {
	fs := flag.NewFlagSet("kelvin "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML); see configs/kelvin.yaml")
	if err := fs.Parse(args); err != nil {
		return nil, ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kelvin %s: unexpected argument %q\n", name, fs.Arg(0))
		return nil, ExitUsage
	}
	var cfg *Config
	var err error
	switch {
	case *path != "":
		cfg, err = LoadFile(*path)
	case demoOK:
		cfg, err = LoadDemo()
	default:
		fmt.Fprintf(stderr, "kelvin %s: -config FILE is required\n", name)
		return nil, ExitUsage
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, ExitUsage
	}
	return cfg, ExitOK
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	cfg, code := loadFlags("check", args, stderr, false)
	if cfg == nil {
		return code
	}
	var outs []string
	if cfg.MQTT != nil {
		outs = append(outs, "mqtt "+cfg.MQTT.URL)
	}
	if cfg.Kafka != nil {
		outs = append(outs, "kafka "+strings.Join(cfg.Kafka.Brokers, ","))
	}
	if len(outs) == 0 {
		outs = append(outs, "none")
	}
	page := "off"
	if cfg.HTTP.Listen != "" {
		page = cfg.HTTP.Listen
	}
	fleetSrc := ""
	if f := cfg.Fleet; f != nil {
		var srcs []string
		if f.MQTT != nil {
			srcs = append(srcs, "mqtt "+f.MQTT.URL)
		}
		if f.Kafka != nil {
			srcs = append(srcs, "kafka "+strings.Join(f.Kafka.Brokers, ",")+" "+f.Kafka.Topic)
		}
		fleetSrc = ", fleet follows: " + strings.Join(srcs, "; ")
	}
	fmt.Fprintf(stdout, "%s: ok: agent %s, %d sensors, outputs: %s, page: %s%s\n",
		cfg.File, cfg.Agent.ID, len(cfg.Sensors), strings.Join(outs, "; "), page, fleetSrc)
	if cfg.HTTP.Listen != "" {
		checkHistory(cfg, stdout)
	}
	return ExitOK
}

// checkHistory says what the page's in-memory history needs for the
// configured sensors against http.history_bytes, and warns when the
// budget holds less than http.history of the fastest sensor.
func checkHistory(cfg *Config, stdout io.Writer) {
	var ivs []time.Duration
	fastest := time.Duration(0)
	for i := range cfg.Sensors {
		s := &cfg.Sensors[i]
		for range s.Quantities() {
			ivs = append(ivs, s.Interval)
		}
		if s.Interval > 0 && (fastest == 0 || s.Interval < fastest) {
			fastest = s.Interval
		}
	}
	h := &cfg.HTTP
	need, per := h.HistoryNeed(ivs)
	mib := func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
	fmt.Fprintf(stdout, "page history: %d series need about %s for http.history %v; http.history_bytes is %s\n",
		len(ivs), mib(need), h.History, mib(int64(h.HistoryBytes)))
	if need > int64(h.HistoryBytes) && fastest > 0 {
		fmt.Fprintf(stdout, "warning: http.history_bytes: %s holds %d readings per series, about %v of a sensor read every %v, less than http.history %v: raise http.history_bytes to %s or lower http.history\n",
			mib(int64(h.HistoryBytes)), per, (time.Duration(per) * fastest).Round(time.Second), fastest, h.History, mib(need))
	}
}

func cmdRun(args []string, stderr io.Writer) int {
	cfg, code := loadFlags("run", args, stderr, true)
	if cfg == nil {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				select {
				case reload <- struct{}{}:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	load := func() (*Config, error) {
		if cfg.File == DemoFile {
			return LoadDemo()
		}
		return LoadFile(cfg.File)
	}
	// agent.cpus, against what the runtime chose at start (restored at the
	// end, for callers that run more than the command).
	goDefault := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(goDefault)
	_, envSet := os.LookupEnv("GOMAXPROCS")
	setCPUs := func(c *Config) {
		if n, ok := c.goMaxProcs(goDefault, envSet); ok {
			runtime.GOMAXPROCS(n)
		}
	}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, cfg, reload, load, Options{LogOut: stderr, SetCPUs: setCPUs}) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		stop() // a second signal kills the process the default way
		select {
		case err = <-done:
		case <-time.After(stopTimeout):
			fmt.Fprintf(stderr, "kelvin: shutdown took longer than %v; exiting anyway\n", stopTimeout)
			return ExitFailed
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "kelvin: %v\n", err)
		return ExitFailed
	}
	return ExitOK
}
