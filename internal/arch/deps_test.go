package arch

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/mailgate/mailgate/internal/"

// pkg is one package of the module: its path under internal/, its direct
// imports and all its dependencies, both limited to the module's packages.
type pkg struct {
	imports, deps []string
}

// rule is one constraint on a package's dependencies.
type rule struct {
	pkg string // under internal/
	// direct: only the package's own imports count (cli reaches agent
	// through the composition root, which is allowed); otherwise every
	// dependency does.
	direct bool
	// allowed lists what the package may depend on; nil means anything
	// but forbidden.
	allowed []string
	// forbidden lists what it must not depend on.
	forbidden []string
	why       string
}

// leaves are helper packages anything may import: they import no mailgate
// package themselves.
var leaves = []string{"loopback", "redact"}

// testSupport are packages for tests and bench/ only: no other package's
// non-test code depends on them.
var testSupport = []string{"dovecot", "pgtest", "testcert"}

var rules = []rule{
	{pkg: "sasl", allowed: leaves, why: "protocol packages know nothing of the application"},
	{pkg: "imap", allowed: leaves, why: "protocol packages know nothing of the application"},
	{pkg: "pop3", allowed: leaves, why: "protocol packages know nothing of the application"},
	{pkg: "smtp", allowed: leaves, why: "protocol packages know nothing of the application"},
	{pkg: "graph", allowed: leaves, why: "protocol packages know nothing of the application"},
	{pkg: "oauth", allowed: leaves, why: "protocol packages know nothing of the application"},
	{pkg: "proxy", allowed: append([]string{"sasl", "smtp"}, leaves...), why: "the legacy-client proxy is protocol code; the composition root gives it accounts and tokens"},
	{pkg: "loopback", allowed: []string{}, why: "a leaf helper"},
	{pkg: "redact", allowed: []string{}, why: "a leaf helper"},
	{pkg: "testcert", allowed: []string{}, why: "test support, a leaf"},
	{pkg: "emulator", allowed: []string{}, why: "the emulator stands for Microsoft's services, not for mailgate"},
	{pkg: "store", allowed: []string{"store/"}, why: "the store keeps plain values; the composition root adapts it"},
	{pkg: "agent", forbidden: []string{"store"}, why: "agent.Ledger is the agent's interface; the store is adapted to it"},
	{pkg: "sink", forbidden: []string{"config"}, why: "sinks take their options, not the configuration"},
	{pkg: "cli", direct: true, forbidden: []string{"agent", "sink", "mailbox", "outbox"},
		why: "cli parses, calls the composition root and prints"},
}

// under reports whether p is dep or below it ("store/" matches store's
// subpackages).
func under(p, dep string) bool {
	if strings.HasSuffix(dep, "/") {
		return strings.HasPrefix(p, dep)
	}
	return p == dep || strings.HasPrefix(p, dep+"/")
}

func matchesAny(p string, list []string) bool {
	return slices.ContainsFunc(list, func(d string) bool { return under(p, d) })
}

