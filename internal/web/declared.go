package web

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"

	"github.com/mailgate/mailgate/internal/config"
)

// A record's JSON is its view (ProfileView, MailboxView, SinkView,
// SenderView: what the view computes, such as agent state, expiry dates
// and token health) plus every other key of its declaration
// (config.Fields) that applies to it, shown as a view shows values: a
// write-only one (secret, headers, command line) as "set" or "not set", a
// URL as config.DisplayURL gives it, an empty text left out. A key added
// to a config type is in the API without touching web.

// viewType is the view of a record kind (nil for another kind).
func viewType(kind string) reflect.Type {
	switch kind {
	case "profiles":
		return reflect.TypeFor[ProfileView]()
	case "mailboxes":
		return reflect.TypeFor[MailboxView]()
	case "sinks":
		return reflect.TypeFor[SinkView]()
	case "senders":
		return reflect.TypeFor[SenderView]()
	}
	return nil
}

// presented are the config keys a view shows itself: its JSON keys and
// those its fields' covers tags name (SinkView's program covers command).
func presented(view reflect.Type) map[string]bool {
	keys := map[string]bool{}
	for i := range view.NumField() {
		f := view.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			keys[name] = true
		}
		if c := f.Tag.Get("covers"); c != "" {
			keys[c] = true
		}
	}
	return keys
}

// declaredKeys are item's keys of its declaration that its view does not
// present, as they are shown.
func declaredKeys(kind string, item any) map[string]any {
	fields := config.Fields(kind)
	covered := presented(viewType(kind))
	out := map[string]any{}
	for _, f := range fields {
		top, _, _ := strings.Cut(f.Key, ".")
		if covered[top] || f.Type == "object" || !f.Applies(item, fields) {
			continue
		}
		v, ok := f.Value(item)
		if !ok {
			continue
		}
		if shown, ok := showValue(f, v); ok {
			out[f.Key] = shown
		}
	}
	return out
}

// showValue is a declared value as the API shows it; ok is false for an
// empty text, which is left out.
func showValue(f config.Field, v any) (any, bool) {
	if f.WriteOnly {
		if reflect.ValueOf(v).IsZero() || reflect.ValueOf(v).Kind() != reflect.Struct && reflect.ValueOf(v).Len() == 0 {
			return secretNotSet, true
		}
		return secretSet, true
	}
	switch x := v.(type) {
	case string:
		if f.URL {
			x = displayURL(x)
		}
		return x, x != ""
	case config.Duration, config.Date:
		s := x.(interface{ String() string }).String()
		return s, s != ""
	}
	return v, true
}

// withDeclared marshals a view (converted to a type without this method)
// with the declared keys it does not present.
func withDeclared(view any, more map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(view); err != nil {
		return nil, err
	}
	if len(more) == 0 {
		return buf.Bytes(), nil
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(buf.Bytes(), &all); err != nil {
		return nil, err
	}
	for k, v := range more {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		all[k] = b
	}
	buf.Reset()
	if err := enc.Encode(all); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// MarshalJSON adds the profile's declared keys the view does not present.
func (v ProfileView) MarshalJSON() ([]byte, error) {
	type plain ProfileView
	return withDeclared(plain(v), v.declared)
}

// MarshalJSON adds the mailbox's declared keys the view does not present.
func (v MailboxView) MarshalJSON() ([]byte, error) {
	type plain MailboxView
	return withDeclared(plain(v), v.declared)
}

// MarshalJSON adds the sink's declared keys the view does not present.
func (v SinkView) MarshalJSON() ([]byte, error) {
	type plain SinkView
	return withDeclared(plain(v), v.declared)
}

// MarshalJSON adds the sender's declared keys the view does not present.
func (v SenderView) MarshalJSON() ([]byte, error) {
	type plain SenderView
	return withDeclared(plain(v), v.declared)
}

// keySchema is the JSON schema of a declared key's value as the API takes
// it (request bodies); shown is the schema of what a response holds.
func keySchema(f config.Field) (taken, shown map[string]any) {
	taken = map[string]any{"description": f.Doc}
	switch f.Type {
	case "int":
		taken["type"] = "integer"
	case "bool":
		taken["type"] = "boolean"
	case "list":
		taken["type"] = []any{"array", "string"}
		taken["items"] = map[string]any{"type": "string"}
		taken["description"] = f.Doc + " (an array, or a string of space-separated words)"
	case "map":
		taken["type"] = "object"
		taken["additionalProperties"] = map[string]any{"type": "string"}
	default:
		taken["type"] = "string"
	}
	if f.Enum != nil {
		taken["enum"] = f.Enum
	}
	shown = map[string]any{}
	for k, v := range taken {
		shown[k] = v
	}
	if f.Type == "list" {
		shown["type"], shown["description"] = "array", f.Doc
	}
	if f.WriteOnly {
		taken["writeOnly"] = true
		shown = map[string]any{"type": "string", "enum": []string{secretSet, secretNotSet}, "description": f.Doc + " Shown as set or not set, never the value."}
	}
	if f.URL {
		shown["description"] = f.Doc + " Shown without user information, query values or path segments that look like tokens."
	}
	return taken, shown
}

// recordSchemas returns the OpenAPI schema of a record kind's JSON (its
// view's keys, then its declared keys) and of the body that creates or
// changes one (its declared keys, dotted for nested mappings).
func recordSchemas(kind string) (record, body map[string]any) {
	props := map[string]any{}
	view := viewType(kind)
	for i := range view.NumField() {
		if name, _, _ := strings.Cut(view.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			props[name] = map[string]any{}
		}
	}
	in := map[string]any{}
	var required []string
	for _, f := range config.Fields(kind) {
		if f.Type == "object" {
			continue
		}
		taken, shown := keySchema(f)
		in[f.Key] = taken
		if f.Required {
			required = append(required, f.Key)
		}
		top, _, _ := strings.Cut(f.Key, ".")
		if p, ok := props[f.Key].(map[string]any); ok {
			// the view shows it, perhaps differently (an expiry object)
			p["description"] = f.Doc
			continue
		}
		if _, ok := props[top]; !ok && !presented(view)[top] {
			props[f.Key] = shown
		}
	}
	record = map[string]any{"type": "object", "properties": props}
	body = map[string]any{"type": "object", "properties": in, "required": required,
		"description": "the record's keys as in the config file; secrets are write-only (omitted: kept); ${…} and file: references are refused"}
	return record, body
}
