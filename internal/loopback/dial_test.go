package loopback_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/imap"
	"github.com/mailgate/mailgate/internal/loopback"
	"github.com/mailgate/mailgate/internal/pop3"
	"github.com/mailgate/mailgate/internal/smtp"
)

// TestProtocolsDialLoopbackOnly: with security none the token would cross
// the network in clear, so each protocol's Dial refuses an address that is
// not loopback (192.0.2.1 is TEST-NET-1) before connecting.
func TestProtocolsDialLoopbackOnly(t *testing.T) {
	const timeout = 3 * time.Second
	dials := map[string]func(ctx context.Context, addr string) error{
		"imap": func(ctx context.Context, addr string) error {
			_, err := imap.Dial(ctx, addr, &imap.Options{Security: "none", Timeout: timeout})
			return err
		},
		"pop3": func(ctx context.Context, addr string) error {
			_, err := pop3.Dial(ctx, addr, &pop3.Options{Security: "none", Timeout: timeout})
			return err
		},
		"smtp": func(ctx context.Context, addr string) error {
			_, err := smtp.Dial(ctx, addr, &smtp.Options{Security: "none", Timeout: timeout})
			return err
		},
	}
	for name, dial := range dials {
		err := dial(t.Context(), "192.0.2.1:1143")
		var le *loopback.Error
		if !errors.As(err, &le) {
			t.Errorf("%s: security none to 192.0.2.1: %v, want a *loopback.Error", name, err)
		}
	}
}
