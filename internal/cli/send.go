package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/mailgate/mailgate/internal/app"
	"github.com/mailgate/mailgate/internal/smtp"
)

func init() {
	register(&command{
		name:    "send",
		summary: "send messages (files or stdin) through a configured sender",
		run:     runSend,
	})
}

// addrList collects repeated --to values (comma-separated allowed).
type addrList []string

func (a *addrList) String() string { return strings.Join(*a, ",") }
func (a *addrList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*a = append(*a, s)
		}
	}
	return nil
}

// runSend submits each FILE (or stdin) over one connection: recipients
// from --to, else from the message's To, Cc and Bcc (like sendmail -t, the
// Bcc header is removed); the envelope sender from --from, else the From
// header, else the sender's username. allowed_from is enforced before
// anything is sent.
func runSend(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "send", "[FILE...]")
	cfgFlag := fs.String("config", "", "config file (default $MAILGATE_CONFIG, then ./mailgate.yaml)")
	senderName := fs.String("sender", "", "the configured sender to use (required)")
	from := fs.String("from", "", "envelope sender (default: the message's From)")
	var to addrList
	fs.Var(&to, "to", "recipient (repeatable; default: the message's To, Cc and Bcc)")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if *senderName == "" {
		fmt.Fprintln(env.Err, "usage: mailgate send --sender NAME [--to ADDR]... [--from ADDR] [FILE...]")
		return ExitUsage
	}
	a, code, ok := openApp(ctx, env, "send", configPath(env, *cfgFlag))
	if !ok {
		return code
	}
	defer closeApp(a)
	cfg := a.Config() // with the console's records
	snd, ok := cfg.Sender(*senderName)
	if !ok {
		fmt.Fprintf(env.Err, "mailgate: send: no sender %q in %s\n", *senderName, cfg.File)
		return ExitUsage
	}
	if snd.Protocol != "smtp" && snd.Protocol != "graph" && snd.Protocol != "" {
		fmt.Fprintf(env.Err, "mailgate: send: sender %s: unknown protocol %s\n", snd.Name, snd.Protocol)
		return ExitUsage
	}
	// read and check every message before sending any
	var msgs []*app.Prepared
	inputs := pos
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	for _, in := range inputs {
		var raw []byte
		var err error
		if in == "-" {
			raw, err = io.ReadAll(env.In)
		} else {
			raw, err = os.ReadFile(in)
		}
		if err != nil {
			fmt.Fprintf(env.Err, "mailgate: send: %v\n", err)
			return ExitUsage
		}
		m, err := app.Prepare(raw, *from, to, snd)
		if err != nil {
			fmt.Fprintf(env.Err, "mailgate: send: %s: %v; nothing was sent\n", in, err)
			return ExitFailed
		}
		m.Name = in
		msgs = append(msgs, m)
	}
	for _, m := range msgs {
		if snd.Protocol != "graph" {
			break
		}
		// Graph's MIME sendMail takes the recipients from the headers
		var err error
		if m.Raw, err = app.GraphRecipients(m.Raw, to); err != nil {
			fmt.Fprintf(env.Err, "mailgate: send: %s: %v\n", m.Name, err)
			return ExitUsage
		}
	}
	// a running `mailgate serve` on the same store sends from the outbox:
	// queue, and succeed once the messages are durable
	if running, err := a.ServeRunning(ctx); err == nil && running {
		if err := a.Enqueue(ctx, snd, msgs, func(m *app.Prepared, id int64) {
			fmt.Fprintf(env.Err, "%s: queued as %d (mailgate serve sends it)\n", m.Name, id)
		}); err != nil {
			fmt.Fprintf(env.Err, "mailgate: send: %v\n", err)
			return ExitFailed
		}
		return ExitOK
	}
	failed := 0
	err := a.Send(ctx, snd, msgs, func(m *app.Prepared, done string, err error) {
		if err != nil {
			printSendError(env, m.Name, err)
			failed++
			return
		}
		fmt.Fprintf(env.Err, "%s: %s\n", m.Name, done)
	})
	var te *app.TokenError
	var se *smtp.Error
	switch {
	case app.IsKeyError(err):
		fmt.Fprintf(env.Err, "%s: %v\n", cfg.File, err)
		return ExitUsage
	case errors.As(err, &te):
		printOAuthError(env.Err, "send", te.Profile, te.Err)
		return ExitFailed
	case errors.As(err, &se) && se.Step == "auth":
		printSendError(env, "AUTH as "+snd.Username, err)
		return ExitFailed
	case err != nil:
		fmt.Fprintf(env.Err, "mailgate: send: %s: %v\n", net.JoinHostPort(snd.Host, strconv.Itoa(snd.Port)), err)
		return ExitFailed
	case failed > 0:
		return ExitFailed
	}
	return ExitOK
}

// printSendError says which send failed and why, then what to change.
func printSendError(env *Env, what string, err error) {
	fmt.Fprintf(env.Err, "mailgate: send: %s: %v\n", what, err)
	for _, l := range app.SenderAdvice(err) {
		fmt.Fprintf(env.Err, "  %s\n", l)
	}
}
