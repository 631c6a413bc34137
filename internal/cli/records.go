package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/store"
	"github.com/mailgate/mailgate/internal/web"
)

// consoleRecords keeps the records administrators make in the console, in
// the store, and gives serve the configuration of the file plus them. A
// change is kept only when the whole configuration still validates with it
// and the record can be built the way serve builds it at start (refused:
// a *config.Error naming the key, 422 in the API); then serve reloads. A
// stored record that no longer fits or builds (the file changed, a
// certificate file went away) is skipped and shown failing with its
// reason: it does not keep the rest from running.
type consoleRecords struct {
	st     *store.Store
	data   []byte // the config file, as read at start
	path   string
	getenv func(string) string
	reload chan struct{}
	// applied, when set, receives the configuration a change produced, as
	// soon as it is kept (the console shows it before the agents restart)
	applied func(*config.Config)
	// failing, when set, receives the stored records that were skipped
	failing func([]web.BrokenRecord)

	mu   sync.Mutex
	seen string // the fingerprint of the records the configuration was made of
}

// fingerprint identifies a set of stored records and their versions.
func fingerprint(rs []store.Record) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%s/%s@%d;", r.Kind, r.Name, r.UpdatedAt.UnixNano())
	}
	return b.String()
}

// remember notes the stored records the configuration now follows.
func (c *consoleRecords) remember(ctx context.Context) {
	if rs, err := c.st.Records(ctx); err == nil {
		c.mu.Lock()
		c.seen = fingerprint(rs)
		c.mu.Unlock()
	}
}

// poll looks for records changed outside this editor (`mailgate records
// delete`, another serve sharing a PostgreSQL store) and, when there are,
// shows the new configuration and asks serve to reload.
func (c *consoleRecords) poll(ctx context.Context) {
	rs, err := c.st.Records(ctx)
	if err != nil {
		return
	}
	c.mu.Lock()
	same := c.seen == fingerprint(rs)
	c.mu.Unlock()
	if !same {
		c.kept(ctx)
	}
}

func (c *consoleRecords) records(ctx context.Context) ([]config.Record, error) {
	rs, err := c.st.Records(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]config.Record, 0, len(rs))
	for _, r := range rs {
		out = append(out, config.Record{Kind: r.Kind, Name: r.Name, YAML: r.YAML})
	}
	return out, nil
}

// config is the file's configuration with the console's records that fit
// it and can be built; broken are the others, with the reason.
func (c *consoleRecords) config(ctx context.Context) (*config.Config, []web.BrokenRecord, error) {
	rs, err := c.records(ctx)
	if err != nil {
		return nil, nil, err
	}
	cfg, _, broken, err := fitRecords(c.data, c.path, c.getenv, rs)
	return cfg, broken, err
}

func (c *consoleRecords) changed() {
	select {
	case c.reload <- struct{}{}:
	default:
	}
}

// others returns the console's records that fit the file except
// kind/name, and whether kind/name is stored.
func (c *consoleRecords) others(ctx context.Context, kind, name string) ([]config.Record, bool, error) {
	rs, err := c.records(ctx)
	if err != nil {
		return nil, false, err
	}
	found := false
	rest := rs[:0]
	for _, r := range rs {
		if r.Kind == kind && r.Name == name {
			found = true
			continue
		}
		rest = append(rest, r)
	}
	_, ok, _, err := fitRecords(c.data, c.path, c.getenv, rest)
	if err != nil {
		return nil, false, err
	}
	return ok, found, nil
}

// kept shows the configuration with the change and asks serve to reload.
func (c *consoleRecords) kept(ctx context.Context) {
	c.remember(ctx)
	cfg, broken, err := c.config(ctx)
	if err == nil {
		if c.applied != nil {
			c.applied(cfg)
		}
		if c.failing != nil {
			c.failing(broken)
		}
	}
	c.changed()
}

// Save validates the configuration with the record in place and builds the
// record as serve will (refused: a *config.Error naming the key), keeps it
// and asks serve to reload.
func (c *consoleRecords) Save(ctx context.Context, kind, name string, yaml []byte) error {
	rest, _, err := c.others(ctx, kind, name)
	if err != nil {
		return err
	}
	cfg, err := config.ParseWith(c.data, c.path, c.getenv, append(rest, config.Record{Kind: kind, Name: name, YAML: yaml}))
	if err != nil {
		return err
	}
	if err := checkRecord(cfg, kind, name); err != nil {
		return asConfigError(cfg.File, err)
	}
	if err := c.st.PutRecord(ctx, kind, name, yaml); err != nil {
		return err
	}
	c.kept(ctx)
	return nil
}

