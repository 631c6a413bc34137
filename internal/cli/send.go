package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/graph"
	"github.com/mailgate/mailgate/internal/sasl"
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
	rt, code, ok := loadRuntime(ctx, env, "send", configPath(env, *cfgFlag), logger(env.Err, false))
	if !ok {
		return code
	}
	defer rt.close()
	cfg := rt.cfg // with the console's records
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
	var msgs []outgoing
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
		o, err := prepare(raw, *from, to, snd)
		if err != nil {
			fmt.Fprintf(env.Err, "mailgate: send: %s: %v; nothing was sent\n", in, err)
			return ExitFailed
		}
		msgs = append(msgs, outgoing{name: in, from: o.from, rcpts: o.rcpts, raw: o.raw})
	}
	if snd.Protocol == "graph" {
		// Graph's MIME sendMail takes the recipients from the headers
		for i := range msgs {
			raw, err := graphRecipients(msgs[i].raw, to)
			if err != nil {
				fmt.Fprintf(env.Err, "mailgate: send: %s: %v\n", msgs[i].name, err)
				return ExitUsage
			}
			msgs[i].raw = raw
		}
	}
	// a running `mailgate serve` on the same store sends from the outbox:
	// queue, and succeed once the messages are durable
	if running, err := rt.store.ServeRunning(ctx, heartbeatMaxAge); err == nil && running {
		for _, m := range msgs {
			id, err := rt.store.Enqueue(ctx, snd.Name, m.from, m.rcpts, m.raw)
			if err != nil {
				fmt.Fprintf(env.Err, "mailgate: send: %s: %v\n", m.name, err)
				return ExitFailed
			}
			fmt.Fprintf(env.Err, "%s: queued as %d (mailgate serve sends it)\n", m.name, id)
		}
		return ExitOK
	}
	if snd.Protocol == "graph" {
		return sendGraph(ctx, env, rt, cfg, snd, msgs)
	}
	p, ok := rt.profiles[snd.Profile]
	if !ok {
		fmt.Fprintf(env.Err, "%s: senders[%s].profile: %q is not defined\n", cfg.File, snd.Name, snd.Profile)
		return ExitUsage
	}
	tok, err := rt.mgr.Token(ctx, p, nil)
	if err != nil {
		printOAuthError(env.Err, "send", p, err)
		return ExitFailed
	}
	tc, err := tlsConfig(snd.Host, snd.TLSCA)
	if err != nil {
		fmt.Fprintf(env.Err, "%s: senders[%s]: %v\n", cfg.File, snd.Name, err)
		return ExitUsage
	}
	addr := net.JoinHostPort(snd.Host, strconv.Itoa(snd.Port))
	c, err := smtp.Dial(ctx, addr, &smtp.Options{Security: snd.Security, TLSConfig: tc})
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: send: %s: %v\n", addr, err)
		return ExitFailed
	}
	defer c.Close()
	var sc sasl.Client = sasl.NewXOAuth2ClientNoIR(snd.Username, tok.AccessToken)
	if strings.EqualFold(snd.SASL, "oauthbearer") {
		sc = sasl.NewOAuthBearerClientNoIR(snd.Username, tok.AccessToken, snd.Host, snd.Port)
	}
	if err := c.Authenticate(sc); err != nil {
		printSMTPError(env, "AUTH as "+snd.Username, err)
		return ExitFailed
	}
	failed := 0
	for _, m := range msgs {
		if err := c.Send(m.from, m.rcpts, bytes.NewReader(m.raw)); err != nil {
			printSMTPError(env, m.name, err)
			failed++
			continue
		}
		fmt.Fprintf(env.Err, "%s: sent from %s to %s\n", m.name, m.from, strings.Join(m.rcpts, ", "))
	}
	_ = c.Quit()
	if failed > 0 {
		return ExitFailed
	}
	return ExitOK
}

func printSMTPError(env *Env, what string, err error) {
	fmt.Fprintf(env.Err, "mailgate: send: %s: %v\n", what, err)
	var se *smtp.Error
	if errors.As(err, &se) {
		if meaning, fix := se.Explain(); meaning != "" {
			fmt.Fprintf(env.Err, "  %s\n  fix: %s\n", meaning, fix)
		}
	}
}

type prepared struct {
	from  string
	rcpts []string
	raw   []byte
}

