package config

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

const referenceFile = "../../docs/config.md"

// TestReferenceUpToDate: docs/config.md is Reference's output; it fails
// when a key, its documentation or its tags changed without the file
// (go test ./internal/config -run TestReferenceUpToDate -update).
func TestReferenceUpToDate(t *testing.T) {
	got := Reference()
	if *update {
		if err := os.WriteFile(referenceFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(referenceFile)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/config -run TestReferenceUpToDate -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale; run go test ./internal/config -run TestReferenceUpToDate -update and review the diff", referenceFile)
	}
}

// TestReferenceCoversEveryKey: every declared key has its heading, with
// its documentation and its allowed values.
func TestReferenceCoversEveryKey(t *testing.T) {
	all := string(Reference())
	part := func(heading string) string {
		_, after, _ := strings.Cut(all, heading)
		s, _, _ := strings.Cut(after, "\n## ")
		return s
	}
	check := func(ref string, f Field) {
		head := "### `" + f.Key + "`\n"
		i := strings.Index(ref, head)
		if i < 0 {
			t.Errorf("no heading for %s", f.Key)
			return
		}
		section, _, _ := strings.Cut(ref[i+len(head):], "\n### ")
		for _, e := range f.Enum {
			if !strings.Contains(section, e) {
				t.Errorf("%s: allowed value %q missing", f.Key, e)
			}
		}
		if words := strings.Fields(f.Doc); len(words) > 0 && !strings.Contains(section, words[len(words)-1]) {
			t.Errorf("%s: documentation missing", f.Key)
		}
	}
	for _, f := range TopFields() {
		check(part("\n## Top-level keys\n"), f)
	}
	for _, k := range Kinds {
		for _, f := range Fields(k) {
			check(part("\n## "+k+"\n"), f)
		}
	}
	if !strings.Contains(all, "### `log.format`") {
		t.Error("log.format missing")
	}
}
