// Package metrics keeps mailgate's counters, gauges and histograms and
// writes them in the Prometheus text exposition format (version 0.0.4):
// "# HELP" and "# TYPE" lines, then one sample per label set, histogram
// buckets cumulative with le="+Inf", _sum and _count. Every registered
// metric name starts with mailgate_; WithProcess adds the Go runtime and
// process metrics under client_golang's standard names (go_*, process_*;
// see process.go), read at each scrape.
//
// Use: create one Registry, register metrics with Counter, Gauge and
// Histogram (each with its label names), update them from any goroutine,
// and serve Registry.WriteTo on /metrics.
package metrics

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Registry holds metrics in the order they were registered.
type Registry struct {
	mu      sync.Mutex
	metrics []*family
	process bool // WithProcess: the Go runtime and process metrics too
}

type family struct {
	name, help, kind string
	labels           []string
	buckets          []float64 // histograms
	mu               sync.Mutex
	series           map[string]*series
}

type series struct {
	values []string // label values
	value  float64
	counts []uint64 // histogram buckets (not cumulative)
	sum    float64
	n      uint64
}

func (r *Registry) add(name, help, kind string, labels []string, buckets []float64) *family {
	if !strings.HasPrefix(name, "mailgate_") {
		panic("metrics: name must start with mailgate_: " + name)
	}
	f := &family{name: name, help: help, kind: kind, labels: labels, buckets: buckets, series: map[string]*series{}}
	r.mu.Lock()
	r.metrics = append(r.metrics, f)
	r.mu.Unlock()
	return f
}

func (f *family) get(values []string) *series {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("metrics: %s takes %d label values, got %d", f.name, len(f.labels), len(values)))
	}
	key := strings.Join(values, "\xff")
	s, ok := f.series[key]
	if !ok {
		s = &series{values: slices.Clone(values)}
		if f.buckets != nil {
			s.counts = make([]uint64, len(f.buckets))
		}
		f.series[key] = s
	}
	return s
}

// CounterVec is a monotonically increasing count per label set.
type CounterVec struct{ f *family }

// Counter registers a counter.
func (r *Registry) Counter(name, help string, labels ...string) *CounterVec {
	return &CounterVec{r.add(name, help, "counter", labels, nil)}
}

// Add adds v (>= 0) to the series of these label values.
func (c *CounterVec) Add(v float64, labels ...string) {
	if v < 0 {
		return
	}
	c.f.mu.Lock()
	c.f.get(labels).value += v
	c.f.mu.Unlock()
}

// GaugeVec is a value that goes up and down, per label set.
type GaugeVec struct{ f *family }

// Gauge registers a gauge.
func (r *Registry) Gauge(name, help string, labels ...string) *GaugeVec {
	return &GaugeVec{r.add(name, help, "gauge", labels, nil)}
}

// Set sets the series of these label values.
func (g *GaugeVec) Set(v float64, labels ...string) {
	g.f.mu.Lock()
	g.f.get(labels).value = v
	g.f.mu.Unlock()
}

// Delete removes the series of these label values (a label value that
// went away, such as a serve instance that stopped).
func (g *GaugeVec) Delete(labels ...string) {
	g.f.mu.Lock()
	delete(g.f.series, strings.Join(labels, "\xff"))
	g.f.mu.Unlock()
}

// HistogramVec counts observations into buckets, per label set.
type HistogramVec struct{ f *family }

// Histogram registers a histogram with these upper bounds (sorted; +Inf is
// implied).
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) *HistogramVec {
	b := slices.Clone(buckets)
	slices.Sort(b)
	return &HistogramVec{r.add(name, help, "histogram", labels, b)}
}

// Observe records one value.
func (h *HistogramVec) Observe(v float64, labels ...string) {
	h.f.mu.Lock()
	s := h.f.get(labels)
	if i, _ := slices.BinarySearch(h.f.buckets, v); i < len(s.counts) {
		s.counts[i]++
	}
	s.sum += v
	s.n++
	h.f.mu.Unlock()
}

// WriteTo writes every metric in the text exposition format.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	r.mu.Lock()
	fams, process := slices.Clone(r.metrics), r.process
	r.mu.Unlock()
	for _, f := range fams {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, f.kind)
		f.mu.Lock()
		keys := make([]string, 0, len(f.series))
		for k := range f.series {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			s := f.series[k]
			if f.kind != "histogram" {
				fmt.Fprintf(&b, "%s%s %s\n", f.name, labelSet(f.labels, s.values, "", ""), num(s.value))
				continue
			}
			var cum uint64
			for i, ub := range f.buckets {
				cum += s.counts[i]
				fmt.Fprintf(&b, "%s_bucket%s %d\n", f.name, labelSet(f.labels, s.values, "le", num(ub)), cum)
			}
			fmt.Fprintf(&b, "%s_bucket%s %d\n", f.name, labelSet(f.labels, s.values, "le", "+Inf"), s.n)
			fmt.Fprintf(&b, "%s_sum%s %s\n", f.name, labelSet(f.labels, s.values, "", ""), num(s.sum))
			fmt.Fprintf(&b, "%s_count%s %d\n", f.name, labelSet(f.labels, s.values, "", ""), s.n)
		}
		f.mu.Unlock()
	}
	if process {
		writeProcess(&b)
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

func labelSet(names, values []string, extraName, extraValue string) string {
	if len(names) == 0 && extraName == "" {
		return ""
	}
	var parts []string
	for i, n := range names {
		parts = append(parts, n+`="`+escapeLabel(values[i])+`"`)
	}
	if extraName != "" {
		parts = append(parts, extraName+`="`+extraValue+`"`)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func num(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
