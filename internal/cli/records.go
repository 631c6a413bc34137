package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/store"
	"github.com/mailgate/mailgate/internal/web"
)

// consoleRecords keeps the records administrators make in the console, in
// the store, and gives serve the configuration of the file plus them. A
// change is validated against the whole configuration before it is kept,
// then serve reloads.
type consoleRecords struct {
	st     *store.Store
	data   []byte // the config file, as read at start
	path   string
	getenv func(string) string
	reload chan struct{}
	// applied, when set, receives the configuration a change produced, as
	// soon as it is kept (the console shows it before the agents restart)
	applied func(*config.Config)
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

// config is the file's configuration with the console's records.
func (c *consoleRecords) config(ctx context.Context) (*config.Config, error) {
	rs, err := c.records(ctx)
	if err != nil {
		return nil, err
	}
	return config.ParseWith(c.data, c.path, c.getenv, rs)
}

func (c *consoleRecords) changed() {
	select {
	case c.reload <- struct{}{}:
	default:
	}
}

// others returns the console's records except kind/name, and whether
// that one was among them.
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
	return rest, found, nil
}

// kept shows the configuration a change produced and asks serve to reload.
func (c *consoleRecords) kept(cfg *config.Config) {
	if c.applied != nil {
		c.applied(cfg)
	}
	c.changed()
}

// Save validates the configuration with the record in place, keeps it and
// asks serve to reload.
func (c *consoleRecords) Save(ctx context.Context, kind, name string, yaml []byte) error {
	rest, _, err := c.others(ctx, kind, name)
	if err != nil {
		return err
	}
	cfg, err := config.ParseWith(c.data, c.path, c.getenv, append(rest, config.Record{Kind: kind, Name: name, YAML: yaml}))
	if err != nil {
		return err
	}
	if err := c.st.PutRecord(ctx, kind, name, yaml); err != nil {
		return err
	}
	c.kept(cfg)
	return nil
}

// Delete removes a record unless something else still refers to it.
func (c *consoleRecords) Delete(ctx context.Context, kind, name string) error {
	rest, found, err := c.others(ctx, kind, name)
	if err != nil {
		return err
	}
	if !found {
		return web.ErrNoRecord
	}
	cfg, err := config.ParseWith(c.data, c.path, c.getenv, rest)
	if err != nil {
		return fmt.Errorf("%s %s is still in use: %w", kind, name, err)
	}
	if err := c.st.DeleteRecord(ctx, kind, name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	c.kept(cfg)
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