// prepare finds the envelope of a message and enforces allowed_from.
func prepare(raw []byte, from string, to []string, snd *config.Sender) (*prepared, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("not a message: %w", err)
	}
	out := &prepared{raw: raw}
	hdrFrom := ""
	if l, err := msg.Header.AddressList("From"); err == nil && len(l) > 0 {
		hdrFrom = l[0].Address
	}
	switch {
	case from != "":
		out.from = from
	case hdrFrom != "":
		out.from = hdrFrom
	default:
		out.from = snd.Username
	}
	allowed := func(a string) bool {
		if len(snd.AllowedFrom) == 0 {
			return true
		}
		return slices.ContainsFunc(snd.AllowedFrom, func(x string) bool { return strings.EqualFold(x, a) })
	}
	for _, a := range []string{out.from, hdrFrom} {
		if a != "" && !allowed(a) {
			return nil, fmt.Errorf("%s is not in senders[%s].allowed_from (%s)", a, snd.Name, strings.Join(snd.AllowedFrom, ", "))
		}
	}
	// --to wins over the headers; the message still goes through the
	// Message-ID and Bcc steps below
	out.rcpts = to
	if len(to) == 0 {
		for _, h := range []string{"To", "Cc", "Bcc"} {
			l, err := msg.Header.AddressList(h)
			if err != nil && !errors.Is(err, mail.ErrHeaderNotPresent) {
				return nil, fmt.Errorf("%s header: %w", h, err)
			}
			for _, a := range l {
				out.rcpts = append(out.rcpts, a.Address)
			}
		}
	}
	if len(out.rcpts) == 0 {
		return nil, errors.New("no recipients: give --to or To/Cc/Bcc headers")
	}
	if snd.Protocol == "graph" {
		// Graph reads Bcc from the header (Exchange removes it from the
		// copies it delivers); a Message-ID is what finds the sent copy in
		// Sent Items after a crash, so one is added when missing, as a
		// submission server would (RFC 6409 §8.3)
		if msg.Header.Get("Message-Id") == "" {
			domain := "mailgate.invalid"
			if _, d, ok := strings.Cut(out.from, "@"); ok && d != "" {
				domain = d
			}
			out.raw = append([]byte("Message-ID: <"+rand.Text()+"@"+domain+">\r\n"), raw...)
		}
		return out, nil
	}
	if msg.Header.Get("Bcc") != "" {
		out.raw = stripHeader(raw, "Bcc")
	}
	return out, nil
}

// stripHeader removes a header field (with its folded lines) from the
// header section, leaving every other byte as it was.
func stripHeader(raw []byte, name string) []byte {
	var out bytes.Buffer
	r := bufio.NewReader(bytes.NewReader(raw))
	inHeader, skipping := true, false
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			switch {
			case !inHeader:
				out.Write(line)
			case len(bytes.TrimRight(line, "\r\n")) == 0:
				inHeader = false
				out.Write(line)
			case skipping && (line[0] == ' ' || line[0] == '\t'):
			default:
				k, _, _ := bytes.Cut(line, []byte(":"))
				skipping = strings.EqualFold(strings.TrimSpace(string(k)), name)
				if !skipping {
					out.Write(line)
				}
			}
		}
		if err != nil {
			return out.Bytes()
		}
	}
}

type outgoing struct {
	name  string
	from  string
	rcpts []string
	raw   []byte
}

// sendGraph sends each message through Graph as the sender's mailbox:
// the original MIME in one sendMail, or, over graph.DirectLimit, a draft
// with its attachments uploaded (recipients come from the headers, as
// Graph takes them).
func sendGraph(ctx context.Context, env *Env, rt *runtimeT, cfg *config.Config, snd *config.Sender, msgs []outgoing) int {
	gs, err := rt.graphSender(snd, logger(env.Err, false))
	if err != nil {
		fmt.Fprintf(env.Err, "%s: senders[%s]: %v\n", cfg.File, snd.Name, err)
		return ExitUsage
	}
	failed := 0
	for _, m := range msgs {
		if err := gs.Send(ctx, m.raw); err != nil {
			fmt.Fprintf(env.Err, "mailgate: send: %s: %v\n", m.name, err)
			var ge *graph.Error
			if errors.As(err, &ge) && ge.Hint() != "" {
				fmt.Fprintf(env.Err, "  fix: %s\n", ge.Hint())
			}
			failed++
			continue
		}
		how := "sendMail"
		if len(m.raw) > graph.DirectLimit {
			how = "a draft with uploaded attachments"
		}
		fmt.Fprintf(env.Err, "%s: sent through Graph (%s) as %s to %s\n", m.name, how, snd.Username, strings.Join(m.rcpts, ", "))
	}
	if failed > 0 {
		return ExitFailed
	}
	return ExitOK
}

// graphRecipients makes --to visible to Graph, which reads recipients from
// the MIME headers: a message without To/Cc/Bcc gets a To header; one
// whose headers name other recipients is refused rather than sent
// elsewhere than asked.
func graphRecipients(raw []byte, to []string) ([]byte, error) {
	if len(to) == 0 {
		return raw, nil
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	var have []string
	for _, h := range []string{"To", "Cc", "Bcc"} {
		l, _ := msg.Header.AddressList(h)
		for _, a := range l {
			have = append(have, strings.ToLower(a.Address))
		}
	}
	if len(have) == 0 {
		return append([]byte("To: "+strings.Join(to, ", ")+"\r\n"), raw...), nil
	}
	want := make([]string, len(to))
	for i, a := range to {
		want[i] = strings.ToLower(a)
	}
	slices.Sort(have)
	slices.Sort(want)
	if !slices.Equal(have, want) {
		return nil, fmt.Errorf("a Graph sender sends to the message's To/Cc/Bcc (%s), not to --to (%s): drop --to or fix the headers",
			strings.Join(have, ", "), strings.Join(want, ", "))
	}
	return raw, nil
}
