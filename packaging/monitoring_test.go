package packaging

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// alertRules is the shape of a Prometheus rule file, as much as we use.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

var metricName = regexp.MustCompile(`\bmailgate_[a-z0-9_]+`)

// monitoringMetrics returns every mailgate_ metric the alert rules and the
// Grafana dashboard query, after checking both files' shape.
func monitoringMetrics(t *testing.T) []string {
	t.Helper()
	var exprs []string
	b, err := os.ReadFile(filepath.Join(root(t), "packaging", "mailgate-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules alertRules
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("mailgate-alerts.yml: %v", err)
	}
	if len(rules.Groups) == 0 {
		t.Fatal("mailgate-alerts.yml: no groups")
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.For == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("mailgate-alerts.yml: rule %q lacks alert, expr, for, labels.severity or annotations.summary", r.Alert)
			}
			exprs = append(exprs, r.Expr)
		}
	}

	b, err = os.ReadFile(filepath.Join(root(t), "packaging", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if dash.Title == "" || len(dash.Panels) == 0 {
		t.Fatal("grafana-dashboard.json: no title or no panels")
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("grafana-dashboard.json: panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			exprs = append(exprs, q.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		exprs = append(exprs, v.Definition)
	}

	var names []string
	for _, e := range exprs {
		for _, n := range metricName.FindAllString(e, -1) {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return names
}

// family is the metric family a series name belongs to (a histogram's
// _bucket, _sum and _count series are its family's).
func family(name string, known func(string) bool) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && known(base) {
			return base
		}
	}
	return name
}

// TestMonitoringMetrics: the alert rules and the dashboard are well formed
// and every mailgate_ metric they query is one mailgate registers (a string
// literal in a non-test Go file under internal/). TestImage checks the same
// names against a running serve's /metrics.
func TestMonitoringMetrics(t *testing.T) {
	var sources strings.Builder
	err := filepath.WalkDir(filepath.Join(root(t), "internal"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		sources.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	registered := func(name string) bool { return strings.Contains(sources.String(), `"`+name+`"`) }
	names := monitoringMetrics(t)
	if len(names) < 5 {
		t.Fatalf("the monitoring files query only %v", names)
	}
	for _, n := range names {
		if !registered(family(n, registered)) {
			t.Errorf("%s is queried by packaging/ but no metric of that name is registered", n)
		}
	}
}
