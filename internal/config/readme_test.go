package config

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// readmeStubs define what README examples refer to without defining it
// themselves (the profile contoso of "Getting tokens", a sink named app),
// appended when a block has no list of that kind of its own.
var readmeStubs = map[string]string{
	"profiles": `profiles:
  - {name: contoso, provider: microsoft, grant: client_credentials, tenant: contoso.com, client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, client_secret: x}
  - {name: contoso-graph, provider: microsoft, grant: client_credentials, tenant: contoso.com, client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, client_secret: x, scopes: [https://graph.microsoft.com/.default]}
`,
	"sinks": `sinks:
  - {name: app, type: webhook, url: https://app.example/mail, secret: x}
  - {name: forms-out, type: maildir, path: ./inbox}
`,
}

// readmeYAML is every yaml block of README.md with its line and section.
func readmeYAML(t *testing.T) (blocks []struct {
	line    int
	section string
	text    string
}) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section, start := "", 0
	var cur []string
	for i, l := range strings.Split(string(data), "\n") {
		switch {
		case start == 0 && strings.HasPrefix(l, "#"):
			section = l
		case start == 0 && strings.TrimSpace(l) == "```yaml":
			start, cur = i+2, nil
		case start != 0 && strings.TrimSpace(l) == "```":
			blocks = append(blocks, struct {
				line    int
				section string
				text    string
			}{start, section, strings.Join(cur, "\n") + "\n"})
			start = 0
		case start != 0:
			cur = append(cur, l)
		}
	}
	return blocks
}

// TestREADMEExamples: every configuration example in README.md parses and
// validates: no unknown key, no value out of range, no reference to a name
// nothing defines. A file the example names but a reader creates (sa.json,
// a certificate) is the only problem allowed.
func TestREADMEExamples(t *testing.T) {
	blocks := readmeYAML(t)
	if len(blocks) < 10 {
		t.Fatalf("%d yaml blocks in README.md", len(blocks))
	}
	dir := t.TempDir()
	checked := 0
	for _, b := range blocks {
		if strings.HasPrefix(strings.TrimSpace(b.text), "- alert:") {
			continue // a Prometheus rule, not mailgate's
		}
		checked++
		doc := dedent(b.text)
		for key, stub := range readmeStubs {
			if !strings.Contains("\n"+doc, "\n"+key+":") {
				doc += stub
			}
		}
		name := filepath.Join(dir, "README.md-line-"+strconv.Itoa(b.line)+".yaml")
		_, err := Parse([]byte(doc), name, func(string) string { return "x" })
		if err == nil {
			continue
		}
		var cerr *Error
		if !errors.As(err, &cerr) {
			t.Errorf("README.md:%d (%s): %v", b.line, b.section, err)
			continue
		}
		missing := map[string]bool{} // keys naming a file the reader makes
		for _, p := range cerr.Problems {
			if strings.HasPrefix(p.Msg, "cannot read ") {
				missing[p.Key] = true
			}
		}
		for _, p := range cerr.Problems {
			if !missing[p.Key] {
				t.Errorf("README.md:%d (%s): line %d of the block: %s: %s", b.line, b.section, p.Line, p.Key, p.Msg)
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d configuration examples checked", checked)
	}
}

// dedent removes the indentation every line of a block shares (a block
// inside a Markdown list item is indented as a whole).
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	n := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if i := len(l) - len(strings.TrimLeft(l, " ")); n < 0 || i < n {
			n = i
		}
	}
	for i, l := range lines {
		if len(l) >= n && n > 0 {
			lines[i] = l[n:]
		}
	}
	return strings.Join(lines, "\n")
}
