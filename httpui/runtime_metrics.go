package httpui

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// The Go runtime's and the process's standard series, under the names the
// Prometheus Go and process collectors (client_golang) give them, so that
// the usual Go dashboards work: the go_memstats_* values are derived from
// runtime/metrics exactly as that collector derives them (without the
// stop-the-world of runtime.ReadMemStats), and process_* come from /proc.

// rmSamples are the runtime/metrics the go_* series are made of, by name.
var rmNames = []string{
	"/gc/heap/allocs:bytes", "/gc/heap/allocs:objects", "/gc/heap/frees:objects", "/gc/heap/tiny/allocs:objects",
	"/gc/heap/objects:objects", "/gc/heap/goal:bytes", "/gc/cycles/total:gc-cycles", "/gc/gogc:percent",
	"/gc/gomemlimit:bytes", "/sched/goroutines:goroutines", "/sched/gomaxprocs:threads",
	"/memory/classes/total:bytes", "/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/released:bytes", "/memory/classes/heap/free:bytes", "/memory/classes/heap/stacks:bytes",
	"/memory/classes/os-stacks:bytes", "/memory/classes/metadata/mspan/inuse:bytes",
	"/memory/classes/metadata/mspan/free:bytes", "/memory/classes/metadata/mcache/inuse:bytes",
	"/memory/classes/metadata/mcache/free:bytes", "/memory/classes/profiling/buckets:bytes",
	"/memory/classes/metadata/other:bytes", "/memory/classes/other:bytes",
}

