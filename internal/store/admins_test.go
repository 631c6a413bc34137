package store

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestAdmins(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn, newKey(t))
		{
			ctx := t.Context()
			if err := s.SetAdmin(ctx, "ops", "short"); err == nil {
				t.Error("accepted a 5-character password")
			}
			if err := s.SetAdmin(ctx, "ops", "correct horse battery"); err != nil {
				t.Fatal(err)
			}
			if n, _ := s.CountAdmins(ctx); n != 1 {
				t.Errorf("%d admins", n)
			}
			if err := s.CheckAdmin(ctx, "ops", "correct horse battery"); err != nil {
				t.Error(err)
			}
			for _, bad := range [][2]string{{"ops", "wrong password!"}, {"nobody", "correct horse battery"}} {
				if err := s.CheckAdmin(ctx, bad[0], bad[1]); !errors.Is(err, ErrBadLogin) {
					t.Errorf("%v: %v", bad, err)
				}
			}
			sid, err := s.NewSession(ctx, "ops", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if a, _ := s.SessionAdmin(ctx, sid); a != "ops" {
				t.Errorf("session admin %q", a)
			}
			expired, _ := s.NewSession(ctx, "ops", -time.Second)
			if a, _ := s.SessionAdmin(ctx, expired); a != "" {
				t.Error("an expired session is live")
			}
			tok, err := s.NewAPIToken(ctx, "ops")
			if err != nil {
				t.Fatal(err)
			}
			if a, _ := s.APITokenAdmin(ctx, tok); a != "ops" {
				t.Errorf("token admin %q", a)
			}
			if a, _ := s.APITokenAdmin(ctx, tok+"x"); a != "" {
				t.Error("a wrong token is accepted")
			}
			if _, err := s.NewAPIToken(ctx, "nobody"); err == nil {
				t.Error("token for a missing admin")
			}
			// a new password ends sessions
			if err := s.SetAdmin(ctx, "ops", "another long password"); err != nil {
				t.Fatal(err)
			}
			if a, _ := s.SessionAdmin(ctx, sid); a != "" {
				t.Error("session survived a password change")
			}
			if err := s.EndSession(ctx, sid); err != nil {
				t.Error(err)
			}
		}
	})
}

// TestLoginThrottle: attempts are counted per (name, address) before the
// password is checked; after FreeLoginFailures the delay doubles from 1 s;
// another address is not delayed; concurrent attempts cannot all pass;
// success and UnlockAdmin forget the count.
func TestLoginThrottle(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn, newKey(t))
		ctx := t.Context()
		if err := s.SetAdmin(ctx, "ops", "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
		for i := range FreeLoginFailures {
			if err := s.BeginLogin(ctx, "ops", "192.0.2.1", now); err != nil {
				t.Fatalf("attempt %d: %v", i+1, err)
			}
		}
		var te *ThrottledError
		if err := s.BeginLogin(ctx, "ops", "192.0.2.1", now); !errors.As(err, &te) || te.Wait != time.Second {
			t.Fatalf("attempt %d: %v, want a 1 s wait", FreeLoginFailures+1, err)
		}
		if err := s.BeginLogin(ctx, "ops", "127.0.0.1", now); err != nil {
			t.Errorf("another address is delayed: %v", err)
		}
		// the delay doubles with each counted attempt
		at := now
		for _, want := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second} {
			at = at.Add(time.Hour)
			if err := s.BeginLogin(ctx, "ops", "192.0.2.1", at); err != nil {
				t.Fatalf("after the delay: %v", err)
			}
			if err := s.BeginLogin(ctx, "ops", "192.0.2.1", at); !errors.As(err, &te) || te.Wait != want {
				t.Fatalf("next wait: %v, want %s", err, want)
			}
		}
		admins, err := s.Admins(ctx, at)
		if err != nil || len(admins) != 1 || admins[0].ThrottledAddresses != 1 || !admins[0].ThrottledUntil.Equal(at.Add(8*time.Second)) {
			t.Errorf("admins: %+v %v", admins, err)
		}
		if n, err := s.UnlockAdmin(ctx, "ops"); err != nil || n != 2 {
			t.Errorf("unlock: %d %v", n, err)
		}
		if err := s.BeginLogin(ctx, "ops", "192.0.2.1", at); err != nil {
			t.Errorf("after unlock: %v", err)
		}
		if _, err := s.UnlockAdmin(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unlock nobody: %v", err)
		}
		// concurrent attempts: only the free ones are let through
		var passed atomic.Int32
		var wg sync.WaitGroup
		for range 30 {
			wg.Go(func() {
				if err := s.BeginLogin(ctx, "mallory", "198.51.100.7", now); err == nil {
					passed.Add(1)
				} else if !errors.As(err, new(*ThrottledError)) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if passed.Load() != FreeLoginFailures {
			t.Errorf("%d of 30 concurrent attempts passed, want %d", passed.Load(), FreeLoginFailures)
		}
		// one address trying many names is slowed across them
		spray := 0
		for i := range AddressFreeLoginFailures + 5 {
			if err := s.BeginLogin(ctx, fmt.Sprintf("user%d", i), "203.0.113.5", now); err == nil {
				spray++
			} else if !errors.As(err, new(*ThrottledError)) {
				t.Fatal(err)
			}
		}
		if spray != AddressFreeLoginFailures {
			t.Errorf("%d names tried from one address at once, want %d", spray, AddressFreeLoginFailures)
		}
		if err := s.BeginLogin(ctx, "ops", "203.0.113.5", now); !errors.As(err, new(*ThrottledError)) {
			t.Errorf("ops from the spraying address: %v", err)
		}
		if _, err := s.UnlockAdmin(ctx, "ops"); err != nil {
			t.Fatal(err)
		}
		if err := s.BeginLogin(ctx, "ops", "203.0.113.5", now); err != nil {
			t.Errorf("ops from the spraying address after unlock: %v", err)
		}
		if err := s.BeginLogin(ctx, "", "203.0.113.6", now); err == nil {
			t.Error("an empty name is counted")
		}
		// success forgets the address's count and records the sign-in
		if err := s.LoginSucceeded(ctx, "ops", "192.0.2.1", at); err != nil {
			t.Fatal(err)
		}
		admins, _ = s.Admins(ctx, at)
		if len(admins) != 1 || !admins[0].LastLogin.Equal(at) || admins[0].ThrottledAddresses != 0 {
			t.Errorf("after success: %+v", admins)
		}
	})
}

