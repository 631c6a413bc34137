package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/mailgate/mailgate/internal/oauth"
)

// A key of a profile, mailbox, sink or sender is declared once: as a field
// of its type in types.go, with its documentation as the field's doc
// comment and what the rest of mailgate needs to know in struct tags.
// Validation (required keys, allowed values), Example, the console's forms,
// the API's JSON of records and its OpenAPI schemas all read the
// declaration through Fields; adding a key touches the type and the code
// that uses the value, nothing else.
//
// The tags, besides yaml (the key):
//
//	required:"true"    the key must be given (name is checked with the other names)
//	enum:"a,b"         the allowed values; "oauth.Grants" is oauth's list of grants
//	options:"a,b"      choices offered by the console's form without restricting the value
//	only:"key=a,b"     the key applies only when another key of the item has one of those values
//	url:"true"         a URL that may carry credentials: shown as DisplayURL shows it
//	destination:"true" says where the record's secrets (Secret values, header mappings) go:
//	                   when it changes, the console keeps no secret left empty
//	writeonly:"true"   never shown back (a command line whose arguments may hold secrets);
//	                   Secret values and header mappings are always write-only
//	label:"…"          the console form's label (default: the key, words capitalised)
//	help:"…"           the console form's help line
//	example:"…"        the example value Example prints for a key its example items leave out
//	                   (default: the "Default:" of the documentation, else nothing)
//
// Field docs come from the embedded source of types.go (fieldDocs), so a
// field's doc comment is the only place its documentation is written.

// Field is one key of a record kind as its declaration describes it.
type Field struct {
	// Key is the YAML key; a key of a nested mapping is dotted
	// ("client_certificate.cert").
	Key string
	// Doc is the field's doc comment, its Go name replaced by the key.
	Doc string
	// Type is how the value is written: string, int, bool, list (of
	// strings), map (of strings), secret, duration, date, object (a
	// nested mapping, whose keys follow it as their own Fields) or items (a
	// list of records, TopFields only).
	Type string
	// Enum are the allowed values (none: any value).
	Enum []string
	// Options are values offered without restricting the value.
	Options []string
	// Required says the key must be given.
	Required bool
	// OnlyKey and Only say the key applies only when the item's OnlyKey
	// has one of the values Only ("" OnlyKey: always).
	OnlyKey string
	Only    []string
	// URL marks a URL that may carry credentials.
	URL bool
	// WriteOnly says the value is never shown back (secrets, webhook
	// headers, command lines).
	WriteOnly bool
	// Destination says the key names where the record's secrets (Secret
	// values and header mappings) are sent.
	Destination bool
	// Label and Help are the console form's texts.
	Label, Help string
	// Example is a value for Example's commented-out lines.
	Example string

	index []int
}

// Singular names one record of a kind: "mailboxes" → "mailbox".
func Singular(kind string) string {
	switch kind {
	case "mailboxes":
		return "mailbox"
	case "profiles", "sinks", "senders", "listeners", "accounts":
		return strings.TrimSuffix(kind, "s")
	}
	return kind
}

// kindTypes are the item types of the record kinds (Kinds).
var kindTypes = map[string]reflect.Type{
	"profiles":  reflect.TypeFor[Profile](),
	"mailboxes": reflect.TypeFor[Mailbox](),
	"sinks":     reflect.TypeFor[Sink](),
	"senders":   reflect.TypeFor[Sender](),
	"listeners": reflect.TypeFor[Listener](),
	"accounts":  reflect.TypeFor[Account](),
}

// Fields returns the keys of a record kind (one of Kinds) in declaration
// order, a nested mapping's keys right after it; nil for another kind.
func Fields(kind string) []Field {
	t, ok := kindTypes[kind]
	if !ok {
		return nil
	}
	return declared(t, "", nil)
}

// TopFields returns the top-level keys of the configuration file.
func TopFields() []Field { return declared(reflect.TypeFor[Config](), "", nil) }

var (
	mapType    = reflect.TypeFor[map[string]string]()
	listType   = reflect.TypeFor[[]string]()
	defaultDoc = regexp.MustCompile(`Default(?: \([a-z]+\))?: (\S+?)\.?$`)
)

func declared(t reflect.Type, prefix string, index []int) []Field {
	var out []Field
	for i := range t.NumField() {
		sf := t.Field(i)
		key := sf.Tag.Get("yaml")
		if key == "" || key == "-" {
			continue
		}
		f := Field{
			Key:         prefix + key,
			Doc:         fieldDoc(t.Name(), sf.Name, key),
			Required:    sf.Tag.Get("required") == "true",
			URL:         sf.Tag.Get("url") == "true",
			Destination: sf.Tag.Get("destination") == "true",
			Label:       sf.Tag.Get("label"),
			Help:        sf.Tag.Get("help"),
			Example:     sf.Tag.Get("example"),
			index:       append(slices.Clone(index), i),
		}
		f.Type, f.WriteOnly = typeOf(sf.Type)
		f.WriteOnly = f.WriteOnly || sf.Tag.Get("writeonly") == "true"
		f.Enum = enumOf(sf.Tag.Get("enum"))
		if o := sf.Tag.Get("options"); o != "" {
			f.Options = strings.Split(o, ",")
		}
		if k, vs, ok := strings.Cut(sf.Tag.Get("only"), "="); ok {
			f.OnlyKey, f.Only = k, strings.Split(vs, ",")
		}
		if f.Label == "" {
			f.Label = strings.ToUpper(key[:1]) + strings.ReplaceAll(key[1:], "_", " ")
		}
		if f.Example == "" {
			if m := defaultDoc.FindStringSubmatch(strings.TrimSpace(f.Doc)); m != nil && m[1] != "none" {
				f.Example = m[1]
			}
		}
		out = append(out, f)
		if f.Type == "object" {
			st := sf.Type
			if st.Kind() == reflect.Pointer {
				st = st.Elem()
			}
			out = append(out, declared(st, f.Key+".", f.index)...)
		}
	}
	return out
}