// Delete removes a record unless a working record still refers to it; a
// failing record can always be deleted.
func (c *consoleRecords) Delete(ctx context.Context, kind, name string) error {
	all, err := c.records(ctx)
	if err != nil {
		return err
	}
	_, working, _, err := fitRecords(c.data, c.path, c.getenv, all)
	if err != nil {
		return err
	}
	found, works := false, false
	rest := working[:0:0]
	for _, r := range all {
		found = found || r.Kind == kind && r.Name == name
	}
	for _, r := range working {
		if r.Kind == kind && r.Name == name {
			works = true
			continue
		}
		rest = append(rest, r)
	}
	if !found {
		return web.ErrNoRecord
	}
	if works {
		if _, err := config.ParseWith(c.data, c.path, c.getenv, rest); err != nil {
			return fmt.Errorf("%s %s is still in use: %w", kind, name, err)
		}
	}
	if err := c.st.DeleteRecord(ctx, kind, name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	c.kept(ctx)
	return nil
}

// Load returns a record's YAML.
func (c *consoleRecords) Load(ctx context.Context, kind, name string) ([]byte, bool, error) {
	rs, err := c.st.Records(ctx)
	if err != nil {
		return nil, false, err
	}
	for _, r := range rs {
		if r.Kind == kind && r.Name == name {
			return r.YAML, true, nil
		}
	}
	return nil, false, nil
}

func init() {
	register(&command{
		name:    "records",
		summary: "the console's records: records list [KIND], records show KIND NAME, records delete KIND NAME",
		run:     runRecords,
	})
}

// runRecords manages the records made in the console (kept in the store)
// from the command line; KIND is profiles, mailboxes, sinks or senders:
//
//	mailgate records list [KIND]        one line per record: kind, name,
//	                                    state (ok, or failing and why), last change
//	mailgate records show KIND NAME     its keys; secrets, headers and command
//	                                    lines show as "set", URLs redacted
//	mailgate records delete KIND NAME   removes it, also a failing one;
//	                                    refused while a working record uses it
//
// A running serve notices a deletion made here within recordsPollEvery.
func runRecords(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "records", "list [KIND] | show KIND NAME | delete KIND NAME")
	cfgFlag := fs.String("config", "", "config file (default $MAILGATE_CONFIG, then ./mailgate.yaml)")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	usage := func() int {
		fmt.Fprintln(env.Err, "usage: mailgate records list [KIND]\n       mailgate records show KIND NAME\n       mailgate records delete KIND NAME\nKIND: "+strings.Join(config.Kinds, ", "))
		return ExitUsage
	}
	switch {
	case len(pos) == 1 && pos[0] == "list", len(pos) == 2 && pos[0] == "list":
	case len(pos) == 3 && (pos[0] == "show" || pos[0] == "delete"):
	default:
		return usage()
	}
	if len(pos) > 1 && !slices.Contains(config.Kinds, pos[1]) {
		fmt.Fprintf(env.Err, "mailgate: records: unknown kind %q\n", pos[1])
		return usage()
	}
	path := configPath(env, *cfgFlag)
	cfg, code, ok := loadConfig(env, path)
	if !ok {
		return code
	}
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: records: %v\n", err)
		return ExitUsage
	}
	st, err := openStore(ctx, env, cfg, logger(env.Err, false))
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: records: %v\n", err)
		return ExitFailed
	}
	defer st.Close()
	ed := &consoleRecords{st: st, data: data, path: path, getenv: env.Getenv, reload: make(chan struct{}, 1)}
	switch pos[0] {
	case "list":
		rs, err := st.Records(ctx)
		if err != nil {
			fmt.Fprintf(env.Err, "mailgate: records: %v\n", err)
			return ExitFailed
		}
		_, broken, err := ed.config(ctx)
		if err != nil {
			fmt.Fprintf(env.Err, "mailgate: records: %v\n", err)
			return ExitFailed
		}
		tw := tabwriter.NewWriter(env.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tNAME\tSTATE\tCHANGED")
		for _, r := range rs {
			if len(pos) == 2 && r.Kind != pos[1] {
				continue
			}
			state := "ok"
			for _, b := range broken {
				if b.Kind == r.Kind && b.Name == r.Name {
					state = "failing: " + b.Reason
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Kind, r.Name, state, r.UpdatedAt.UTC().Format(time.RFC3339))
		}
		tw.Flush()
	case "show":
		y, found, err := ed.Load(ctx, pos[1], pos[2])
		if err != nil {
			fmt.Fprintf(env.Err, "mailgate: records: %v\n", err)
			return ExitFailed
		}
		if !found {
			fmt.Fprintf(env.Err, "mailgate: records: no console record %s %s\n", pos[1], pos[2])
			return ExitFailed
		}
		shown, err := web.ShowRecord(pos[1], y)
		if err != nil {
			fmt.Fprintf(env.Err, "mailgate: records: %s %s: %v\n", pos[1], pos[2], err)
			return ExitFailed
		}
		for _, s := range shown {
			fmt.Fprintf(env.Out, "%s: %s\n", s.Key, s.Value)
		}
		_, broken, err := ed.config(ctx)
		if err == nil {
			for _, b := range broken {
				if b.Kind == pos[1] && b.Name == pos[2] {
					fmt.Fprintf(env.Out, "# failing, not run by serve: %s\n", b.Reason)
				}
			}
		}
	case "delete":
		if err := ed.Delete(ctx, pos[1], pos[2]); err != nil {
			if errors.Is(err, web.ErrNoRecord) {
				fmt.Fprintf(env.Err, "mailgate: records: no console record %s %s\n", pos[1], pos[2])
			} else {
				fmt.Fprintf(env.Err, "mailgate: records: %v\n", err)
			}
			return ExitFailed
		}
		fmt.Fprintf(env.Err, "console record %s %s deleted\n", pos[1], pos[2])
	}
	return ExitOK
}
