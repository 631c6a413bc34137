package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Load reads, checks and completes the configuration file at path. getenv
// looks up ${NAME} references (pass os.Getenv; nil means no variables).
//
// Steps: parse the YAML keeping line numbers; decode every key, resolving
// ${NAME} and file:PATH references; apply defaults; make relative file paths
// absolute against the config file's directory; validate. Problems are
// collected, not stopped at: the error is an *Error listing each with its
// file, line and key. Warnings (nothing that stops mailgate) are in
// Config.Warnings.
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path, getenv)
}

// Parse is Load on bytes already read; filename names them in problems and
// anchors relative paths (its directory; the working directory when "").
func Parse(data []byte, filename string, getenv func(string) string) (*Config, error) {
	return parse(data, filename, getenv, time.Now(), nil)
}

func parse(data []byte, filename string, getenv func(string) string, now time.Time, records []Record) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	dir := "."
	abs := ""
	if filename != "" {
		dir = filepath.Dir(filename)
		if a, err := filepath.Abs(filename); err == nil {
			abs = a
		}
	}
	if a, err := filepath.Abs(dir); err == nil {
		dir = a
	}
	d := &decoder{file: filename, dir: dir, getenv: getenv, now: now,
		lines: map[string]int{}, empty: map[string]bool{}, items: map[string][]string{}}
	if d.file == "" {
		d.file = "<config>"
	}
	cfg := &Config{File: abs}

	root, err := parseYAML(data)
	if err != nil {
		return nil, &Error{Problems: []Problem{d.syntaxProblem(err, data)}}
	}
	if len(records) > 0 {
		if root, err = addRecords(root, records); err != nil {
			return nil, &Error{Problems: []Problem{{File: d.file, Msg: err.Error()}}}
		}
	}
	if root != nil {
		d.decodeStruct(root, reflect.ValueOf(cfg).Elem(), "")
	}
	d.defaults(cfg)
	markOrigins(cfg, records)
	d.validate(cfg)
	cfg.Warnings, cfg.lines = d.warnings, d.lines
	if len(d.problems) > 0 {
		sortProblems(d.problems)
		return nil, &Error{Problems: d.problems}
	}
	sortProblems(cfg.Warnings)
	return cfg, nil
}

// parseYAML returns the top-level node of the single document in data, or
// nil for an empty file.
func parseYAML(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, fmt.Errorf("yaml: line %d: more than one document in the file", next.Line)
	} else if !errors.Is(err, io.EOF) {
		return nil, err
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		return doc.Content[0], nil
	}
	return &doc, nil
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

func (d *decoder) syntaxProblem(err error, data []byte) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := Problem{File: d.file, Msg: "invalid YAML: " + msg}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		rest := strings.TrimPrefix(msg, m[0])
		rest = strings.TrimPrefix(rest, ":")
		p.Msg = "invalid YAML: " + strings.TrimSpace(rest)
		p.Line = syntaxLine(data, p.Line, p.Msg)
		// A ${NAME} inside { } or [ ] ends the flow collection early.
		lines := strings.Split(string(data), "\n")
		// (YAML also counts a lone \r as a line break, so the line may lie
		// beyond the \n-separated lines.)
		lo := min(max(0, p.Line-2), len(lines))
		hi := max(lo, min(len(lines), p.Line))
		for _, l := range lines[lo:hi] {
			if strings.Contains(l, "${") && strings.ContainsAny(l, "{[") {
				p.Msg += ` (inside { } or [ ], quote values holding ${NAME}: "${NAME}")`
				break
			}
		}
	}
	return p
}

// syntaxLine finds the line a YAML syntax error is on. yaml.v3 reports the
// line where the enclosing construct starts (0-based for some errors), so
// look for the shortest prefix of the file, from that line on, that fails
// with the same message.
func syntaxLine(data []byte, reported int, msg string) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > 1000 {
		return reported
	}
	for k := max(1, reported); k <= len(lines); k++ {
		_, err := parseYAML(bytes.Join(lines[:k], nil))
		if err == nil {
			continue
		}
		m := strings.TrimPrefix(err.Error(), "yaml: ")
		if l := yamlLine.FindString(m); l != "" {
			m = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(m, l), ":"))
		}
		if "invalid YAML: "+m == msg {
			return k
		}
	}
	return reported
}

