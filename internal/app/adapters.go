package app

// Adapters between the store, which imports no agent, mailbox, sink or
// oauth type, and the interfaces those packages declare.

import (
	"context"
	"errors"
	"time"

	"github.com/mailgate/mailgate/internal/agent"
	"github.com/mailgate/mailgate/internal/mailbox"
	"github.com/mailgate/mailgate/internal/oauth"
	"github.com/mailgate/mailgate/internal/store"
)

// TokenStore returns st as oauth's token store (exported for the e2e
// tests that build a Manager by hand).
func TokenStore(st *store.Store) oauth.Store { return storeTokens{st} }

// storeTokens is the store as an oauth.Store: store.Token carries
// oauth.Token's fields as plain values, and the store's ErrNotFound is
// oauth's ErrNoToken.
type storeTokens struct{ st *store.Store }

func (s storeTokens) LoadToken(ctx context.Context, profile, key string) (*oauth.Token, error) {
	t, err := s.st.LoadToken(ctx, profile, key)
	if err != nil {
		return nil, noToken(err)
	}
	return &oauth.Token{AccessToken: t.AccessToken, TokenType: t.TokenType, RefreshToken: t.RefreshToken,
		IssuedAt: t.IssuedAt, Expiry: t.Expiry, ExtExpiry: t.ExtExpiry, RefreshAfter: t.RefreshAfter,
		Scope: t.Scope, Resource: t.Resource, IDToken: t.IDToken}, nil
}

func (s storeTokens) SaveToken(ctx context.Context, profile, key string, t *oauth.Token) error {
	if t == nil {
		return s.st.SaveToken(ctx, profile, key, nil)
	}
	return s.st.SaveToken(ctx, profile, key, &store.Token{AccessToken: t.AccessToken, TokenType: t.TokenType, RefreshToken: t.RefreshToken,
		IssuedAt: t.IssuedAt, Expiry: t.Expiry, ExtExpiry: t.ExtExpiry, RefreshAfter: t.RefreshAfter,
		Scope: t.Scope, Resource: t.Resource, IDToken: t.IDToken})
}

func (s storeTokens) LoadRefreshToken(ctx context.Context, profile string) (string, error) {
	rt, err := s.st.LoadRefreshToken(ctx, profile)
	return rt, noToken(err)
}

func (s storeTokens) SaveRefreshToken(ctx context.Context, profile, refreshToken string) error {
	return s.st.SaveRefreshToken(ctx, profile, refreshToken)
}

// noToken makes the store's not-found match oauth.ErrNoToken too, keeping
// its message.
func noToken(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return missingToken{err}
	}
	return err
}

// missingToken is a store.ErrNotFound that is also oauth.ErrNoToken.
type missingToken struct{ err error }

func (e missingToken) Error() string        { return e.err.Error() }
func (e missingToken) Unwrap() error        { return e.err }
func (e missingToken) Is(target error) bool { return target == oauth.ErrNoToken }

// AgentLedger returns st as the agent's delivery ledger (exported for the
// e2e tests that run an agent by hand).
func AgentLedger(st *store.Store) agent.Ledger { return storeLedger{st} }

// storeLedger is the store as the agent's Ledger: the store keeps the
// ledger, cursors and refusals with row types of its own (it imports
// neither agent nor mailbox), converted here field by field.
type storeLedger struct{ st *store.Store }

func (l storeLedger) MailboxCursor(ctx context.Context, mb string) (mailbox.Cursor, error) {
	c, err := l.st.MailboxCursor(ctx, mb)
	return mailbox.StoredCursor(c.Validity, c.Last), err
}

func (l storeLedger) SetMailboxCursor(ctx context.Context, mb string, c mailbox.Cursor) error {
	validity, position := c.Stored()
	return l.st.SetMailboxCursor(ctx, mb, store.Cursor{Validity: validity, Last: position})
}

func (l storeLedger) Delivered(ctx context.Context, mb string, keys []string) (map[string]agent.LedgerState, error) {
	rows, err := l.st.Delivered(ctx, mb, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string]agent.LedgerState, len(rows))
	for k, s := range rows {
		out[k] = agent.LedgerState(s)
	}
	return out, nil
}

