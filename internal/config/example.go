package config

import (
	_ "embed"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strings"
	"sync"
)

// typesSource is the file declaring the configuration types: its field doc
// comments are the documentation Example prints.
//
//go:embed types.go
var typesSource string

// fieldDocs maps "Type.Field" to the field's doc comment.
var fieldDocs = sync.OnceValue(func() map[string]string {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "types.go", typesSource, parser.ParseComments)
	if err != nil {
		panic("config: parse embedded types.go: " + err.Error())
	}
	docs := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return false
		}
		for _, fl := range st.Fields.List {
			for _, name := range fl.Names {
				docs[ts.Name.Name+"."+name.Name] = fl.Doc.Text()
			}
		}
		return false
	})
	return docs
})

// kv is one key of an example item with its value written as YAML.
type kv struct{ key, value string }

// exampleTop are the example values of the top-level keys; exampleItems the
// items of each list. The first item of a list is printed with the
// documentation of every key; keys it does not use are printed commented
// out with the example value of their declaration (Field.Example).
var (
	exampleTop = []kv{
		{"store", "sqlite:./mailgate.db"},
		{"listen", "127.0.0.1:8025"},
		{"key_file", "mailgate.key"},
	}
	exampleItems = map[string][][]kv{
		"profiles": {
			{
				{"name", "contoso"}, {"provider", "microsoft"}, {"grant", "client_credentials"},
				{"tenant", "11111111-2222-3333-4444-555555555555"},
				{"client_id", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"},
				{"client_secret", "${CONTOSO_SECRET}"},
				{"secret_expires", "2035-05-01"},
				{"scopes", "[https://outlook.office365.com/.default]"},
				{"authority", "https://login.microsoftonline.com"},
				{"endpoint_version", "v2"},
				{"refresh_margin", "5m"},
				{"auth_style", "params"},
			},
			{
				{"name", "contoso-graph"}, {"provider", "microsoft"}, {"grant", "client_credentials"},
				{"tenant", "11111111-2222-3333-4444-555555555555"},
				{"client_id", "ffffffff-bbbb-cccc-dddd-eeeeeeeeeeee"},
				{"client_certificate", "{cert: app.crt, key: app.key}"},
				{"scopes", "[https://graph.microsoft.com/.default]"},
			},
			{
				{"name", "gmail"}, {"provider", "google"}, {"grant", "authorization_code"},
				{"client_id", "1234567890-abc.apps.googleusercontent.com"},
				{"client_secret", "file:google-client.secret"},
				{"scopes", "[https://mail.google.com/]"},
				{"redirect_uri", "http://127.0.0.1:8025/oauth/callback"},
			},
			{
				{"name", "workspace"}, {"provider", "google"}, {"grant", "service_account"},
				{"service_account_key", "file:sa.json"},
				{"subject", `""`},
				{"scopes", "[https://mail.google.com/]"},
			},
		},
		"mailboxes": {
			{
				{"name", "forms"}, {"protocol", "imap"}, {"host", "outlook.office365.com"}, {"port", "993"},
				{"security", "tls"}, {"sasl", "xoauth2"}, {"username", "forms@contoso.com"},
				{"folder", "INBOX"}, {"profile", "contoso"}, {"mode", "poll"}, {"interval", "60s"},
				{"after", "seen"}, {"sink", "forms-out"}, {"enabled", "true"}, {"batch_size", "100"},
			},
			{
				{"name", "invoices"}, {"protocol", "graph"}, {"endpoint", "https://graph.microsoft.com"},
				{"username", "invoices@contoso.com"}, {"folder", "inbox"}, {"profile", "contoso-graph"},
				{"after", "move:Processed"}, {"sink", "app"},
			},
		},
		"sinks": {
			{{"name", "forms-out"}, {"type", "maildir"}, {"path", "./inbox"}},
			{
				{"name", "app"}, {"type", "webhook"}, {"url", "https://app.example/mail"},
				{"secret", `"${HOOK_SECRET}"`}, {"timeout", "30s"}, {"headers", "{X-Source: mailgate}"},
			},
			{{"name", "pipe"}, {"type", "command"}, {"command", "[/usr/bin/procmail, -m]"}, {"timeout", "30s"}},
			{{"name", "keep"}, {"type", "store"}},
		},
		"senders": {
			{
				{"name", "noreply"}, {"protocol", "smtp"}, {"host", "smtp.office365.com"}, {"port", "587"},
				{"security", "starttls"}, {"sasl", "xoauth2"}, {"username", "noreply@contoso.com"},
				{"profile", "contoso"}, {"allowed_from", "[noreply@contoso.com]"},
			},
			{
				{"name", "reports"}, {"protocol", "graph"}, {"username", "reports@contoso.com"},
				{"profile", "contoso-graph"}, {"allowed_from", `[reports@contoso.com, "@reports.contoso.com"]`},
				{"endpoint", "https://graph.microsoft.com"}, {"save_to_sent_items", "false"},
			},
		},
		"listeners": {
			{
				{"name", "legacy-imap"}, {"protocol", "imap"}, {"listen", "127.0.0.1:1143"}, {"security", "none"},
				{"upstream", "{host: outlook.office365.com, port: 993, security: tls, sasl: xoauth2}"},
			},
			{
				{"name", "legacy-smtp"}, {"protocol", "smtp"}, {"listen", "0.0.0.0:1587"}, {"security", "starttls"},
				{"tls_cert", "legacy.crt"}, {"tls_key", "legacy.key"},
				{"upstream", "{host: smtp.office365.com, port: 587, security: starttls}"},
			},
		},
		"accounts": {
			{
				{"username", "scanner"}, {"password", `"${SCANNER_PASSWORD}"`}, {"profile", "contoso"},
				{"mailbox", "scanner@contoso.com"}, {"listeners", "[legacy-imap, legacy-smtp]"},
				{"allowed_from", "[scanner@contoso.com]"},
			},
		},
	}
)

const exampleHeader = `# mailgate configuration: every key, documented. Generated by
# "mailgate config example" from the documentation of the config types.
#
# Any value may be ${NAME} (an environment variable, also inside a longer
# value; $${ for a literal ${) or file:PATH (the file's contents, one trailing
# newline removed, PATH relative to this file). Keep secrets out of this file
# that way. Relative file paths are relative to this file's directory.
# Commented-out keys show optional settings with an example value.
`

// Example returns a commented example configuration covering every key,
// generated from the documentation of the configuration types. It loads
// without problems when CONTOSO_SECRET and HOOK_SECRET are set and the files
// it names (app.crt, app.key, google-client.secret) exist beside it.
func Example() []byte {
	var b strings.Builder
	b.WriteString(exampleHeader)
	t := reflect.TypeFor[Config]()
	top := map[string]string{}
	for _, e := range exampleTop {
		top[e.key] = e.value
	}
	for i := range t.NumField() {
		f := t.Field(i)
		key := f.Tag.Get("yaml")
		if key == "" || key == "-" {
			continue
		}
		b.WriteString("\n")
		writeDoc(&b, "", t.Name(), f, key)
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
			b.WriteString(key + ":\n")
			for j, item := range exampleItems[key] {
				writeItem(&b, f.Type.Elem(), key, item, j == 0)
			}
			continue
		}
		if v, ok := top[key]; ok {
			fmt.Fprintf(&b, "%s: %s\n", key, v)
		} else {
			fmt.Fprintf(&b, "# %s: %s\n", key, exampleOf(TopFields(), key))
		}
	}
	return []byte(b.String())
}

