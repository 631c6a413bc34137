package agent

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestLoginsShared: one Logins paces a host across every supervisor that
// shares it (serve runs one supervisor per mailbox), and hosts apart.
func TestLoginsShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLogins(2) // bursts of 2, then one every 500 ms
		a := &Supervisor{Logins: l}
		b := &Supervisor{Logins: l}
		start := time.Now()
		for _, s := range []*Supervisor{a, b, a, b} {
			if !s.login(nil, "imap.example") {
				t.Fatal("login refused without a stop")
			}
		}
		if got := time.Since(start); got != time.Second {
			t.Errorf("4 logins to one host through two supervisors took %v, want 1s (the rate is shared)", got)
		}
		other := time.Now()
		a.login(nil, "pop.example")
		if got := time.Since(other); got != 0 {
			t.Errorf("another host waited %v", got)
		}
	})
}
