package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/mailgate/mailgate/internal/oauth"
)

// TestFieldsDeclared: every key of every kind is documented and labelled,
// names each of its allowed values in its documentation, and an only tag
// names a key of the same kind whose allowed values include its values.
func TestFieldsDeclared(t *testing.T) {
	for _, kind := range Kinds {
		fields := Fields(kind)
		if len(fields) < 8 {
			t.Fatalf("%s: %d fields", kind, len(fields))
		}
		keys := map[string]Field{}
		for _, f := range fields {
			keys[f.Key] = f
		}
		for _, f := range fields {
			if len(strings.Fields(f.Doc)) < 4 || !strings.HasPrefix(f.Doc, f.Key[strings.LastIndex(f.Key, ".")+1:]+" ") {
				t.Errorf("%s.%s: doc %q", kind, f.Key, f.Doc)
			}
			if f.Label == "" {
				t.Errorf("%s.%s: no label", kind, f.Key)
			}
			for _, v := range f.Enum {
				if !strings.Contains(f.Doc, v) {
					t.Errorf("%s.%s: the doc does not name %q", kind, f.Key, v)
				}
			}
			if f.OnlyKey != "" {
				on, ok := keys[f.OnlyKey]
				if !ok {
					t.Errorf("%s.%s: only names %s, not a key", kind, f.Key, f.OnlyKey)
				}
				for _, v := range f.Only {
					if !slices.Contains(on.Enum, v) {
						t.Errorf("%s.%s: only %s=%s is not an allowed value", kind, f.Key, f.OnlyKey, v)
					}
				}
			}
		}
	}
	if Fields("widgets") != nil {
		t.Error("Fields of an unknown kind")
	}
	var grants []string
	for _, g := range oauth.Grants() {
		grants = append(grants, string(g))
	}
	for _, f := range Fields("profiles") {
		if f.Key == "grant" && !slices.Equal(f.Enum, grants) {
			t.Errorf("grant enum %v, want oauth's %v", f.Enum, grants)
		}
	}
}

// TestChecksFromDeclaration: for every kind, each key declared with allowed
// values refuses another value, and each required key (name aside: the
// names are checked together) is required, and each key declared for some
// protocols, types, providers or grants only is refused set for another,
// at the key's path, without validate.go naming the key.
func TestChecksFromDeclaration(t *testing.T) {
	base := map[string]string{
		"profiles":  "{name: x, provider: microsoft, grant: client_credentials, tenant: t.example, client_id: id, client_certificate: {cert: /etc/hostname, key: /etc/hostname}}",
		"mailboxes": "{name: x, protocol: imap, host: h.example, username: u@x, profile: contoso, sink: out}",
		"sinks":     "{name: x, type: webhook, url: https://h.example/in}",
		"senders":   "{name: x, protocol: smtp, host: h.example, username: u@x, profile: contoso}",
	}
	file := filepath.Join(t.TempDir(), "mailgate.yaml")
	getenv := env(map[string]string{"SECRET": "s3cret"})
	checked := 0
	for _, kind := range Kinds {
		if _, err := ParseWith([]byte(valid), file, getenv, []Record{{kind, "x", []byte(base[kind])}}); err != nil {
			t.Fatalf("%s base: %v", kind, err)
		}
		for _, f := range Fields(kind) {
			if f.Enum == nil && (!f.Required || f.Key == "name") {
				continue
			}
			var rec map[string]any
			if err := yaml.Unmarshal([]byte(base[kind]), &rec); err != nil {
				t.Fatal(err)
			}
			if f.OnlyKey != "" && !slices.Contains(f.Only, fmt.Sprint(rec[f.OnlyKey])) {
				rec[f.OnlyKey] = f.Only[0]
			}
			parent, key, nested := strings.Cut(f.Key, ".")
			m := rec
			if nested {
				m = rec[parent].(map[string]any)
			} else {
				key = parent
			}
			want := "required"
			if f.Enum != nil {
				m[key], want = "bogus", `"bogus" is not one of `+strings.Join(f.Enum, ", ")
			} else {
				delete(m, key)
			}
			y, _ := yaml.Marshal(rec)
			_, err := ParseWith([]byte(valid), file, getenv, []Record{{kind, "x", y}})
			if err == nil {
				t.Errorf("%s.%s: no problem, want %q", kind, f.Key, want)
				continue
			}
			found := false
			for _, p := range problemsOf(t, err) {
				found = found || p.Key == kind+"[x]."+f.Key && p.Msg == want
			}
			if !found {
				t.Errorf("%s.%s: want %q; got %v", kind, f.Key, want, err)
			}
			checked++
		}
	}
	if checked < 20 {
		t.Errorf("only %d keys checked", checked)
	}
	// a key set where it does not apply
	sample := map[string]any{"string": "x", "int": 1, "bool": true, "list": []string{"x"}, "map": map[string]string{"a": "b"}, "secret": "x", "duration": "1m"}
	checked = 0
	for _, kind := range Kinds {
		fields := Fields(kind)
		for _, f := range fields {
			if f.OnlyKey == "" {
				continue
			}
			var rec map[string]any
			if err := yaml.Unmarshal([]byte(base[kind]), &rec); err != nil {
				t.Fatal(err)
			}
			for _, v := range fieldNamed(fields, f.OnlyKey).Enum {
				if !slices.Contains(f.Only, v) {
					rec[f.OnlyKey] = v
					break
				}
			}
			rec[f.Key] = sample[f.Type]
			y, _ := yaml.Marshal(rec)
			_, err := ParseWith([]byte(valid), file, getenv, []Record{{kind, "x", y}})
			want := fmt.Sprintf("does not apply to %s %v (%s only)", f.OnlyKey, rec[f.OnlyKey], strings.Join(f.Only, ", "))
			found := false
			if err != nil {
				for _, p := range problemsOf(t, err) {
					found = found || p.Key == kind+"[x]."+f.Key && p.Msg == want
				}
			}
			if !found {
				t.Errorf("%s.%s: want %q; got %v", kind, f.Key, want, err)
			}
			checked++
		}
	}
	if checked < 20 {
		t.Errorf("only %d keys checked where they do not apply", checked)
	}
}
