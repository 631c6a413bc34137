package store

import (
	"reflect"
	"testing"
	"time"
)

// TestProxyLogins: an account's last login survives closing and opening
// the store again, a later one replaces it, an earlier one (another
// instance's, late) does not, and the advice keeps its lines.
func TestProxyLogins(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		key := newKey(t)
		s := mustOpen(t, dsn, key)
		ctx := t.Context()
		at := time.UnixMilli(time.Now().UnixMilli())
		refused := ProxyLogin{Account: "scanner", Listener: "legacy-smtp", Remote: "192.0.2.7:40000", Result: "upstream", At: at,
			Advice: []string{"fix: grant SMTP.SendAsApp", "Set-CASMailbox -SmtpClientAuthenticationDisabled $false"}}
		ok := ProxyLogin{Account: "fax", Listener: "legacy-imap", Remote: "127.0.0.1:5000", Result: "ok", At: at}
		for _, l := range []ProxyLogin{refused, ok} {
			if err := s.RecordProxyLogin(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		// a late write of an older login changes nothing
		older := ok
		older.At, older.Result = at.Add(-time.Minute), "bad_password"
		if err := s.RecordProxyLogin(ctx, older); err != nil {
			t.Fatal(err)
		}
		s.Close()

		s = mustOpen(t, dsn, key)
		got, err := s.ProxyLogins(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := []ProxyLogin{ok, refused}; !reflect.DeepEqual(got, want) {
			t.Fatalf("after reopening:\n got %+v\nwant %+v", got, want)
		}
		later := refused
		later.At, later.Result, later.Advice = at.Add(time.Second), "ok", nil
		if err := s.RecordProxyLogin(ctx, later); err != nil {
			t.Fatal(err)
		}
		got, err = s.ProxyLogins(ctx)
		if err != nil || len(got) != 2 || !reflect.DeepEqual(got[1], later) {
			t.Fatalf("after a later login: %+v, %v", got, err)
		}
	})
}