// TestAPITokensAndRemoval: tokens are listed without their value, revoked by
// id, refused after their expiry; removing an administrator removes its
// sessions and tokens.
func TestAPITokensAndRemoval(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn, newKey(t))
		ctx := t.Context()
		for _, n := range []string{"ops", "dev"} {
			if err := s.SetAdmin(ctx, n, "correct horse battery"); err != nil {
				t.Fatal(err)
			}
		}
		a, _ := s.NewAPIToken(ctx, "ops")
		b, _ := s.NewAPITokenUntil(ctx, "ops", time.Now().Add(time.Hour))
		expired, _ := s.NewAPITokenUntil(ctx, "ops", time.Now().Add(-time.Second))
		d, _ := s.NewAPIToken(ctx, "dev")
		if who, _ := s.APITokenAdmin(ctx, b); who != "ops" {
			t.Errorf("unexpired token: %q", who)
		}
		if who, _ := s.APITokenAdmin(ctx, expired); who != "" {
			t.Errorf("an expired token is accepted for %q", who)
		}
		toks, err := s.APITokens(ctx, "ops")
		if err != nil || len(toks) != 3 {
			t.Fatalf("ops tokens: %+v %v", toks, err)
		}
		for _, tk := range toks {
			if len(tk.ID) != 12 || strings.Contains(a+b+expired, tk.ID) || tk.Created.IsZero() {
				t.Errorf("token %+v", tk)
			}
		}
		if !toks[1].Expires.After(time.Now()) || !toks[2].Expired(time.Now()) || !toks[0].Expires.IsZero() || toks[1].LastUsed.IsZero() {
			t.Errorf("token times: %+v", toks)
		}
		if all, _ := s.APITokens(ctx, ""); len(all) != 4 {
			t.Errorf("all tokens: %d", len(all))
		}
		if err := s.RevokeAPIToken(ctx, toks[0].ID); err != nil {
			t.Fatal(err)
		}
		if who, _ := s.APITokenAdmin(ctx, a); who != "" {
			t.Error("a revoked token is accepted")
		}
		for _, id := range []string{toks[0].ID, "zz", "%"} {
			if err := s.RevokeAPIToken(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("revoke %q: %v", id, err)
			}
		}
		if n, err := s.RevokeAPITokens(ctx, "ops"); err != nil || n != 2 {
			t.Errorf("revoke ops's tokens: %d %v", n, err)
		}
		sid, _ := s.NewSession(ctx, "dev", time.Hour)
		if err := s.RemoveAdmin(ctx, "dev"); err != nil {
			t.Fatal(err)
		}
		if who, _ := s.APITokenAdmin(ctx, d); who != "" {
			t.Error("a removed administrator's token is accepted")
		}
		if who, _ := s.SessionAdmin(ctx, sid); who != "" {
			t.Error("a removed administrator's session lives on")
		}
		if err := s.RemoveAdmin(ctx, "dev"); !errors.Is(err, ErrNotFound) {
			t.Errorf("remove twice: %v", err)
		}
		if admins, _ := s.Admins(ctx, time.Now()); len(admins) != 1 || admins[0].Name != "ops" || admins[0].Tokens != 0 {
			t.Errorf("admins: %+v", admins)
		}
	})
}