// fieldDoc is a field's doc comment with its Go name replaced by the key.
func fieldDoc(typeName, goName, key string) string {
	doc := strings.TrimSpace(fieldDocs()[typeName+"."+goName])
	if rest, ok := strings.CutPrefix(doc, goName+" "); ok {
		doc = key + " " + rest
	}
	return doc
}

// typeOf names how a value of Go type t is written, and whether it is
// write-only by its type.
func typeOf(t reflect.Type) (string, bool) {
	switch {
	case t == secretType:
		return "secret", true
	case t == durationType:
		return "duration", false
	case t == dateType:
		return "date", false
	case t == mapType:
		return "map", true
	case t == listType:
		return "list", false
	}
	switch t.Kind() {
	case reflect.Int:
		return "int", false
	case reflect.Bool:
		return "bool", false
	case reflect.String:
		return "string", false
	case reflect.Pointer, reflect.Struct:
		return "object", false
	case reflect.Slice:
		return "items", false // a list of records (TopFields)
	}
	panic(fmt.Sprintf("config: no field type for %s", t))
}

// enumOf reads an enum tag.
func enumOf(tag string) []string {
	switch tag {
	case "":
		return nil
	case "oauth.Grants":
		var out []string
		for _, g := range oauth.Grants() {
			out = append(out, string(g))
		}
		return out
	}
	return strings.Split(tag, ",")
}

// Value returns the value of f in item (a Profile, Mailbox, Sink or Sender,
// or a pointer to one); ok is false when a nested mapping holding it is not
// set.
func (f Field) Value(item any) (v any, ok bool) {
	rv := reflect.Indirect(reflect.ValueOf(item))
	for n, i := range f.index {
		if n > 0 {
			if rv.Kind() == reflect.Pointer {
				if rv.IsNil() {
					return nil, false
				}
				rv = rv.Elem()
			}
		}
		rv = rv.Field(i)
	}
	return rv.Interface(), true
}

// Applies says whether f means something for item: its Only condition
// holds, or the key it depends on has no value the declaration knows (so a
// missing or wrong protocol does not hide other problems).
func (f Field) Applies(item any, fields []Field) bool {
	if f.OnlyKey == "" {
		return true
	}
	for _, g := range fields {
		if g.Key != f.OnlyKey {
			continue
		}
		v, _ := g.Value(item)
		s := fmt.Sprint(v)
		return slices.Contains(f.Only, s) || !slices.Contains(g.Enum, s)
	}
	return true
}

// fieldNamed returns the field of key.
func fieldNamed(fields []Field, key string) Field {
	for _, f := range fields {
		if f.Key == key {
			return f
		}
	}
	return Field{}
}

// isZero says whether a value is unset.
func isZero(v any) bool {
	if s, ok := v.(Secret); ok {
		return s.IsZero()
	}
	rv := reflect.ValueOf(v)
	return !rv.IsValid() || rv.IsZero() || (rv.Kind() == reflect.Slice || rv.Kind() == reflect.Map) && rv.Len() == 0
}

// checkFields checks what item's declaration says of its keys: required
// keys are given, values are among the allowed ones, and a key that does
// not apply (its only tag) is not set.
// The keys first are checked first; if one of them fails, nothing else is
// checked and checkFields returns false. name is checked with the other
// names (checkNames).
func (d *decoder) checkFields(kind, path string, item any, first ...string) bool {
	fields := Fields(kind)
	check := func(f Field) bool {
		v, set := f.Value(item)
		if !set || f.Key == "name" {
			return true
		}
		if !f.Applies(item, fields) {
			if d.has(path + "." + f.Key) {
				on, _ := fieldNamed(fields, f.OnlyKey).Value(item)
				d.at(path+"."+f.Key, "does not apply to %s %v (%s only)", f.OnlyKey, on, strings.Join(f.Only, ", "))
			}
			return true
		}
		if f.Required && isZero(v) {
			d.at(path+"."+f.Key, "required")
			return false
		}
		if s, ok := v.(string); ok && f.Enum != nil {
			return d.enum(path+"."+f.Key, s, f.Enum)
		}
		return true
	}
	for _, k := range first {
		for _, f := range fields {
			if f.Key == k && !check(f) {
				return false
			}
		}
	}
	for _, f := range fields {
		if !slices.Contains(first, f.Key) {
			check(f)
		}
	}
	return true
}
