package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mailgate/mailgate/internal/redact"
)

// Record is a profile, mailbox, sink, sender or proxy account kept outside the file (the
// console's records, in the store): one YAML mapping with the same keys as
// an item of the file's list.
type Record struct {
	Kind string // profiles, mailboxes, sinks or senders
	Name string
	YAML []byte
}

// Kinds are the record kinds, as the file's top-level keys.
var Kinds = []string{"profiles", "mailboxes", "sinks", "senders"}

// ProxyKinds are the legacy-client proxy's lists: kinds Fields knows.
// Accounts may also be console records (made through /api/v1/accounts,
// their password a bcrypt hash); listeners are kept in the file only.
var ProxyKinds = []string{"listeners", "accounts"}

// OriginFile and OriginConsole say where a record comes from.
const (
	OriginFile    = "file"
	OriginConsole = "console"
)

// ParseWith is Parse with records added to the file's lists; they are
// validated together (names unique across both, references resolved), and
// each gets Origin OriginConsole. A record's problems name it by its key
// path, for example "mailboxes[forms].host".
func ParseWith(data []byte, filename string, getenv func(string) string, records []Record) (*Config, error) {
	return parse(data, filename, getenv, time.Now(), records)
}

// addRecords appends each record's mapping to the root's list of its kind.
func addRecords(root *yaml.Node, records []Record) (*yaml.Node, error) {
	if root == nil {
		root = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("the file is not a mapping of keys")
	}
	for _, r := range records {
		if !slices.Contains(Kinds, r.Kind) && r.Kind != "accounts" {
			return nil, fmt.Errorf("record %s/%s: unknown kind", r.Kind, r.Name)
		}
		n, err := parseYAML(r.YAML)
		if err != nil || n == nil || n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("record %s/%s: not a YAML mapping (%v)", r.Kind, r.Name, err)
		}
		var list *yaml.Node
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == r.Kind {
				list = root.Content[i+1]
			}
		}
		if list == nil {
			list = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: r.Kind}, list)
		}
		if list.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("%s: must be a list", r.Kind)
		}
		list.Content = append(list.Content, n)
	}
	return root, nil
}

// markOrigins sets Origin on every item: the console's records, the rest
// from the file.
func markOrigins(cfg *Config, records []Record) {
	from := map[string]bool{}
	for _, r := range records {
		from[r.Kind+"/"+r.Name] = true
	}
	origin := func(kind, name string) string {
		if from[kind+"/"+name] {
			return OriginConsole
		}
		return OriginFile
	}
	for i := range cfg.Profiles {
		cfg.Profiles[i].Origin = origin("profiles", cfg.Profiles[i].Name)
	}
	for i := range cfg.Mailboxes {
		cfg.Mailboxes[i].Origin = origin("mailboxes", cfg.Mailboxes[i].Name)
	}
	for i := range cfg.Sinks {
		cfg.Sinks[i].Origin = origin("sinks", cfg.Sinks[i].Name)
	}
	for i := range cfg.Senders {
		cfg.Senders[i].Origin = origin("senders", cfg.Senders[i].Name)
	}
	for i := range cfg.Accounts {
		cfg.Accounts[i].Origin = origin("accounts", cfg.Accounts[i].Username)
	}
}

// SafeValue reports a problem with a value typed into the console: the
// file's ${ENV} and file: references are not available there (they would
// let a console user read the server's environment and files).
func SafeValue(v string) error {
	switch {
	case strings.Contains(v, "${"):
		return fmt.Errorf("${…} references are for the config file; type the value itself")
	case strings.HasPrefix(strings.TrimSpace(v), "file:"):
		return fmt.Errorf("file: references are for the config file; type the value itself")
	}
	return nil
}

// DisplayURL is redact.URL: a URL from the configuration as it may be
// shown (views, logs, errors, edit forms).
func DisplayURL(s string) string { return redact.URL(s) }
