package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mailgate/mailgate/internal/config"
)

// Editor keeps the console's records: what administrators create, change
// and delete here, next to what the config file provisions (read-only
// here). Save validates the whole configuration with the record in it
// before keeping it; a *config.Error lists the problems.
type Editor interface {
	Save(ctx context.Context, kind, name string, yaml []byte) error
	Delete(ctx context.Context, kind, name string) error
	// Load returns a console record's YAML (found false if there is none).
	Load(ctx context.Context, kind, name string) (yaml []byte, found bool, err error)
}

// ErrNoRecord is returned by an Editor for a name it does not keep.
var ErrNoRecord = errors.New("no such console record")

// field is one input of a record's form, made from the key's declaration
// (config.Fields). A dotted Key ("client_certificate.cert") is a key of a
// nested mapping.
type field struct {
	// Type is text, number, list (space-separated), select, bool, or one of
	// the write-only types, never rendered back and kept when left empty:
	// password (a secret), secretlist (a command line whose arguments may
	// hold secrets), headers (Name: value lines).
	Key, Label, Type string
	Options          []string
	Help             string
	// URL marks a URL that may carry credentials (a user name and
	// password, a query token, a token in the path): edit forms show it as
	// config.DisplayURL does, and that shown value submitted back unchanged
	// keeps the stored URL.
	URL bool
}

// writeOnly says whether a field's value is never sent back to a browser.
func (f field) writeOnly() bool {
	return f.Type == "password" || f.Type == "secretlist" || f.Type == "headers"
}

// formOf returns the inputs of a kind's form, one per key in the order of
// its declaration (nil for an unknown kind). A key with allowed values is
// a select, with an empty "(default)" choice unless it is required.
func formOf(kind string) []field {
	var out []field
	for _, cf := range config.Fields(kind) {
		f := field{Key: cf.Key, Label: cf.Label, Help: cf.Help, URL: cf.URL, Type: "text"}
		switch {
		case cf.Type == "object":
			continue // its keys follow
		case cf.Type == "secret":
			f.Type = "password"
		case cf.Type == "map":
			f.Type = "headers"
		case cf.Type == "list" && cf.WriteOnly:
			f.Type = "secretlist"
		case cf.Type == "list":
			f.Type = "list"
		case cf.Type == "int":
			f.Type = "number"
		case cf.Type == "bool":
			f.Type = "bool"
		case cf.Enum != nil:
			f.Type = "select"
			if !cf.Required {
				f.Options = []string{""}
			}
			f.Options = append(f.Options, cf.Enum...)
		case cf.Options != nil:
			f.Type, f.Options = "select", cf.Options
		}
		out = append(out, f)
	}
	return out
}

// singular names one record of a kind: "mailboxes" → "mailbox".
func singular(kind string) string { return config.Singular(kind) }

var recordName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// lookup reads a possibly dotted key from a record.
func lookup(m map[string]any, key string) (any, bool) {
	first, rest, nested := strings.Cut(key, ".")
	v, ok := m[first]
	if !nested || !ok {
		return v, ok
	}
	sub, _ := v.(map[string]any)
	v, ok = sub[rest]
	return v, ok
}

// assign sets a possibly dotted key in a record.
func assign(m map[string]any, key string, v any) {
	first, rest, nested := strings.Cut(key, ".")
	if !nested {
		m[first] = v
		return
	}
	sub, _ := m[first].(map[string]any)
	if sub == nil {
		sub = map[string]any{}
		m[first] = sub
	}
	sub[rest] = v
}

// scalar turns a submitted value into its text.
func scalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case nil:
		return "", nil
	}
	return "", errors.New("unexpected value")
}