// goSeries are the go_* series: name, type, help, and the value from the
// runtime/metrics samples (rm returns 0 for a metric this Go lacks).
var goSeries = []struct {
	name, typ, help string
	v               func(rm func(string) float64) float64
}{
	{"go_goroutines", "gauge", "Number of goroutines that currently exist.",
		func(rm func(string) float64) float64 { return rm("/sched/goroutines:goroutines") }},
	{"go_sched_gomaxprocs_threads", "gauge", "The current runtime.GOMAXPROCS setting.",
		func(rm func(string) float64) float64 { return rm("/sched/gomaxprocs:threads") }},
	{"go_gc_gogc_percent", "gauge", "Heap size target percentage configured by GOGC (or debug.SetGCPercent).",
		func(rm func(string) float64) float64 { return rm("/gc/gogc:percent") }},
	{"go_gc_gomemlimit_bytes", "gauge", "Go runtime memory limit configured by GOMEMLIMIT (or debug.SetMemoryLimit).",
		func(rm func(string) float64) float64 { return rm("/gc/gomemlimit:bytes") }},
	{"go_memstats_alloc_bytes", "gauge", "Number of bytes allocated in heap and currently in use.",
		func(rm func(string) float64) float64 { return rm("/memory/classes/heap/objects:bytes") }},
	{"go_memstats_alloc_bytes_total", "counter", "Total number of bytes allocated in heap until now, even if released already.",
		func(rm func(string) float64) float64 { return rm("/gc/heap/allocs:bytes") }},
	{"go_memstats_sys_bytes", "gauge", "Number of bytes obtained from system.",
		func(rm func(string) float64) float64 { return rm("/memory/classes/total:bytes") }},
	{"go_memstats_mallocs_total", "counter", "Total number of heap objects allocated, both live and gc-ed.",
		func(rm func(string) float64) float64 {
			return rm("/gc/heap/allocs:objects") + rm("/gc/heap/tiny/allocs:objects")
		}},
	{"go_memstats_frees_total", "counter", "Total number of heap objects frees.",
		func(rm func(string) float64) float64 {
			return rm("/gc/heap/frees:objects") + rm("/gc/heap/tiny/allocs:objects")
		}},
	{"go_memstats_heap_alloc_bytes", "gauge", "Number of heap bytes allocated and currently in use.",
		func(rm func(string) float64) float64 { return rm("/memory/classes/heap/objects:bytes") }},
	{"go_memstats_heap_sys_bytes", "gauge", "Number of heap bytes obtained from system.",
		func(rm func(string) float64) float64 {
			return rm("/memory/classes/heap/objects:bytes") + rm("/memory/classes/heap/unused:bytes") +
				rm("/memory/classes/heap/released:bytes") + rm("/memory/classes/heap/free:bytes")
		}},
	{"go_memstats_heap_idle_bytes", "gauge", "Number of heap bytes waiting to be used.",
		func(rm func(string) float64) float64 {
			return rm("/memory/classes/heap/released:bytes") + rm("/memory/classes/heap/free:bytes")
		}},
	{"go_memstats_heap_inuse_bytes", "gauge", "Number of heap bytes that are in use.",
		func(rm func(string) float64) float64 {
			return rm("/memory/classes/heap/objects:bytes") + rm("/memory/classes/heap/unused:bytes")
		}},
	{"go_memstats_heap_released_bytes", "gauge", "Number of heap bytes released to OS.",
		func(rm func(string) float64) float64 { return rm("/memory/classes/heap/released:bytes") }},
	{"go_memstats_heap_objects", "gauge", "Number of currently allocated objects.",
		func(rm func(string) float64) float64 { return rm("/gc/heap/objects:objects") }},
	{"go_memstats_stack_inuse_bytes", "gauge", "Number of bytes obtained from system for stack allocator in non-CGO environments.",
		func(rm func(string) float64) float64 { return rm("/memory/classes/heap/stacks:bytes") }},
	{"go_memstats_stack_sys_bytes", "gauge", "Number of bytes obtained from system for stack allocator.",
		func(rm func(string) float64) float64 {
			return rm("/memory/classes/heap/stacks:bytes") + rm("/memory/classes/os-stacks:bytes")
		}},
	{"go_memstats_mspan_inuse_bytes", "gauge", "Number of bytes in use by mspan structures.",
		func(rm func(string) float64) float64 { return rm("/memory/classes/metadata/mspan/inuse:bytes") }},
	{"go_memstats_mspan_sys_bytes", "gauge", "Number of bytes used for mspan structures obtained from system.",
		func(rm func(string) float64) float64 {
			return rm("/memory/classes/metadata/mspan/inuse:bytes") + rm("/memory/classes/metadata/mspan/free:bytes")
		}},
	{"go_memstats_mcache_inuse_bytes", "gauge", "Number of bytes in use by mcache structures.",
		func(rm func(string) float64) float64 { return rm("/memory/classes/metadata/mcache/inuse:bytes") }},
	{"go_memstats_mcache_sys_bytes", "gauge", "Number of bytes used for mcache structures obtained from system.",
		func(rm func(string) float64) float64 {
			return rm("/memory/classes/metadata/mcache/inuse:bytes") + rm("/memory/classes/metadata/mcache/free:bytes")
		}},
	{"go_memstats_buck_hash_sys_bytes", "gauge", "Number of bytes used by the profiling bucket hash table.",
		func(rm func(string) float64) float64 { return rm("/memory/classes/profiling/buckets:bytes") }},
	{"go_memstats_gc_sys_bytes", "gauge", "Number of bytes used for garbage collection system metadata.",
		func(rm func(string) float64) float64 { return rm("/memory/classes/metadata/other:bytes") }},
	{"go_memstats_other_sys_bytes", "gauge", "Number of bytes used for other system allocations.",
		func(rm func(string) float64) float64 { return rm("/memory/classes/other:bytes") }},
	{"go_memstats_next_gc_bytes", "gauge", "Number of heap bytes when next garbage collection will take place.",
		func(rm func(string) float64) float64 { return rm("/gc/heap/goal:bytes") }},
	{"go_gc_cycles_total", "counter", "Completed GC cycles.",
		func(rm func(string) float64) float64 { return rm("/gc/cycles/total:gc-cycles") }},
}

