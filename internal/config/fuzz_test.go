package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse: it must not panic, and a failure
// must be an *Error whose problems name the file.
func FuzzParse(f *testing.F) {
	f.Add([]byte(valid))
	if ex, err := os.ReadFile(golden); err == nil {
		f.Add(ex)
	}
	f.Add([]byte("profiles:\n  - name: a\n   bad: [\n"))
	f.Add([]byte("sinks:\n  - {name: a, type: webhook, url: https://x, secret: ${S}}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("profiles: &p\n  - name: x\n    scopes: *p\n"))
	f.Add([]byte("mailboxes:\n  - {name: m, protocol: graph, after: 'move:', interval: -1s, port: x}\n"))
	f.Add([]byte("store: ${A}${B}$${C}\nlisten: file:\n"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("\xff\xfe"))
	dir := f.TempDir()
	file := filepath.Join(dir, "fuzz.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parse(data, file, env(map[string]string{"A": "a", "SECRET": "s"}), testNow, nil)
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config without error")
			}
			return
		}
		var cerr *Error
		if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
			t.Fatalf("error %v (%T) is not a *config.Error with problems", err, err)
		}
		for _, p := range cerr.Problems {
			if p.File != file || p.Msg == "" || p.Line < 0 {
				t.Fatalf("bad problem %+v", p)
			}
		}
	})
}
