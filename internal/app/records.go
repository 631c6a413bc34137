package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/store"
	"github.com/mailgate/mailgate/internal/web"
)

// Records is the console's record editor (web.Editor): it keeps the
// records administrators make in the console, in the store, and gives
// serve the configuration of the file plus them. A change is kept only
// when the whole configuration still validates with it and the record can
// be built the way serve builds it at start (refused: a *config.Error
// naming the key, 422 in the API); then serve reloads. A stored record
// that no longer fits or builds (the file changed, a certificate file went
// away) is skipped and shown failing with its reason: it does not keep the
// rest from running.
type Records struct {
	st     *store.Store
	fileMu sync.RWMutex
	data   []byte // the config file, as read at start or on SIGHUP (file)
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

// NewRecords is the record editor of the config file at path (its bytes
// data, its ${VAR}s resolved with getenv) over the records kept in st,
// for `mailgate records`; serve's is made by Start.
func NewRecords(st *store.Store, data []byte, path string, getenv func(string) string) *Records {
	return &Records{st: st, data: data, path: path, getenv: getenv, reload: make(chan struct{}, 1)}
}

// file is the config file's bytes.
func (c *Records) file() []byte {
	c.fileMu.RLock()
	defer c.fileMu.RUnlock()
	return c.data
}

// setFile replaces the config file's bytes (serve's SIGHUP).
func (c *Records) setFile(data []byte) {
	c.fileMu.Lock()
	defer c.fileMu.Unlock()
	c.data = data
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
func (c *Records) remember(ctx context.Context) {
	if rs, err := c.st.Records(ctx); err == nil {
		c.mu.Lock()
		c.seen = fingerprint(rs)
		c.mu.Unlock()
	}
}

// poll looks for records changed outside this editor (`mailgate records
// delete`, another serve sharing a PostgreSQL store) and, when there are,
// shows the new configuration and asks serve to reload.
func (c *Records) poll(ctx context.Context) {
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

func (c *Records) records(ctx context.Context) ([]config.Record, error) {
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
func (c *Records) Config(ctx context.Context) (*config.Config, []web.BrokenRecord, error) {
	rs, err := c.records(ctx)
	if err != nil {
		return nil, nil, err
	}
	cfg, _, broken, err := fitRecords(c.file(), c.path, c.getenv, rs)
	return cfg, broken, err
}

func (c *Records) changed() {
	select {
	case c.reload <- struct{}{}:
	default:
	}
}

// others returns the console's records that fit the file except
// kind/name, and whether kind/name is stored.
func (c *Records) others(ctx context.Context, kind, name string) ([]config.Record, bool, error) {
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
	_, ok, _, err := fitRecords(c.file(), c.path, c.getenv, rest)
	if err != nil {
		return nil, false, err
	}
	return ok, found, nil
}

// kept shows the configuration with the change and asks serve to reload.
func (c *Records) kept(ctx context.Context) {
	c.remember(ctx)
	cfg, broken, err := c.Config(ctx)
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
func (c *Records) Save(ctx context.Context, kind, name string, yaml []byte) error {
	rest, _, err := c.others(ctx, kind, name)
	if err != nil {
		return err
	}
	cfg, err := config.ParseWith(c.file(), c.path, c.getenv, append(rest, config.Record{Kind: kind, Name: name, YAML: yaml}))
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
func (c *Records) Delete(ctx context.Context, kind, name string) error {
	all, err := c.records(ctx)
	if err != nil {
		return err
	}
	_, working, _, err := fitRecords(c.file(), c.path, c.getenv, all)
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
		if _, err := config.ParseWith(c.file(), c.path, c.getenv, rest); err != nil {
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
func (c *Records) Load(ctx context.Context, kind, name string) ([]byte, bool, error) {
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

// RecordState is a stored record and why serve skips it ("" when it runs).
type RecordState struct {
	store.Record
	Failing string
}

// States lists the stored records of kind ("" for every kind), each with
// the reason serve skips it, if it does (for `records list` and `show`).
func (c *Records) States(ctx context.Context, kind string) ([]RecordState, error) {
	rs, err := c.st.Records(ctx)
	if err != nil {
		return nil, err
	}
	_, broken, err := c.Config(ctx)
	if err != nil {
		return nil, err
	}
	var out []RecordState
	for _, r := range rs {
		if kind != "" && r.Kind != kind {
			continue
		}
		s := RecordState{Record: r}
		for _, b := range broken {
			if b.Kind == r.Kind && b.Name == r.Name {
				s.Failing = b.Reason
			}
		}
		out = append(out, s)
	}
	return out, nil
}
