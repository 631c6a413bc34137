package metrics

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The Go runtime and process metrics, under the names (and with the
// meanings) of Prometheus client_golang's Go and process collectors, so
// that dashboards and alerts written for any Go service work unchanged.
// They are read when /metrics is scraped: the runtime's from runtime and
// runtime/metrics, the process's from /proc/self (Linux; elsewhere the
// process_* families that need /proc are left out).

// clockTicks is USER_HZ, the unit of /proc/self/stat's times: 100 on every
// Linux architecture Go supports (client_golang's procfs assumes the same).
const clockTicks = 100

// runtimeSamples maps client_golang names to the runtime/metrics they are
// read from (a sum when several).
var runtimeSamples = []struct {
	name, help, kind string
	from             []string
}{
	{"go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use.", "gauge", []string{"/memory/classes/heap/objects:bytes"}},
	{"go_memstats_alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already.", "counter", []string{"/gc/heap/allocs:bytes"}},
	{"go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and currently in use.", "gauge", []string{"/memory/classes/heap/objects:bytes"}},
	{"go_memstats_heap_objects", "Number of currently allocated objects.", "gauge", []string{"/gc/heap/objects:objects"}},
	{"go_memstats_mallocs_total", "Total number of heap objects allocated, both live and gc-ed.", "counter", []string{"/gc/heap/allocs:objects", "/gc/heap/tiny/allocs:objects"}},
	{"go_memstats_frees_total", "Total number of heap objects frees.", "counter", []string{"/gc/heap/frees:objects", "/gc/heap/tiny/allocs:objects"}},
	{"go_memstats_next_gc_bytes", "Number of heap bytes when next garbage collection will take place.", "gauge", []string{"/gc/heap/goal:bytes"}},
	{"go_memstats_sys_bytes", "Number of bytes obtained from system.", "gauge", []string{"/memory/classes/total:bytes"}},
	{"go_gc_gogc_percent", "Heap size target percentage configured by the user (GOGC).", "gauge", []string{"/gc/gogc:percent"}},
	{"go_gc_gomemlimit_bytes", "Go runtime memory limit configured by the user (GOMEMLIMIT).", "gauge", []string{"/gc/gomemlimit:bytes"}},
	{"go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting.", "gauge", []string{"/sched/gomaxprocs:threads"}},
}

// WithProcess makes WriteTo append the Go runtime and process metrics.
func (r *Registry) WithProcess() *Registry {
	r.mu.Lock()
	r.process = true
	r.mu.Unlock()
	return r
}

// writeProcess writes the runtime and process families to b.
func writeProcess(b *strings.Builder) {
	family := func(name, help, kind string, v float64) {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, escapeHelp(help), name, kind, name, num(v))
	}
	family("go_goroutines", "Number of goroutines that currently exist.", "gauge", float64(runtime.NumGoroutine()))
	fmt.Fprintf(b, "# HELP go_info Information about the Go environment.\n# TYPE go_info gauge\ngo_info{version=\"%s\"} 1\n", escapeLabel(runtime.Version()))

	samples := map[string]rtmetrics.Sample{}
	var names []rtmetrics.Sample
	for _, m := range runtimeSamples {
		for _, n := range m.from {
			if _, ok := samples[n]; !ok {
				samples[n] = rtmetrics.Sample{Name: n}
				names = append(names, rtmetrics.Sample{Name: n})
			}
		}
	}
	rtmetrics.Read(names)
	for _, s := range names {
		samples[s.Name] = s
	}
	for _, m := range runtimeSamples {
		v, ok := 0.0, true
		for _, n := range m.from {
			switch s := samples[n]; s.Value.Kind() {
			case rtmetrics.KindUint64:
				v += float64(s.Value.Uint64())
			case rtmetrics.KindFloat64:
				v += s.Value.Float64()
			default:
				ok = false // not known to this Go version
			}
		}
		if ok {
			family(m.name, m.help, m.kind, v)
		}
	}
	writeGCDuration(b)

	if p, err := readProcStat(); err == nil {
		family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter", p.cpuSeconds)
		family("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", p.rss)
		family("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", p.vsize)
		if p.start > 0 {
			family("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "gauge", p.start)
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		family("process_open_fds", "Number of open file descriptors.", "gauge", float64(len(fds)))
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		family("process_max_fds", "Maximum number of open file descriptors.", "gauge", float64(lim.Cur))
	}
}

// writeGCDuration is client_golang's go_gc_duration_seconds summary: the
// GC pause quantiles, their sum and the number of collections.
func writeGCDuration(b *strings.Builder) {
	var st debug.GCStats
	st.PauseQuantiles = make([]time.Duration, 5)
	debug.ReadGCStats(&st)
	b.WriteString("# HELP go_gc_duration_seconds A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.\n# TYPE go_gc_duration_seconds summary\n")
	for i, q := range []string{"0", "0.25", "0.5", "0.75", "1"} {
		fmt.Fprintf(b, "go_gc_duration_seconds{quantile=\"%s\"} %s\n", q, num(st.PauseQuantiles[i].Seconds()))
	}
	fmt.Fprintf(b, "go_gc_duration_seconds_sum %s\ngo_gc_duration_seconds_count %d\n", num(st.PauseTotal.Seconds()), st.NumGC)
}

// procStat is what the process_* metrics take from /proc/self/stat.
type procStat struct {
	cpuSeconds, rss, vsize float64
	start                  float64 // Unix seconds; 0 when /proc/stat has no btime
}

func readProcStat() (procStat, error) {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return procStat{}, err
	}
	p, startTicks, err := parseProcStat(string(stat), os.Getpagesize())
	if err != nil {
		return procStat{}, err
	}
	if all, err := os.ReadFile("/proc/stat"); err == nil {
		if bt, ok := bootTime(string(all)); ok {
			p.start = float64(bt) + float64(startTicks)/clockTicks
		}
	}
	return p, nil
}

var errProcStat = errors.New("metrics: unexpected /proc/self/stat")

// parseProcStat reads proc(5)'s stat line. The command name (field 2) is
// in parentheses and may hold spaces and parentheses itself, so the fields
// are counted from the last ')'. It returns the start time in clock ticks
// after boot (field 22) apart.
func parseProcStat(line string, pageSize int) (procStat, uint64, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return procStat{}, 0, errProcStat
	}
	f := strings.Fields(line[i+1:]) // f[0] is field 3 (state)
	if len(f) < 22 {
		return procStat{}, 0, errProcStat
	}
	field := func(n int) (uint64, error) { return strconv.ParseUint(f[n-3], 10, 64) }
	var v [5]uint64
	for j, n := range []int{14, 15, 22, 23, 24} { // utime stime starttime vsize rss
		x, err := field(n)
		if err != nil {
			return procStat{}, 0, fmt.Errorf("%w: field %d: %w", errProcStat, n, err)
		}
		v[j] = x
	}
	return procStat{
		cpuSeconds: float64(v[0]+v[1]) / clockTicks,
		vsize:      float64(v[3]),
		rss:        float64(v[4]) * float64(pageSize),
	}, v[2], nil
}

// bootTime is /proc/stat's btime line: the boot time in Unix seconds.
func bootTime(stat string) (uint64, bool) {
	for line := range strings.Lines(stat) {
		if rest, ok := strings.CutPrefix(line, "btime "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(rest), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
