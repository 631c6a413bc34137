package app

import (
	"context"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/graph"
	"github.com/mailgate/mailgate/internal/oauth"
	"github.com/mailgate/mailgate/internal/smtp"
)

// TokenError is a failure to get the access token a sender logs in with
// (the token endpoint's, not the mail server's refusal).
type TokenError struct {
	Profile *oauth.Profile
	Err     error
}

func (e *TokenError) Error() string { return e.Err.Error() }
func (e *TokenError) Unwrap() error { return e.Err }

// DialSMTP connects to an SMTP sender and logs in with a current token, as
// the outbox worker does: a *KeyError for a sender that cannot be built, a
// *TokenError when there is no token, else the *smtp.Error of the step
// that failed.
func (a *App) DialSMTP(ctx context.Context, snd *config.Sender) (*smtp.Client, error) {
	s, err := a.rt.outboxSender(snd)
	if err != nil {
		return nil, &KeyError{Key: "senders[" + snd.Name + "]", Err: err}
	}
	return s.Dial(ctx)
}

// GraphSender is a Graph sender's client bound to its mailbox; a
// *KeyError when it cannot be built.
func (a *App) GraphSender(snd *config.Sender) (*graph.Sender, error) {
	gs, err := a.rt.graphSender(snd, a.log)
	if err != nil {
		return nil, &KeyError{Key: "senders[" + snd.Name + "]", Err: err}
	}
	return gs, nil
}

// ServeRunning says whether a `mailgate serve` on the same store sends
// from the outbox (its heartbeat is recent).
func (a *App) ServeRunning(ctx context.Context) (bool, error) {
	return a.st.ServeRunning(ctx, heartbeatMaxAge)
}