// maxNodes bounds the work done on one file (aliases can make a small file
// expand enormously) while letting 10,000 mailboxes of a dozen keys each
// through.
const maxNodes = 2_000_000

// decoder walks the YAML nodes into the Config, recording problems and the
// line of every key it saw.
type decoder struct {
	file     string
	dir      string
	getenv   func(string) string
	now      time.Time
	problems []Problem
	warnings []Problem
	// lines maps a key path to the line of its value.
	lines map[string]int
	// empty holds the key paths written with an empty or null value.
	empty map[string]bool
	// items maps a list key ("profiles") to the paths of its items.
	items map[string][]string
	nodes int
	large bool
}

func (d *decoder) addf(path string, line int, format string, args ...any) {
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Key: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) warnf(path string, line int, format string, args ...any) {
	d.warnings = append(d.warnings, Problem{File: d.file, Line: line, Key: path, Msg: fmt.Sprintf(format, args...)})
}

// line returns the line recorded for path, or for its nearest parent.
func (d *decoder) line(path string) int { return lineOf(d.lines, path) }

func lineOf(lines map[string]int, path string) int {
	for path != "" {
		if l, ok := lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return lines[""]
}

// has reports whether the key at path was written in the file with a
// value: `key: ""` and `key:` count as not set.
func (d *decoder) has(path string) bool {
	_, ok := d.lines[path]
	return ok && !d.empty[path]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return "a single value"
	}
	return "something else"
}

// resolve follows aliases and counts nodes; it returns nil when the
// document is too large.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	if n == nil || n.Kind == yaml.AliasNode {
		return nil
	}
	d.nodes++
	if d.nodes > maxNodes {
		if !d.large {
			d.large = true
			d.addf("", n.Line, "the file expands to more than %d values (aliases?)", maxNodes)
		}
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

var (
	secretType   = reflect.TypeFor[Secret]()
	durationType = reflect.TypeFor[Duration]()
	dateType     = reflect.TypeFor[Date]()
)

// fieldsOf lists the YAML keys of a struct type with their field indexes.
func fieldsOf(t reflect.Type) (names []string, index map[string]int) {
	index = map[string]int{}
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		names = append(names, tag)
		index[tag] = i
	}
	return names, index
}

