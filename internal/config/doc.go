// Package config owns mailgate's configuration file (mailgate.yaml): the
// types, each key documented on its struct field; loading with problems
// located by file, line and key; ${NAME} and file:PATH references; defaults;
// validation; and Example(), a commented example generated from the field
// documentation. Each key of a record kind is declared once, on its field
// (doc comment and struct tags: fields.go); Fields(kind) hands that
// declaration to validation, Example, the console's forms and the API.
//
// It follows YAML 1.2 as implemented by go.yaml.in/yaml/v3 (its node API
// gives every value a line), RFC 3986 for URLs and RFC 5322 for the
// addresses in allowed_from.
//
// Use it in steps:
//
//  1. cfg, err := config.Load(path, os.Getenv)
//  2. on error, errors.As(err, &cerr) with a *config.Error and print each of
//     cerr.Problems ("file:line: key: problem"), one per line; exit 2;
//  3. print cfg.Warnings (an expiring client secret, plain HTTP), which do
//     not stop mailgate;
//  4. look items up with cfg.Profile(name), cfg.Mailbox(name),
//     cfg.Sink(name), cfg.Sender(name); defaults are already applied and
//     file paths are absolute;
//  5. read secrets only with Secret.Reveal, where they are used: a Secret
//     prints, logs and marshals as "[redacted]".
//
// References: a value that starts with "file:" is replaced by the file's
// contents (path relative to the config file's directory, one trailing
// newline removed). Every ${NAME} in a value, whole or embedded in a longer
// string, is replaced by that environment variable, which must be set and
// not empty; write $${ for a literal ${. Both work in every value, not only
// secrets, and a missing variable or unreadable file is a problem at that
// line.
//
// Decisions the file format makes: keys are matched exactly (unknown keys
// are problems, with a suggestion for a near miss); list items are named in
// key paths by their name ("mailboxes[forms].sink"), or their index when they
// have none; plain http is accepted only to loopback hosts for token
// endpoints and Graph, and for webhooks anywhere with a warning; security:
// none only to loopback hosts.
package config

// Profile returns the profile called name.
func (c *Config) Profile(name string) (*Profile, bool) { return find(c.Profiles, name, profileName) }

// Mailbox returns the mailbox called name.
func (c *Config) Mailbox(name string) (*Mailbox, bool) { return find(c.Mailboxes, name, mailboxName) }

// Sink returns the sink called name.
func (c *Config) Sink(name string) (*Sink, bool) { return find(c.Sinks, name, sinkName) }

// Sender returns the sender called name.
func (c *Config) Sender(name string) (*Sender, bool) { return find(c.Senders, name, senderName) }

// Listener returns the listener called name.
func (c *Config) Listener(name string) (*Listener, bool) {
	return find(c.Listeners, name, func(l *Listener) string { return l.Name })
}

// Account returns the proxy account called username.
func (c *Config) Account(username string) (*Account, bool) {
	return find(c.Accounts, username, func(a *Account) string { return a.Username })
}

// Origin says where the record of kind (profiles, mailboxes, sinks or
// senders) called name comes from: OriginFile or OriginConsole; ok is false
// when there is none.
func (c *Config) Origin(kind, name string) (origin string, ok bool) {
	switch kind {
	case "profiles":
		if p, ok := c.Profile(name); ok {
			return p.Origin, true
		}
	case "mailboxes":
		if m, ok := c.Mailbox(name); ok {
			return m.Origin, true
		}
	case "sinks":
		if k, ok := c.Sink(name); ok {
			return k.Origin, true
		}
	case "senders":
		if s, ok := c.Sender(name); ok {
			return s.Origin, true
		}
	case "accounts":
		if a, ok := c.Account(name); ok {
			return a.Origin, true
		}
	}
	return "", false
}

func profileName(p *Profile) string { return p.Name }
func mailboxName(m *Mailbox) string { return m.Name }
func sinkName(s *Sink) string       { return s.Name }
func senderName(s *Sender) string   { return s.Name }

func find[T any](items []T, name string, nameOf func(*T) string) (*T, bool) {
	for i := range items {
		if nameOf(&items[i]) == name {
			return &items[i], true
		}
	}
	return nil, false
}

// Warning makes a warning about the key path (as in Problem.Key, e.g.
// "profiles[contoso]") located in the file like those Load finds, for
// checks made outside this package.
func (c *Config) Warning(key, msg string) Problem {
	return Problem{File: c.File, Line: lineOf(c.lines, key), Key: key, Msg: msg}
}
