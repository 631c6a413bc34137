package metrics

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// samples parses exposition text into name{labels} → value, checking
// that every sample follows a # TYPE line of its family.
func samples(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	typed := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			typed[strings.Fields(rest)[0]] = true
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q: %v", line, err)
		}
		name := line[:i]
		fam, _, _ := strings.Cut(name, "{")
		base := strings.TrimSuffix(strings.TrimSuffix(fam, "_sum"), "_count")
		if !typed[fam] && !typed[base] {
			t.Errorf("sample %q has no # TYPE line", line)
		}
		out[name] = v
	}
	return out
}

func TestProcessMetrics(t *testing.T) {
	var r Registry
	r.Counter("mailgate_x_total", "x.").Add(1)
	var without strings.Builder
	if _, err := r.WriteTo(&without); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(without.String(), "go_goroutines") {
		t.Fatal("runtime metrics without WithProcess")
	}
	runtime.GC() // so that the GC summary has a collection
	var b strings.Builder
	if _, err := r.WithProcess().WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	got := samples(t, b.String())
	positive := []string{
		"mailgate_x_total", "go_goroutines", `go_info{version="` + runtime.Version() + `"}`,
		"go_memstats_alloc_bytes", "go_memstats_alloc_bytes_total", "go_memstats_heap_alloc_bytes", "go_memstats_heap_objects",
		"go_memstats_mallocs_total", "go_memstats_frees_total", "go_memstats_next_gc_bytes", "go_memstats_sys_bytes",
		"go_gc_gogc_percent", "go_gc_gomemlimit_bytes", "go_sched_gomaxprocs_threads", "go_gc_duration_seconds_count",
		"process_max_fds",
	}
	if runtime.GOOS == "linux" {
		positive = append(positive, "process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds", "process_start_time_seconds")
	}
	for _, n := range positive {
		if v, ok := got[n]; !ok || v <= 0 {
			t.Errorf("%s = %v (present %v), want > 0", n, v, ok)
		}
	}
	for _, n := range []string{"process_cpu_seconds_total", `go_gc_duration_seconds{quantile="0.5"}`, "go_gc_duration_seconds_sum"} {
		if v, ok := got[n]; !ok || v < 0 {
			t.Errorf("%s = %v (present %v), want >= 0", n, v, ok)
		}
	}
	if runtime.GOOS == "linux" {
		// sane: started in the past day, using less memory than the machine has
		start := time.Unix(int64(got["process_start_time_seconds"]), 0)
		if time.Since(start) < 0 || time.Since(start) > 24*time.Hour {
			t.Errorf("process_start_time_seconds = %v (%v)", got["process_start_time_seconds"], start)
		}
		if got["process_resident_memory_bytes"] > got["process_virtual_memory_bytes"] {
			t.Errorf("resident %v > virtual %v", got["process_resident_memory_bytes"], got["process_virtual_memory_bytes"])
		}
		if g := got["go_goroutines"]; g < 1 || g > 1e5 {
			t.Errorf("go_goroutines = %v", g)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	// proc(5); the command name holds a space and a parenthesis.
	line := "4242 (mail gate) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 123456 700000000 5000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	p, start, err := parseProcStat(line, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if p.cpuSeconds != 3 || p.vsize != 700000000 || p.rss != 5000*4096 || start != 123456 {
		t.Errorf("got %+v start %d", p, start)
	}
	for _, bad := range []string{"", "4242 (x", "4242 (x) S 1 2", "4242 (x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 a 50 0 0 20 0 9 0 123456 700000000 5000"} {
		if _, _, err := parseProcStat(bad, 4096); err == nil {
			t.Errorf("parseProcStat(%q) gave no error", bad)
		}
	}
	if bt, ok := bootTime("cpu 1 2 3\nbtime 1700000000\nprocesses 5\n"); !ok || bt != 1700000000 {
		t.Errorf("bootTime = %d, %v", bt, ok)
	}
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		if _, _, err := parseProcStat(string(b), 4096); err != nil {
			t.Errorf("this process's stat: %v", err)
		}
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add("4242 (mail gate) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 123456 700000000 5000 18446744073709551615 1 1\n")
	f.Add("1 ((x)) R")
	f.Fuzz(func(t *testing.T, line string) {
		p, _, err := parseProcStat(line, 4096)
		if err == nil && (p.cpuSeconds < 0 || p.rss < 0 || p.vsize < 0) {
			t.Errorf("negative values from %q: %+v", line, p)
		}
	})
}