// decodeStruct decodes a mapping node into the struct v.
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	n = d.resolve(n)
	if n == nil || isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.addf(path, n.Line, "expected a mapping of keys, got %s", kindName(n))
		return
	}
	names, index := fieldsOf(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := d.resolve(n.Content[i]), n.Content[i+1]
		if k == nil {
			return
		}
		if k.Kind != yaml.ScalarNode {
			d.addf(path, k.Line, "a key must be a plain word, got %s", kindName(k))
			continue
		}
		p := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.addf(p, k.Line, "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		fi, ok := index[k.Value]
		if !ok {
			msg := fmt.Sprintf("unknown key %q", k.Value)
			if s := suggest(k.Value, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.addf(p, k.Line, "%s", msg)
			continue
		}
		d.lines[p] = k.Line
		d.decodeValue(val, v.Field(fi), p)
	}
}

// decodeValue decodes one value node into v according to v's type.
func (d *decoder) decodeValue(n *yaml.Node, v reflect.Value, path string) {
	n = d.resolve(n)
	if n == nil {
		return
	}
	if n.Kind != yaml.MappingNode && n.Kind != yaml.SequenceNode {
		d.lines[path] = n.Line
	}
	if isNull(n) || (n.Kind == yaml.ScalarNode && n.Value == "") {
		d.empty[path] = true
	}
	t := v.Type()
	switch {
	case t == secretType:
		if s, ok := d.scalar(n, path); ok {
			v.Set(reflect.ValueOf(Secret{v: s}))
		}
	case t == durationType:
		if s, ok := d.scalar(n, path); ok && s != "" {
			dur, err := time.ParseDuration(s)
			switch {
			case err != nil:
				d.addf(path, n.Line, "%q is not a duration (write it like 30s, 5m or 1h30m)", s)
			case dur < 0:
				d.addf(path, n.Line, "duration must not be negative")
			default:
				v.SetInt(int64(dur))
			}
		}
	case t == dateType:
		if s, ok := d.scalar(n, path); ok && s != "" {
			tm, err := time.Parse(DateLayout, s)
			if err != nil {
				d.addf(path, n.Line, "%q is not a date (write it YYYY-MM-DD)", s)
			} else {
				v.Set(reflect.ValueOf(Date{tm}))
			}
		}
	case t.Kind() == reflect.String:
		if s, ok := d.scalar(n, path); ok {
			v.SetString(s)
		}
	case t.Kind() == reflect.Int:
		if s, ok := d.scalar(n, path); ok && s != "" {
			i, err := strconv.Atoi(s)
			if err != nil {
				d.addf(path, n.Line, "%q is not a whole number", s)
			} else {
				v.SetInt(int64(i))
			}
		}
	case t.Kind() == reflect.Bool:
		if s, ok := d.scalar(n, path); ok && s != "" {
			switch strings.ToLower(s) {
			case "true", "yes", "on":
				v.SetBool(true)
			case "false", "no", "off":
				v.SetBool(false)
			default:
				d.addf(path, n.Line, "%q is not true or false", s)
			}
		}
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		// a section (console:) or an optional one (client_certificate:)
		if isNull(n) {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.addf(path, n.Line, "expected a mapping of keys, got %s", kindName(n))
			return
		}
		d.lines[path] = n.Line
		if t.Kind() == reflect.Pointer {
			nv := reflect.New(t.Elem())
			d.decodeStruct(n, nv.Elem(), path)
			v.Set(nv)
			return
		}
		d.decodeStruct(n, v, path)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		d.decodeStrings(n, v, path)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		d.decodeItems(n, v, path)
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.String:
		d.decodeMap(n, v, path)
	default:
		panic("config: no decoder for " + t.String())
	}
}

func (d *decoder) decodeStrings(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.addf(path, n.Line, "expected a list (write [a, b] or one \"- item\" per line), got %s", kindName(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, c := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		c = d.resolve(c)
		if c == nil {
			return
		}
		d.lines[p] = c.Line
		if s, ok := d.scalar(c, p); ok {
			out = reflect.Append(out, reflect.ValueOf(s))
		}
	}
	v.Set(out)
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.addf(path, n.Line, "expected a mapping of names to values, got %s", kindName(n))
		return
	}
	m := reflect.MakeMap(v.Type())
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := d.resolve(n.Content[i])
		if k == nil {
			return
		}
		if k.Kind != yaml.ScalarNode {
			d.addf(path, k.Line, "a key must be a plain word, got %s", kindName(k))
			continue
		}
		p := join(path, k.Value)
		if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
			d.addf(p, k.Line, "duplicate key")
			continue
		}
		d.lines[p] = k.Line
		val := d.resolve(n.Content[i+1])
		if val == nil {
			return
		}
		if s, ok := d.scalar(val, p); ok {
			m.SetMapIndex(reflect.ValueOf(k.Value), reflect.ValueOf(s))
		}
	}
	v.Set(m)
}

// decodeItems decodes a list of mappings (profiles, mailboxes...). Items are
// named in key paths by their name key when it is a plain value.
func (d *decoder) decodeItems(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.addf(path, n.Line, "expected a list of items (each starting with \"- name: ...\"), got %s", kindName(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	paths := make([]string, len(n.Content))
	for i, c := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		if c = d.resolve(c); c == nil {
			return
		}
		if name := plainName(c); name != "" && !slices.Contains(paths, fmt.Sprintf("%s[%s]", path, name)) {
			p = fmt.Sprintf("%s[%s]", path, name)
		}
		paths[i] = p
		d.lines[p] = c.Line
		d.decodeStruct(c, out.Index(i), p)
	}
	v.Set(out)
	d.items[path] = paths
}

// plainName returns the literal value of an item's name key when it is a
// usable name, for key paths.
func plainName(n *yaml.Node) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "name" && n.Content[i+1].Kind == yaml.ScalarNode {
			if s := n.Content[i+1].Value; validName(s) {
				return s
			}
			return ""
		}
	}
	return ""
}

// scalar returns the string value of a scalar node with references
// resolved; ok is false (and a problem recorded) otherwise.
func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	if isNull(n) {
		return "", true
	}
	if n.Kind != yaml.ScalarNode {
		d.addf(path, n.Line, "expected a single value, got %s", kindName(n))
		return "", false
	}
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 && n.Tag == "!!binary" {
		d.addf(path, n.Line, "binary values are not supported")
		return "", false
	}
	s, err := d.expand(n.Value)
	if err != nil {
		d.addf(path, n.Line, "%v", err)
		return "", false
	}
	return s, true
}
