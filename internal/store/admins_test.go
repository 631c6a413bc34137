package store

import (
	"errors"
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