// buildRecord turns submitted values into a record's YAML. Write-only
// values left empty keep their current value (they are never sent back to
// a browser).
func buildRecord(kind string, values map[string]any, current []byte) ([]byte, string, error) {
	spec := formOf(kind)
	if spec == nil {
		return nil, "", fmt.Errorf("unknown kind %q", kind)
	}
	var old map[string]any
	_ = yaml.Unmarshal(current, &old)
	out := map[string]any{}
	kept := map[string]bool{} // write-only values left empty, kept
	for _, f := range spec {
		v := values[f.Key]
		val, empty, err := fieldValue(f, v)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", f.Key, err)
		}
		if empty {
			if f.writeOnly() {
				if o, ok := lookup(old, f.Key); ok {
					assign(out, f.Key, o)
					kept[f.Key] = true
				}
			}
			continue
		}
		if o, ok := lookup(old, f.Key); ok && f.URL {
			// the redacted URL an edit form showed, sent back unchanged
			if ov, _ := o.(string); ov != val && config.DisplayURL(ov) == val {
				val = ov
			}
		}
		assign(out, f.Key, val)
	}
	if current != nil {
		if err := secretsStay(kind, old, out, kept); err != nil {
			return nil, "", err
		}
	}
	name, _ := out["name"].(string)
	if !recordName.MatchString(name) {
		return nil, "", fmt.Errorf("name: use 1 to 64 letters, digits, dots, dashes or underscores")
	}
	b, err := yaml.Marshal(out)
	return b, name, err
}

// secretsStay refuses a change of where a record's secrets are sent (its
// keys declared destination:"true": a profile's token endpoint — provider,
// authority, token_url, device_url —, http_proxy and tls_ca; a webhook's
// url) while a secret (a Secret value or header mapping) left empty is
// kept: it would go to the new place unasked, so it must be entered again.
func secretsStay(kind string, old, out map[string]any, kept map[string]bool) error {
	fields := config.Fields(kind)
	var moved []string
	for _, f := range fields {
		if !f.Destination {
			continue
		}
		o, _ := lookup(old, f.Key)
		n, _ := lookup(out, f.Key)
		if fmt.Sprint(o) != fmt.Sprint(n) {
			moved = append(moved, f.Key)
		}
	}
	for _, f := range fields {
		if (f.Type == "secret" || f.Type == "map") && kept[f.Key] && len(moved) > 0 {
			return fmt.Errorf("%s: enter it again: the destination changed (%s), and a secret is not sent to a new place unasked", f.Key, strings.Join(moved, ", "))
		}
	}
	return nil
}

// fieldValue converts one submitted value (a form string or a JSON value)
// into what the record's YAML holds; empty says nothing was given.
func fieldValue(f field, v any) (val any, empty bool, err error) {
	safe := func(ss ...string) error {
		for _, s := range ss {
			if err := config.SafeValue(s); err != nil {
				return err
			}
		}
		return nil
	}
	switch f.Type {
	case "list", "secretlist":
		var parts []string
		switch x := v.(type) {
		case []any: // JSON array: elements as given (arguments may hold spaces)
			for _, p := range x {
				s, err := scalar(p)
				if err != nil {
					return nil, false, err
				}
				if s != "" {
					parts = append(parts, s)
				}
			}
		default:
			s, err := scalar(v)
			if err != nil {
				return nil, false, err
			}
			parts = strings.Fields(s)
		}
		if err := safe(parts...); err != nil {
			return nil, false, err
		}
		return parts, len(parts) == 0, nil
	case "headers":
		h := map[string]any{}
		switch x := v.(type) {
		case map[string]any:
			for k, hv := range x {
				s, err := scalar(hv)
				if err != nil {
					return nil, false, err
				}
				h[strings.TrimSpace(k)] = s
			}
		default:
			s, err := scalar(v)
			if err != nil {
				return nil, false, err
			}
			for _, line := range strings.Split(s, "\n") {
				line = strings.TrimSpace(line)
				if line == "" {
					continue
				}
				k, hv, ok := strings.Cut(line, ":")
				if !ok || strings.TrimSpace(k) == "" {
					return nil, false, fmt.Errorf("%q is not a Name: value line", strings.TrimSpace(k))
				}
				h[strings.TrimSpace(k)] = strings.TrimSpace(hv)
			}
		}
		for k, hv := range h {
			if err := safe(k, hv.(string)); err != nil {
				return nil, false, err
			}
		}
		return h, len(h) == 0, nil
	}
	s, err := scalar(v)
	if err != nil {
		return nil, false, err
	}
	if err := safe(s); err != nil {
		return nil, false, err
	}
	if s == "" {
		return nil, true, nil
	}
	switch f.Type {
	case "number":
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, false, fmt.Errorf("%q is not a number", s)
		}
		return n, false, nil
	case "bool":
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, false, fmt.Errorf("%q is not true or false", s)
		}
		return b, false, nil
	}
	return s, false, nil
}