func (l storeLedger) MarkDelivered(ctx context.Context, mb string, entries []agent.LedgerEntry) error {
	rows := make([]store.LedgerEntry, len(entries))
	for i, e := range entries {
		rows[i] = store.LedgerEntry{Key: e.Key, UID: e.UID, MessageID: e.MessageID, Size: e.Size, Date: e.Date, SinkRef: e.SinkRef,
			State: store.LedgerState(e.State), DeliveredAt: e.DeliveredAt, AckedAt: e.AckedAt}
	}
	return l.st.MarkDelivered(ctx, mb, rows)
}

func (l storeLedger) MarkAcked(ctx context.Context, mb string, keys []string) error {
	return l.st.MarkAcked(ctx, mb, keys)
}

func ledgerEntry(r store.LedgerEntry) agent.LedgerEntry {
	return agent.LedgerEntry{Key: r.Key, UID: r.UID, MessageID: r.MessageID, Size: r.Size, Date: r.Date, SinkRef: r.SinkRef,
		State: agent.LedgerState(r.State), DeliveredAt: r.DeliveredAt, AckedAt: r.AckedAt}
}

func (l storeLedger) Unacked(ctx context.Context, mb string) ([]agent.LedgerEntry, error) {
	rows, err := l.st.Unacked(ctx, mb)
	if err != nil {
		return nil, err
	}
	out := make([]agent.LedgerEntry, len(rows))
	for i, r := range rows {
		out[i] = ledgerEntry(r)
	}
	return out, nil
}

func (l storeLedger) FindByIdentity(ctx context.Context, mb, messageID string, size int64, date time.Time) (*agent.LedgerEntry, error) {
	r, err := l.st.FindByIdentity(ctx, mb, messageID, size, date)
	if r == nil || err != nil {
		return nil, err
	}
	e := ledgerEntry(*r)
	return &e, nil
}

func (l storeLedger) Rekey(ctx context.Context, mb, oldKey, newKey, newUID string) error {
	return l.st.Rekey(ctx, mb, oldKey, newKey, newUID)
}

func (l storeLedger) HeldKeys(ctx context.Context, mb string) (map[string]agent.HeldMessage, error) {
	rows, err := l.st.HeldKeys(ctx, mb)
	if err != nil {
		return nil, err
	}
	out := make(map[string]agent.HeldMessage, len(rows))
	for k, h := range rows {
		out[k] = agent.HeldMessage{Mailbox: h.Mailbox, Key: h.Key, UID: h.UID, MessageID: h.MessageID, Subject: h.Subject, From: h.From,
			Size: h.Size, Date: h.Date, State: agent.HeldState(h.State), Permanent: h.Permanent, Reason: h.Reason,
			Attempts: h.Attempts, FirstAt: h.FirstAt, LastAt: h.LastAt, NextAt: h.NextAt}
	}
	return out, nil
}

func (l storeLedger) PutHeld(ctx context.Context, mb string, hs []agent.HeldMessage) error {
	rows := make([]store.HeldMessage, len(hs))
	for i, h := range hs {
		rows[i] = store.HeldMessage{Mailbox: h.Mailbox, Key: h.Key, UID: h.UID, MessageID: h.MessageID, Subject: h.Subject, From: h.From,
			Size: h.Size, Date: h.Date, State: store.HeldState(h.State), Permanent: h.Permanent, Reason: h.Reason,
			Attempts: h.Attempts, FirstAt: h.FirstAt, LastAt: h.LastAt, NextAt: h.NextAt}
	}
	return l.st.PutHeld(ctx, mb, rows)
}

func (l storeLedger) RekeyHeld(ctx context.Context, mb, oldKey, newKey, newUID string) error {
	return l.st.RekeyHeld(ctx, mb, oldKey, newKey, newUID)
}

func (l storeLedger) ForgetHeld(ctx context.Context, mb string, keys []string) error {
	return l.st.ForgetHeld(ctx, mb, keys)
}
