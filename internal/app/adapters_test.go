package app

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/agent"
	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/mailbox"
	"github.com/mailgate/mailgate/internal/oauth"
	"github.com/mailgate/mailgate/internal/store"
)

func adapterStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "a.db"), &store.Options{Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// fillFields sets every exported field of the struct v points to a value
// of its own (strings name the field, numbers and times differ per field),
// so that a field an adapter forgets to copy comes back zero.
func fillFields(v any) {
	rv := reflect.ValueOf(v).Elem()
	base := time.Date(2026, 12, 7, 1, 2, 3, 456789000, time.UTC)
	for i := range rv.NumField() {
		f := rv.Field(i)
		switch {
		case f.Type() == reflect.TypeFor[time.Time]():
			f.Set(reflect.ValueOf(base.Add(time.Duration(i+1) * time.Hour)))
		case f.Kind() == reflect.String:
			f.SetString(rv.Type().Field(i).Name + "-value")
		case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
			f.SetInt(int64(i + 1))
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		default:
			panic("fillFields: add a case for " + f.Type().String())
		}
	}
}

// differingFields names the fields of two structs of one type that differ
// (times compared with Equal), leaving out skip.
func differingFields(a, b any, skip ...string) []string {
	ra, rb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := range ra.NumField() {
		name := ra.Type().Field(i).Name
		if strings.Contains(" "+strings.Join(skip, " ")+" ", " "+name+" ") {
			continue
		}
		fa, fb := ra.Field(i).Interface(), rb.Field(i).Interface()
		if ta, ok := fa.(time.Time); ok {
			if !ta.Equal(fb.(time.Time)) {
				out = append(out, name)
			}
			continue
		}
		if fa != fb {
			out = append(out, name)
		}
	}
	return out
}

// TestTokenStoreKeepsEveryField: every field of an oauth.Token survives
// the store through the adapter, and nothing stored is oauth.ErrNoToken
// (the Manager's cache miss) as well as store.ErrNotFound.
func TestTokenStoreKeepsEveryField(t *testing.T) {
	st := adapterStore(t)
	ts := TokenStore(st)
	for _, err := range []error{
		func() error { _, err := ts.LoadToken(t.Context(), "p", "mail"); return err }(),
		func() error { _, err := ts.LoadRefreshToken(t.Context(), "p"); return err }(),
	} {
		if !errors.Is(err, oauth.ErrNoToken) || !errors.Is(err, store.ErrNotFound) || !strings.HasPrefix(err.Error(), "store: ") {
			t.Fatalf("nothing stored: %v, want oauth.ErrNoToken and store.ErrNotFound", err)
		}
	}
	var tok oauth.Token
	fillFields(&tok)
	if err := ts.SaveToken(t.Context(), "p", "mail", &tok); err != nil {
		t.Fatal(err)
	}
	got, err := ts.LoadToken(t.Context(), "p", "mail")
	if err != nil {
		t.Fatal(err)
	}
	if d := differingFields(tok, *got); len(d) != 0 {
		t.Errorf("fields lost between oauth.Token and the store: %v", d)
	}
	if err := ts.SaveRefreshToken(t.Context(), "p", "rt-1"); err != nil {
		t.Fatal(err)
	}
	if rt, err := ts.LoadRefreshToken(t.Context(), "p"); rt != "rt-1" || err != nil {
		t.Errorf("refresh token %q, %v", rt, err)
	}
}

// TestAgentLedgerKeepsEveryField: every field the agent gives the ledger
// (entries, refusals, cursors) comes back through the adapter.
func TestAgentLedgerKeepsEveryField(t *testing.T) {
	ctx := t.Context()
	l := AgentLedger(adapterStore(t))

	// an IMAP cursor keeps Validity and Last, a Graph one its DeltaLink
	// (stored where Last goes, as older versions did)
	for name, c := range map[string]mailbox.Cursor{
		"mb":    {Validity: "1234", Last: "17"},
		"graph": {Validity: mailbox.GraphValidity, DeltaLink: "https://graph.example/delta?token=1"},
	} {
		if err := l.SetMailboxCursor(ctx, name, c); err != nil {
			t.Fatal(err)
		}
		if got, err := l.MailboxCursor(ctx, name); err != nil || got != c {
			t.Errorf("cursor %+v, %v; want %+v", got, err, c)
		}
	}

	var e agent.LedgerEntry
	fillFields(&e)
	if err := l.MarkDelivered(ctx, "mb", []agent.LedgerEntry{e}); err != nil {
		t.Fatal(err)
	}
	// the store decides the state and its times
	un, err := l.Unacked(ctx, "mb")
	if err != nil || len(un) != 1 {
		t.Fatalf("unacked %+v, %v", un, err)
	}
	if d := differingFields(e, un[0], "State", "DeliveredAt", "AckedAt"); len(d) != 0 || un[0].State != agent.LedgerDelivered {
		t.Errorf("entry fields lost: %v (state %v)", d, un[0].State)
	}
	found, err := l.FindByIdentity(ctx, "mb", e.MessageID, e.Size, e.Date)
	if err != nil || found == nil || found.Key != e.Key {
		t.Fatalf("FindByIdentity: %+v, %v", found, err)
	}
	if none, err := l.FindByIdentity(ctx, "mb", "<other@x>", 1, time.Time{}); none != nil || err != nil {
		t.Errorf("FindByIdentity of nothing: %+v, %v", none, err)
	}
	if err := l.MarkAcked(ctx, "mb", []string{e.Key}); err != nil {
		t.Fatal(err)
	}
	if states, err := l.Delivered(ctx, "mb", []string{e.Key, "other"}); err != nil || len(states) != 1 || states[e.Key] != agent.LedgerAcked {
		t.Errorf("states %v, %v", states, err)
	}

	var h agent.HeldMessage
	fillFields(&h)
	h.Mailbox, h.Key, h.State = "mb", "mb/imap/1/9", agent.HeldDeferred
	if err := l.PutHeld(ctx, "mb", []agent.HeldMessage{h}); err != nil {
		t.Fatal(err)
	}
	held, err := l.HeldKeys(ctx, "mb")
	if err != nil || len(held) != 1 {
		t.Fatalf("held %+v, %v", held, err)
	}
	if d := differingFields(h, held[h.Key]); len(d) != 0 {
		t.Errorf("refusal fields lost: %v", d)
	}
}

// TestManagerUsesStore runs oauth.Manager's persistence through the
// store: what one Manager accepted, a second Manager (another process)
// serves from the store without asking the token endpoint.
func TestManagerUsesStore(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "m.db")
	key := make([]byte, 32)
	p := &oauth.Profile{
		Name: "work", Provider: oauth.ProviderMicrosoft, Grant: oauth.GrantAuthorizationCode,
		Tenant: "contoso.example", ClientID: "00000000-0000-0000-0000-000000000001",
		Scopes: []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"},
		// Unroutable: a request to it would fail the test.
		TokenURL: "https://127.0.0.1:1/token",
	}
	now := time.Now()
	tok := &oauth.Token{AccessToken: "at-accepted", TokenType: "Bearer", RefreshToken: "rt-accepted",
		IssuedAt: now, Expiry: now.Add(time.Hour)}

	s1 := openAt(t, dsn, key)
	if err := oauth.NewManager(TokenStore(s1), nil).Accept(t.Context(), p, nil, tok); err != nil {
		t.Fatalf("Accept: %v", err)
	}
	s1.Close()

	s2 := openAt(t, dsn, key)
	got, err := oauth.NewManager(TokenStore(s2), nil).Token(t.Context(), p, nil)
	if err != nil {
		t.Fatalf("Token from the store: %v", err)
	}
	if got.AccessToken != "at-accepted" || !got.Expiry.Equal(tok.Expiry) {
		t.Fatalf("Token = %v, want the accepted one", got)
	}
	// The Manager stores the refresh token behind its binding to the
	// profile's client, tenant and endpoint (oauth/binding.go).
	if rt, err := s2.LoadRefreshToken(t.Context(), "work"); err != nil || !strings.HasSuffix(rt, ":rt-accepted") {
		t.Fatalf("refresh token %q, %v", rt, err)
	}
}

func openAt(t *testing.T, dsn string, key []byte) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), dsn, &store.Options{Key: key})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openAppFile writes file as dir/mailgate.yaml, loads it and opens an App
// on a fresh SQLite store in dir; both are closed when the test ends.
func openAppFile(t *testing.T, dir, file string) *App {
	t.Helper()
	path := filepath.Join(dir, "mailgate.yaml")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	st := openAt(t, "sqlite:"+filepath.Join(dir, "db"), make([]byte, 32))
	a, err := Open(t.Context(), cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}