// writeRuntime writes the go_* and process_* series.
func writeRuntime(m *metricsWriter) {
	samples := make([]metrics.Sample, len(rmNames))
	for i, n := range rmNames {
		samples[i].Name = n
	}
	metrics.Read(samples)
	byName := make(map[string]float64, len(samples))
	for _, s := range samples {
		switch s.Value.Kind() {
		case metrics.KindUint64:
			byName[s.Name] = float64(s.Value.Uint64())
		case metrics.KindFloat64:
			byName[s.Name] = s.Value.Float64()
		}
	}
	rm := func(name string) float64 { return byName[name] }

	m.family("go_info", "gauge", "Information about the Go environment.")
	m.sample("go_info", 1, "version", runtime.Version())
	for _, g := range goSeries {
		m.family(g.name, g.typ, g.help)
		m.sample(g.name, g.v(rm))
	}
	// GC pauses as the client library's summary: min, quartiles, max.
	var gc debug.GCStats
	gc.PauseQuantiles = make([]time.Duration, 5)
	debug.ReadGCStats(&gc)
	m.family("go_gc_duration_seconds", "summary", "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.")
	for i, q := range []string{"0", "0.25", "0.5", "0.75", "1"} {
		m.sample("go_gc_duration_seconds", gc.PauseQuantiles[i].Seconds(), "quantile", q)
	}
	m.sample("go_gc_duration_seconds_sum", gc.PauseTotal.Seconds())
	m.sample("go_gc_duration_seconds_count", float64(gc.NumGC))
	if !gc.LastGC.IsZero() {
		m.family("go_memstats_last_gc_time_seconds", "gauge", "Number of seconds since 1970 of last garbage collection.")
		m.sample("go_memstats_last_gc_time_seconds", unix(gc.LastGC))
	}

	p, ok := readProcStat()
	if !ok {
		return
	}
	m.family("go_threads", "gauge", "Number of OS threads created.")
	m.sample("go_threads", p.threads)
	for _, f := range []struct {
		name, typ, help string
		v               float64
	}{
		{"process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", p.cpuSeconds},
		{"process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", p.rss},
		{"process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", p.vsize},
		{"process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", p.start},
	} {
		m.family(f.name, f.typ, f.help)
		m.sample(f.name, f.v)
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		m.family("process_open_fds", "gauge", "Number of open file descriptors.")
		m.sample("process_open_fds", float64(len(fds)))
	}
	if n, ok := maxFDs(); ok {
		m.family("process_max_fds", "gauge", "Maximum number of open file descriptors.")
		m.sample("process_max_fds", n)
	}
}

// procStat is what the process collector reads from /proc/self/stat.
type procStat struct{ threads, cpuSeconds, rss, vsize, start float64 }

// userHZ is the unit of /proc's CPU times and start time: USER_HZ, 100 on
// every Linux architecture Kelvin is built for.
const userHZ = 100

// readProcStat reads /proc/self/stat (proc(5)) and the boot time from
// /proc/stat; false where there is no /proc.
func readProcStat() (procStat, bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return procStat{}, false
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 22 {
		return procStat{}, false
	}
	num := func(field int) float64 { v, _ := strconv.ParseFloat(f[field-3], 64); return v }
	p := procStat{
		threads:    num(20),
		cpuSeconds: (num(14) + num(15)) / userHZ,
		vsize:      num(23),
		rss:        num(24) * float64(os.Getpagesize()),
	}
	if st, err := os.ReadFile("/proc/stat"); err == nil {
		for _, line := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(line, "btime "); ok {
				btime, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				p.start = btime + num(22)/userHZ
			}
		}
	}
	return p, true
}

// maxFDs reads the soft limit of open files from /proc/self/limits.
func maxFDs() (float64, bool) {
	b, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, err := strconv.ParseFloat(f[0], 64)
				return v, err == nil
			}
		}
	}
	return 0, false
}