// origin says whether a record is from the config file or the console,
// from the live configuration (no view is built for it).
func (s *Server) origin(kind, name string) (string, bool) {
	o, ok := s.cfg().Origin(kind, name)
	if !ok {
		// a console record serve skipped is still kept: it can be edited
		// and deleted
		for _, b := range s.brokenRecords() {
			if b.Kind == kind && b.Name == name {
				return sourceConsole, true
			}
		}
	}
	return source(o), ok
}

// save validates and keeps a record; editing a record renamed replaces it.
func (s *Server) save(ctx context.Context, kind, original string, values map[string]any) (string, []string) {
	if s.o.Editor == nil {
		return "", []string{"records can only be changed in the config file"}
	}
	var current []byte
	if original != "" {
		if src, ok := s.origin(kind, original); ok && src != sourceConsole {
			return "", []string{original + " comes from the config file: change it there"}
		}
		cur, found, err := s.o.Editor.Load(ctx, kind, original)
		if err != nil {
			return "", config.ProblemLines(err)
		}
		if !found {
			return "", []string{"no console record " + original}
		}
		current = cur
	}
	y, name, err := buildRecord(kind, values, current)
	if err != nil {
		return "", []string{err.Error()}
	}
	if original == "" || name != original {
		if _, taken := s.origin(kind, name); taken {
			return "", []string{"name: " + name + " is taken"}
		}
	}
	if err := s.o.Editor.Save(ctx, kind, name, y); err != nil {
		return "", config.ProblemLines(err)
	}
	if original != "" && name != original {
		_ = s.o.Editor.Delete(ctx, kind, original)
	}
	s.o.Log.Info("web: record saved", "kind", kind, "name", name, "by", s.admin(ctxRequest(ctx)))
	return name, nil
}

type reqKey struct{}

func ctxRequest(ctx context.Context) *http.Request {
	r, _ := ctx.Value(reqKey{}).(*http.Request)
	if r == nil {
		r, _ = http.NewRequestWithContext(ctx, "GET", "/", nil)
	}
	return r
}

func (s *Server) apiSave(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var values map[string]any
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&values); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{"bad_json", "the body must be a JSON object of the record's keys: " + err.Error()})
			return
		}
		original := r.PathValue("name")
		if original != "" {
			if _, ok := values["name"]; !ok {
				values["name"] = original
			}
		}
		ctx := context.WithValue(r.Context(), reqKey{}, r)
		name, problems := s.save(ctx, kind, original, values)
		if problems != nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": "invalid", "problems": problems})
			return
		}
		for _, v := range s.records(r.Context(), kind) {
			if nameOf(v) == name {
				status := http.StatusOK
				if original == "" {
					status = http.StatusCreated
				}
				writeJSON(w, status, v)
				return
			}
		}
		writeJSON(w, http.StatusAccepted, map[string]any{"name": name})
	}
}

func (s *Server) remove(ctx context.Context, kind, name string) (int, string) {
	src, ok := s.origin(kind, name)
	switch {
	case !ok:
		return http.StatusNotFound, "no " + singular(kind) + " named " + name
	case src != sourceConsole:
		return http.StatusConflict, name + " comes from the config file: remove it there"
	case s.o.Editor == nil:
		return http.StatusConflict, "records can only be changed in the config file"
	}
	if err := s.o.Editor.Delete(ctx, kind, name); err != nil {
		return http.StatusUnprocessableEntity, strings.Join(config.ProblemLines(err), "; ")
	}
	return http.StatusNoContent, ""
}

