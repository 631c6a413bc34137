package agent

import (
	"testing"
	"time"
)

func TestHeldSetAside(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		h    HeldMessage
		want bool
	}{
		{HeldMessage{State: HeldRefused}, true},
		{HeldMessage{State: HeldDropped}, true},
		{HeldMessage{State: HeldDeferred, NextAt: now.Add(time.Second)}, true},
		{HeldMessage{State: HeldDeferred, NextAt: now}, false},
		{HeldMessage{State: HeldRetry}, false},
		{HeldMessage{State: HeldFailing}, false},
	} {
		if got := c.h.SetAside(now); got != c.want {
			t.Errorf("%s next %v: %v, want %v", c.h.State, c.h.NextAt, got, c.want)
		}
	}
}