// writeItem writes one list item; the first gets the documentation of every
// key of its type.
func writeItem(b *strings.Builder, t reflect.Type, list string, item []kv, documented bool) {
	const indent = "    "
	first := true
	line := func(s string) {
		if first {
			b.WriteString("  - " + s + "\n")
			first = false
			return
		}
		b.WriteString(indent + s + "\n")
	}
	if !documented {
		b.WriteString("\n")
		for _, e := range item {
			line(e.key + ": " + e.value)
		}
		return
	}
	values := map[string]string{}
	for _, e := range item {
		values[e.key] = e.value
	}
	for i := range t.NumField() {
		f := t.Field(i)
		key := f.Tag.Get("yaml")
		if key == "" || key == "-" {
			continue
		}
		if first {
			writeDoc(b, "  ", t.Name(), f, key)
		} else {
			writeDoc(b, indent, t.Name(), f, key)
		}
		if v, ok := values[key]; ok {
			line(key + ": " + v)
		} else {
			b.WriteString(indent + "# " + key + ": " + exampleOf(Fields(list), key) + "\n")
		}
	}
}

// writeDoc writes a field's documentation as comments, the Go field name
// replaced by the key, wrapped to 78 columns; for a nested struct the
// documentation of its keys follows.
func writeDoc(b *strings.Builder, indent, typeName string, f reflect.StructField, key string) {
	doc := fieldDocs()[typeName+"."+f.Name]
	if rest, ok := strings.CutPrefix(doc, f.Name+" "); ok {
		doc = key + " " + rest
	}
	wrapComment(b, indent+"# ", doc)
	st := f.Type
	if st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	if st.Kind() == reflect.Struct && st != dateType {
		for i := range st.NumField() {
			sf := st.Field(i)
			sk := sf.Tag.Get("yaml")
			sdoc := fieldDocs()[st.Name()+"."+sf.Name]
			if rest, ok := strings.CutPrefix(sdoc, sf.Name+" "); ok {
				sdoc = sk + " " + rest
			}
			wrapComment(b, indent+"#   ", sdoc)
		}
	}
}

func wrapComment(b *strings.Builder, prefix, text string) {
	words := strings.Fields(text)
	lineLen := 0
	for _, w := range words {
		if lineLen > 0 && lineLen+1+len(w) > 78 {
			b.WriteString("\n")
			lineLen = 0
		}
		if lineLen == 0 {
			b.WriteString(prefix + w)
			lineLen = len(prefix) + len(w)
			continue
		}
		b.WriteString(" " + w)
		lineLen += 1 + len(w)
	}
	if lineLen > 0 {
		b.WriteString("\n")
	}
}

// exampleOf is the declared example value of a key.
func exampleOf(fields []Field, key string) string {
	for _, f := range fields {
		if f.Key == key {
			return f.Example
		}
	}
	return ""
}
