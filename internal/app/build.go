package app

import (
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/mailbox"
	"github.com/mailgate/mailgate/internal/sink"
	"github.com/mailgate/mailgate/internal/web"
)

// A console record is kept only when it can be built the way serve builds
// it at start: checkRecord runs the runtime's own constructors on it (the
// oauth profile with its certificate files and HTTP client, the sink, the
// mailbox's and sender's TLS settings) and applies the config file's
// console limits. The only lasting effect is a maildir sink's tmp/, new/
// and cur/ directories, which the sink creates at start anyway.

// pseudoFilesystems are where no maildir may be: the kernel's views, where
// directories cannot be made and files are not files.
var pseudoFilesystems = []string{"/proc", "/sys", "/dev"}

// checkRecord builds the console record kind/name of cfg as the agents
// will, without starting anything; the error is a *KeyError naming
// the key.
func checkRecord(cfg *config.Config, kind, name string) error {
	switch kind {
	case "profiles":
		for i := range cfg.Profiles {
			if cfg.Profiles[i].Name == name {
				_, err := Profile(&cfg.Profiles[i], i)
				return err
			}
		}
	case "sinks":
		if k, ok := cfg.Sink(name); ok {
			return checkConsoleSink(cfg, k)
		}
	case "mailboxes":
		if m, ok := cfg.Mailbox(name); ok {
			key := "mailboxes[" + name + "]"
			if _, err := mailbox.ParseAfter(m.After); err != nil {
				return &KeyError{key + ".after", err}
			}
			if m.Protocol != "graph" {
				if _, err := tlsConfig(m.Host, m.TLSCA); err != nil {
					return &KeyError{key + ".tls_ca", errors.Unwrap(err)}
				}
			}
		}
	case "senders":
		for i := range cfg.Senders {
			if s := &cfg.Senders[i]; s.Name == name && s.Protocol != "graph" {
				if _, err := tlsConfig(s.Host, s.TLSCA); err != nil {
					return &KeyError{"senders[" + name + "].tls_ca", errors.Unwrap(err)}
				}
			}
		}
	}
	return nil
}

// checkConsoleSink applies the console's limits to a sink made there and
// builds it.
func checkConsoleSink(cfg *config.Config, k *config.Sink) error {
	key := "sinks[" + k.Name + "]"
	switch k.Type {
	case "command":
		if !cfg.Console.AllowCommandSinks {
			return &KeyError{key + ".type", errors.New("command sinks run any program as mailgate's user; the config file allows them from the console only with console: {allow_command_sinks: true}")}
		}
	case "maildir":
		if err := maildirAllowed(k.Path, cfg.Console.MaildirRoot); err != nil {
			return &KeyError{key + ".path", err}
		}
	}
	switch k.Type {
	case "store":
		return nil
	case "maildir":
		// what NewMaildir does before it reads the maildir's messages
		if err := sink.MakeMaildir(k.Path); err != nil {
			return &KeyError{key + ".path", err}
		}
		return nil
	}
	s, err := newSink(nil, k)
	if err != nil {
		field := map[string]string{"maildir": ".path", "webhook": ".url", "command": ".command"}[k.Type]
		return &KeyError{key + field, err}
	}
	s.Close()
	return nil
}

// maildirAllowed says whether a console maildir path may be used: no NUL
// byte, not in a pseudo filesystem, and under root once symbolic links of
// its existing part are resolved.
func maildirAllowed(path, root string) error {
	if strings.ContainsRune(path, 0) {
		return errors.New("holds a NUL byte")
	}
	p, err := resolveExisting(filepath.Clean(path))
	if err != nil {
		return err
	}
	for _, pseudo := range pseudoFilesystems {
		if p == pseudo || strings.HasPrefix(p, pseudo+"/") {
			return fmt.Errorf("%s is in %s, where no maildir can be", path, pseudo)
		}
	}
	r, err := resolveExisting(filepath.Clean(root))
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(r, p); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("%s is outside %s: maildirs made in the console must be under the config file's console.maildir_root", path, root)
	}
	return nil
}

// resolveExisting resolves the symbolic links of the longest existing
// prefix of an absolute, clean path and appends the rest.
func resolveExisting(p string) (string, error) {
	var rest []string
	for {
		r, err := filepath.EvalSymlinks(p)
		if err == nil {
			slices.Reverse(rest)
			return filepath.Join(append([]string{r}, rest...)...), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", err
		}
		rest = append(rest, filepath.Base(p))
		p = parent
	}
}

// fitRecords returns the config file's configuration with every console
// record that fits it and can be built, the records kept, and the others
// with the reason. The error is the file's own.
func fitRecords(data []byte, path string, getenv func(string) string, recs []config.Record) (*config.Config, []config.Record, []web.BrokenRecord, error) {
	order := func(kind string) int {
		return slices.Index([]string{"profiles", "sinks", "mailboxes", "senders", "accounts"}, kind)
	}
	recs = slices.Clone(recs)
	slices.SortStableFunc(recs, func(a, b config.Record) int { return order(a.Kind) - order(b.Kind) })
	check := func(cfg *config.Config, rs []config.Record) error {
		for _, r := range rs {
			if err := checkRecord(cfg, r.Kind, r.Name); err != nil {
				return err
			}
		}
		return nil
	}
	if cfg, err := config.ParseWith(data, path, getenv, recs); err == nil && check(cfg, recs) == nil {
		return cfg, recs, nil, nil
	}
	var ok []config.Record
	var broken []web.BrokenRecord
	for _, r := range recs {
		cfg, err := config.ParseWith(data, path, getenv, append(slices.Clone(ok), r))
		if err == nil {
			err = check(cfg, []config.Record{r})
		}
		if err != nil {
			broken = append(broken, web.BrokenRecord{Kind: r.Kind, Name: r.Name, Reason: strings.Join(config.ProblemLines(err), "; ")})
			continue
		}
		ok = append(ok, r)
	}
	cfg, err := config.ParseWith(data, path, getenv, ok)
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, ok, broken, nil
}

// asConfigError turns a build problem into the config error the console
// shows (422, naming the key).
func asConfigError(file string, err error) error {
	var pe *KeyError
	if errors.As(err, &pe) {
		return &config.Error{Problems: []config.Problem{{File: file, Key: pe.Key, Msg: pe.Err.Error()}}}
	}
	return err
}

// pemBlock says whether data holds a PEM block of one of the types.
func pemBlock(data []byte, types ...string) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if slices.Contains(types, b.Type) {
			return true
		}
	}
}
