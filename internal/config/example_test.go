package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/example.golden.yaml and docs/config.md")

const golden = "testdata/example.golden.yaml"

func TestExampleGolden(t *testing.T) {
	got := Example()
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestExampleGolden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Example() differs from %s; run go test ./internal/config -run TestExampleGolden -update and review the diff", golden)
	}
}

// TestExampleLoads loads the golden example, beside the files it names,
// with the variables it references: it must have no problems.
func TestExampleLoads(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"mailgate.yaml":        string(data),
		"app.crt":              "cert",
		"app.key":              "key",
		"google-client.secret": "google-secret\n",
		"sa.json":              `{"type": "service_account"}`,
		"legacy.crt":           "cert",
		"legacy.key":           "key",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := Load(filepath.Join(dir, "mailgate.yaml"), env(map[string]string{"CONTOSO_SECRET": "c", "HOOK_SECRET": "h", "SCANNER_PASSWORD": "p"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
	if len(cfg.Profiles) != 4 || len(cfg.Mailboxes) != 2 || len(cfg.Sinks) != 4 || len(cfg.Senders) != 2 || len(cfg.Listeners) != 2 || len(cfg.Accounts) != 1 {
		t.Errorf("counts: %d %d %d %d", len(cfg.Profiles), len(cfg.Mailboxes), len(cfg.Sinks), len(cfg.Senders))
	}
	if g, _ := cfg.Profile("gmail"); g.ClientSecret.Reveal() != "google-secret" {
		t.Errorf("file: reference in the example not resolved")
	}
}

// TestExampleCoversEveryKey checks that every key of every type appears in
// the example, set or commented out, and that every field is documented.
func TestExampleCoversEveryKey(t *testing.T) {
	ex := string(Example())
	var walk func(t *testing.T, typ reflect.Type)
	walk = func(t *testing.T, typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			key := f.Tag.Get("yaml")
			if key == "-" {
				continue
			}
			if key == "" {
				t.Errorf("%s.%s has no yaml tag", typ.Name(), f.Name)
				continue
			}
			doc := fieldDocs()[typ.Name()+"."+f.Name]
			if len(strings.Fields(doc)) < 4 {
				t.Errorf("%s.%s is not documented", typ.Name(), f.Name)
			}
			keyRe := regexp.MustCompile(`(?m)^\s*(# |- )?` + key + `:( |$)|\{.*\b` + key + `: `)
			if !keyRe.MatchString(ex) {
				t.Errorf("key %s (%s.%s) is not in the example", key, typ.Name(), f.Name)
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != dateType && ft != secretType {
				walk(t, ft)
			}
		}
	}
	walk(t, reflect.TypeFor[Config]())
}
