package agent

// maxCPUs bounds agent.cpus: the Go runtime takes any number, but a value
// past this is a typo, not a machine.
const maxCPUs = 1024

// goMaxProcs is the GOMAXPROCS the agent runs with (agent.cpus), given the
// runtime's own choice at start (goDefault: the CPUs the process may use,
// by its affinity and cgroup limit, or $GOMAXPROCS) and whether
// $GOMAXPROCS was set; ok is false when the runtime's choice stays.
//
// A gateway's work is a few readings a second, and a Go program with more
// than one P pays for it at every wake-up: a goroutine made ready wakes an
// idle P's thread to look for work, which finds none and sleeps again.
// Unpinned on a two-core machine, one P cost Kelvin 16–25 % less CPU, and
// its throughput benchmarks stayed far above a gateway's needs
// (docs/BENCHMARKS.md). Blocking system calls, such as a 1-Wire read that
// waits for the bus, still run on threads of their own. A fleet receiver,
// which may take thousands of readings a second, keeps every CPU.
// $GOMAXPROCS wins over the default, not over a cpus the file sets.
func (c *Config) goMaxProcs(goDefault int, envSet bool) (n int, ok bool) {
	if envSet && !c.has("agent.cpus") {
		return 0, false
	}
	if c.Agent.CPUs == 0 {
		return goDefault, true
	}
	return c.Agent.CPUs, true
}