// check returns the violations of rules in pkgs, sorted, as
// "PKG imports DEP" (direct rules) or "PKG depends on DEP".
func check(pkgs map[string]pkg, rules []rule) []string {
	var out []string
	for _, r := range rules {
		p, ok := pkgs[r.pkg]
		if !ok {
			out = append(out, fmt.Sprintf("%s: no such package (rule: %s)", r.pkg, r.why))
			continue
		}
		deps, verb := p.deps, "depends on"
		if r.direct {
			deps, verb = p.imports, "imports"
		}
		for _, d := range deps {
			if under(d, r.pkg) && !under(r.pkg, d) {
				continue // its own subpackages
			}
			bad := matchesAny(d, r.forbidden)
			if r.allowed != nil && !matchesAny(d, r.allowed) {
				bad = true
			}
			if bad {
				out = append(out, fmt.Sprintf("%s %s %s", r.pkg, verb, d))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// checkTestSupport returns, sorted, each package outside support that
// depends on one of support, as "PKG depends on test support DEP".
func checkTestSupport(pkgs map[string]pkg, support []string) []string {
	var out []string
	for name, p := range pkgs {
		if matchesAny(name, support) {
			continue
		}
		for _, d := range p.deps {
			if matchesAny(d, support) {
				out = append(out, fmt.Sprintf("%s depends on test support %s", name, d))
			}
		}
	}
	slices.Sort(out)
	return out
}

// goList lists the module's packages under internal/ with their
// dependencies (non-test code, this machine's GOOS and GOARCH).
func goList(t *testing.T) map[string]pkg {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(goBin); err != nil {
		goBin = "go"
	}
	cmd := exec.Command(goBin, "list", "-f", "{{.ImportPath}}|{{join .Imports \" \"}}|{{join .Deps \" \"}}", "./internal/...")
	cmd.Dir = filepath.Join("..", "..")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	ours := func(list string) []string {
		var r []string
		for _, p := range strings.Fields(list) {
			if rest, ok := strings.CutPrefix(p, module); ok {
				r = append(r, rest)
			}
		}
		return r
	}
	pkgs := map[string]pkg{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		path, rest, _ := strings.Cut(sc.Text(), "|")
		imports, deps, _ := strings.Cut(rest, "|")
		if name, ok := strings.CutPrefix(path, module); ok {
			pkgs[name] = pkg{imports: ours(imports), deps: ours(deps)}
		}
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages under internal/:\n%s", len(pkgs), out)
	}
	return pkgs
}

// TestDependenciesPointInwards checks the module's own packages.
func TestDependenciesPointInwards(t *testing.T) {
	pkgs := goList(t)
	for _, v := range check(pkgs, rules) {
		t.Errorf("%s", v)
	}
	for _, v := range checkTestSupport(pkgs, testSupport) {
		t.Errorf("%s", v)
	}
}

// TestCheckTestSupport: a program's package reaching test support, even
// through another, is found; test support using test support is not.
func TestCheckTestSupport(t *testing.T) {
	tests := []struct {
		name string
		pkgs map[string]pkg
		want []string
	}{
		{"clean", map[string]pkg{"app": {deps: []string{"config", "loopback"}}, "dovecot": {deps: []string{"testcert"}}, "testcert": {}}, nil},
		{"direct", map[string]pkg{"app": {imports: []string{"testcert"}, deps: []string{"testcert"}}}, []string{"app depends on test support testcert"}},
		{"through another", map[string]pkg{"cli": {imports: []string{"app"}, deps: []string{"app", "pgtest"}}}, []string{"cli depends on test support pgtest"}},
		{"named like one is not one", map[string]pkg{"app": {deps: []string{"testcertificates"}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkTestSupport(tt.pkgs, testSupport); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCheck: the checker finds each kind of violation in a made-up graph
// and passes one that keeps the rules.
func TestCheck(t *testing.T) {
	clean := map[string]pkg{
		"sasl":     {},
		"imap":     {imports: []string{"loopback", "sasl"}, deps: []string{"loopback"}},
		"loopback": {},
		"store":    {imports: []string{"store/sqlx"}, deps: []string{"store/sqlx"}},
		"agent":    {imports: []string{"mailbox"}, deps: []string{"mailbox", "imap", "loopback"}},
		"sink":     {imports: []string{"redact"}, deps: []string{"redact"}},
		"cli":      {imports: []string{"app", "config"}, deps: []string{"app", "agent", "sink", "mailbox", "store"}},
	}
	rs := []rule{
		{pkg: "sasl", allowed: leaves},
		{pkg: "imap", allowed: []string{"loopback"}},
		{pkg: "loopback", allowed: []string{}},
		{pkg: "store", allowed: []string{"store/"}},
		{pkg: "agent", forbidden: []string{"store"}},
		{pkg: "sink", forbidden: []string{"config"}},
		{pkg: "cli", direct: true, forbidden: []string{"agent", "sink", "mailbox", "outbox"}},
	}
	if v := check(clean, rs); len(v) != 0 {
		t.Fatalf("clean graph: %v", v)
	}
	tests := []struct {
		name   string
		change func(map[string]pkg)
		want   []string
	}{
		{"protocol package imports the config", func(g map[string]pkg) {
			g["imap"] = pkg{deps: []string{"loopback", "config"}}
		}, []string{"imap depends on config"}},
		{"a leaf imports something", func(g map[string]pkg) {
			g["loopback"] = pkg{deps: []string{"config"}}
		}, []string{"loopback depends on config"}},
		{"store reaches oauth through a helper", func(g map[string]pkg) {
			g["store"] = pkg{deps: []string{"store/sqlx", "oauth"}}
		}, []string{"store depends on oauth"}},
		{"a package named like a store helper is not one", func(g map[string]pkg) {
			g["store"] = pkg{deps: []string{"storefront"}}
		}, []string{"store depends on storefront"}},
		{"agent imports store", func(g map[string]pkg) {
			g["agent"] = pkg{deps: []string{"mailbox", "store"}}
		}, []string{"agent depends on store"}},
		{"sink imports config", func(g map[string]pkg) {
			g["sink"] = pkg{deps: []string{"redact", "config"}}
		}, []string{"sink depends on config"}},
		{"cli imports agent and outbox", func(g map[string]pkg) {
			g["cli"] = pkg{imports: []string{"app", "agent", "outbox"}}
		}, []string{"cli imports agent", "cli imports outbox"}},
		{"a ruled package disappears", func(g map[string]pkg) {
			delete(g, "sink")
		}, []string{"sink: no such package (rule: )"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := map[string]pkg{}
			for k, v := range clean {
				g[k] = v
			}
			tt.change(g)
			if got := check(g, rs); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