func (s *Server) apiDelete(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		status, msg := s.remove(r.Context(), kind, r.PathValue("name"))
		if status != http.StatusNoContent {
			writeJSON(w, status, apiError{"refused", msg})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// formPage shows a new or edit form; values are the record's current
// values except secrets.
func (s *Server) formPage(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		values := map[string]string{}
		if name != "" {
			if src, ok := s.origin(kind, name); !ok || src != sourceConsole {
				http.Error(w, name+" is not a console record (records from the config file are changed there)", http.StatusNotFound)
				return
			}
			cur, found, err := s.o.Editor.Load(r.Context(), kind, name)
			if err != nil || !found {
				http.Error(w, "no console record "+name, http.StatusNotFound)
				return
			}
			var m map[string]any
			_ = yaml.Unmarshal(cur, &m)
			for _, f := range formOf(kind) {
				if f.writeOnly() {
					continue
				}
				v, _ := lookup(m, f.Key)
				switch v := v.(type) {
				case []any:
					var parts []string
					for _, p := range v {
						parts = append(parts, fmt.Sprint(p))
					}
					values[f.Key] = strings.Join(parts, " ")
				case nil:
				case string:
					if f.URL {
						v = config.DisplayURL(v)
					}
					values[f.Key] = v
				default:
					values[f.Key] = fmt.Sprint(v)
				}
			}
		}
		s.renderForm(w, r, kind, name, values, nil)
	}
}

func (s *Server) renderForm(w http.ResponseWriter, r *http.Request, kind, original string, values map[string]string, problems []string) {
	type input struct {
		field
		Value string
	}
	var inputs []input
	for _, f := range formOf(kind) {
		inputs = append(inputs, input{f, values[f.Key]})
	}
	if problems != nil {
		w.WriteHeader(http.StatusUnprocessableEntity)
	}
	s.render(w, "form.html", map[string]any{"Admin": s.admin(r), "Kind": kind, "Singular": singular(kind),
		"Original": original, "Inputs": inputs, "Problems": problems})
}

// formSubmit saves a form (new or edit).
func (s *Server) formSubmit(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		values := map[string]any{}
		shown := map[string]string{}
		for _, f := range formOf(kind) {
			if vs, ok := r.PostForm[f.Key]; ok && len(vs) > 0 {
				values[f.Key] = vs[0]
				if !f.writeOnly() {
					shown[f.Key] = vs[0]
				}
			}
		}
		original := r.PostFormValue("original")
		ctx := context.WithValue(r.Context(), reqKey{}, r)
		if _, problems := s.save(ctx, kind, original, values); problems != nil {
			s.renderForm(w, r, kind, original, shown, problems)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
}

func (s *Server) formDelete(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		status, msg := s.remove(r.Context(), kind, r.PathValue("name"))
		if status != http.StatusNoContent {
			http.Error(w, msg, status)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
}

// Shown is one key of a record as it may be shown.
type Shown struct{ Key, Value string }

// ShowRecord returns a console record's keys as the console shows them
// (`mailgate records show` prints the same): write-only keys (secrets,
// webhook headers, command lines) as "set", URLs as config.DisplayURL
// gives them, in the order of the record's form.
func ShowRecord(kind string, y []byte) ([]Shown, error) {
	spec := formOf(kind)
	if spec == nil {
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	var m map[string]any
	if err := yaml.Unmarshal(y, &m); err != nil {
		return nil, fmt.Errorf("%s: not a YAML mapping: %w", kind, err)
	}
	var out []Shown
	for _, f := range spec {
		v, ok := lookup(m, f.Key)
		if !ok || v == nil {
			continue
		}
		var s string
		switch x := v.(type) {
		case []any:
			parts := make([]string, len(x))
			for i, p := range x {
				parts[i] = fmt.Sprint(p)
			}
			s = strings.Join(parts, " ")
		case string:
			s = x
			if f.URL && s != "" {
				s = config.DisplayURL(s)
			}
		default:
			s = fmt.Sprint(x)
		}
		if f.writeOnly() {
			s = secretSet
		}
		out = append(out, Shown{f.Key, s})
	}
	return out, nil
}
