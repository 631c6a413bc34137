package app

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/graph"
	"github.com/mailgate/mailgate/internal/oauth"
	"github.com/mailgate/mailgate/internal/smtp"
	"github.com/mailgate/mailgate/internal/store"
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
// from the outbox: an instance beat within the lease, as the leaser does
// every third of it.
func (a *App) ServeRunning(ctx context.Context) (bool, error) {
	return a.st.ServeRunning(ctx, leaseTTL(a.file))
}

// Send sends msgs through sender snd over one connection (SMTP) or one
// client (Graph), as `mailgate send` does when no serve runs: sent hears
// of each message, with what was done ("sent from A to B", "sent through
// Graph (sendMail) as A to B") or its error. The error is the sender's,
// before any message: a *KeyError, a *TokenError, or the server's (an
// *smtp.Error of the step that failed).
func (a *App) Send(ctx context.Context, snd *config.Sender, msgs []*Prepared, sent func(m *Prepared, done string, err error)) error {
	if snd.Protocol == "graph" {
		gs, err := a.GraphSender(snd)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			how := "sendMail"
			if len(m.Raw) > graph.DirectLimit {
				how = "a draft with uploaded attachments"
			}
			sent(m, fmt.Sprintf("sent through Graph (%s) as %s to %s", how, snd.Username, strings.Join(m.Rcpts, ", ")), gs.Send(ctx, m.Raw))
		}
		return nil
	}
	c, err := a.DialSMTP(ctx, snd)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, m := range msgs {
		sent(m, fmt.Sprintf("sent from %s to %s", m.From, strings.Join(m.Rcpts, ", ")), c.Send(m.From, m.Rcpts, bytes.NewReader(m.Raw)))
	}
	_ = c.Quit()
	return nil
}

// enqueueChunk bounds one queueing transaction: this many messages or
// this many bytes, whichever comes first.
const (
	enqueueChunk      = 100
	enqueueChunkBytes = 16 << 20
)

// Enqueue queues prepared messages in snd's outbox for a running serve,
// a transaction per chunk of them (one durable commit, one wake, instead
// of one per message); queued is told each message's id once its chunk is
// durable. It stops at the first failure.
func (a *App) Enqueue(ctx context.Context, snd *config.Sender, msgs []*Prepared, queued func(m *Prepared, id int64)) error {
	for len(msgs) > 0 {
		n, size := 0, 0
		for n < len(msgs) && n < enqueueChunk && (n == 0 || size+len(msgs[n].Raw) <= enqueueChunkBytes) {
			size += len(msgs[n].Raw)
			n++
		}
		batch := make([]store.NewOutboxMessage, n)
		for i, m := range msgs[:n] {
			batch[i] = store.NewOutboxMessage{Sender: snd.Name, From: m.From, Rcpts: m.Rcpts, Raw: m.Raw}
		}
		ids, err := a.st.EnqueueAll(ctx, batch)
		if err != nil {
			return fmt.Errorf("%s…: %w", msgs[0].Name, err)
		}
		for i, m := range msgs[:n] {
			queued(m, ids[i])
		}
		msgs = msgs[n:]
	}
	return nil
}
