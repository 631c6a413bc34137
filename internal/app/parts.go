package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/mailgate/mailgate/internal/agent"
	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/graph"
	"github.com/mailgate/mailgate/internal/mailbox"
	"github.com/mailgate/mailgate/internal/oauth"
	"github.com/mailgate/mailgate/internal/outbox"
	"github.com/mailgate/mailgate/internal/sasl"
	"github.com/mailgate/mailgate/internal/sink"
	"github.com/mailgate/mailgate/internal/smtp"
	"github.com/mailgate/mailgate/internal/store"
)

// parts are the running parts of one configuration: the token engine,
// one oauth profile per configured name, and the sinks opened so far.
// Commands use one; serve builds one per generation.
type parts struct {
	cfg      *config.Config
	store    *store.Store
	mgr      *oauth.Manager
	profiles map[string]*oauth.Profile
	sinksMu  sync.Mutex // the console's Test opens sinks while agents run
	sinks    map[string]sink.Sink
	log      *slog.Logger
	tlsMu    sync.Mutex
	tlsByKey map[[2]string]*tls.Config // by host and tls_ca: thousands of mailboxes share one
}

// TokenManager is the token engine over the store (its oauth.Store);
// onToken, when set, observes every token endpoint request. Every Manager
// of mailgate is made here.
func TokenManager(st *store.Store, log *slog.Logger, onToken func(profile, result string, aadsts int)) *oauth.Manager {
	return oauth.NewManager(TokenStore(st), &oauth.ManagerOptions{Logger: log, OnRequest: onToken})
}

// newParts builds the parts of cfg over a store that is already open
// (serve keeps its store across configuration reloads); onToken, when set,
// observes every token endpoint request.
func newParts(st *store.Store, cfg *config.Config, log *slog.Logger, onToken func(profile, result string, aadsts int)) (*parts, error) {
	rt := &parts{cfg: cfg, store: st, mgr: TokenManager(st, log, onToken),
		profiles: map[string]*oauth.Profile{}, sinks: map[string]sink.Sink{}, log: log}
	for i := range cfg.Profiles {
		p, err := Profile(&cfg.Profiles[i], i)
		if err != nil {
			return nil, err
		}
		rt.profiles[p.Name] = p
	}
	return rt, nil
}

// closeSinks closes the sinks opened so far.
func (rt *parts) closeSinks() {
	rt.sinksMu.Lock()
	defer rt.sinksMu.Unlock()
	for name, s := range rt.sinks {
		s.Close()
		delete(rt.sinks, name)
	}
}

// sink opens a configured sink once.
func (rt *parts) sink(name string) (sink.Sink, error) {
	rt.sinksMu.Lock()
	defer rt.sinksMu.Unlock()
	if s, ok := rt.sinks[name]; ok {
		return s, nil
	}
	cs, ok := rt.cfg.Sink(name)
	if !ok {
		return nil, fmt.Errorf("sink %q is not defined", name)
	}
	s, err := newSink(rt.store, cs)
	if err != nil {
		return nil, err
	}
	rt.sinks[name] = s
	return s, nil
}

// newSink builds a configured sink (st is the store, for store sinks).
func newSink(st *store.Store, cs *config.Sink) (sink.Sink, error) {
	switch cs.Type {
	case "maildir":
		return sink.NewMaildir(sink.MaildirOptions{Path: cs.Path})
	case "webhook":
		return sink.NewWebhook(sink.WebhookOptions{URL: cs.URL, Secret: cs.Secret.Reveal(), Headers: cs.Headers, Timeout: cs.Timeout.D()})
	case "command":
		return sink.NewCommand(sink.CommandOptions{Argv: cs.Command, Timeout: cs.Timeout.D()})
	case "store":
		return sink.NewStore(st)
	}
	return nil, fmt.Errorf("sink %q: unknown type %s", cs.Name, cs.Type)
}

func tlsConfig(host, caFile string) (*tls.Config, error) {
	c := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls_ca: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("tls_ca: %s holds no PEM certificate", caFile)
		}
		c.RootCAs = pool
	}
	return c, nil
}

// tlsConfig is tlsConfig's answer for host and caFile, made once: a copy
// of the system pool with the CA per mailbox cost tens of KiB each.
func (rt *parts) tlsConfig(host, caFile string) (*tls.Config, error) {
	rt.tlsMu.Lock()
	defer rt.tlsMu.Unlock()
	key := [2]string{host, caFile}
	if c, ok := rt.tlsByKey[key]; ok {
		return c, nil
	}
	c, err := tlsConfig(host, caFile)
	if err != nil {
		return nil, err
	}
	if rt.tlsByKey == nil {
		rt.tlsByKey = map[[2]string]*tls.Config{}
	}
	rt.tlsByKey[key] = c
	return c, nil
}

// agentMailbox builds the agent's view of a configured mailbox, whole:
// what RunOnce reads and what serve's supervisor schedules (mode,
// interval, host for the per-host login rate).
func (rt *parts) agentMailbox(m *config.Mailbox) (*agent.Mailbox, error) {
	if _, ok := rt.profiles[m.Profile]; !ok {
		return nil, fmt.Errorf("profile %q is not defined", m.Profile)
	}
	s, err := rt.sink(m.Sink)
	if err != nil {
		return nil, err
	}
	after, err := mailbox.ParseAfter(m.After)
	if err != nil {
		return nil, err
	}
	d, token, err := rt.dialer(m)
	if err != nil {
		return nil, err
	}
	return &agent.Mailbox{Name: m.Name, Dialer: d, Sink: s, After: after, BatchSize: m.BatchSize, Bearer: token,
		Idle: m.Mode == "idle", Interval: m.Interval.D(), Host: m.Host}, nil
}

// dialer builds the connection side of a configured mailbox: its server
// (or Graph) and the token it logs in with.
func (rt *parts) dialer(m *config.Mailbox) (mailbox.Dialer, mailbox.Bearer, error) {
	p, ok := rt.profiles[m.Profile]
	if !ok {
		return nil, nil, fmt.Errorf("profile %q is not defined", m.Profile)
	}
	var tc *tls.Config
	if m.Protocol != "graph" {
		var err error
		if tc, err = rt.tlsConfig(m.Host, m.TLSCA); err != nil {
			return nil, nil, err
		}
	}
	p = p.ForSubject(mailboxUser(m))
	token := rt.mgr.Bearer(p, nil)
	addr := net.JoinHostPort(m.Host, strconv.Itoa(m.Port))
	switch m.Protocol {
	case "imap":
		return mailbox.NewIMAP(mailbox.IMAPOptions{Name: m.Name, Addr: addr, Security: m.Security, TLSConfig: tc,
			Username: m.Username, Mechanism: m.SASL, Bearer: token, Folder: m.Folder, BatchSize: m.BatchSize, Logger: rt.log}), token, nil
	case "graph":
		gc := graph.New(graph.Options{Endpoint: m.Endpoint, HTTPClient: p.HTTPClient, Bearer: token})
		return mailbox.NewGraph(mailbox.GraphOptions{Name: m.Name, Client: gc, Username: m.Username, Folder: m.Folder, Logger: rt.log}), token, nil
	case "pop3":
		return mailbox.NewPOP3(mailbox.POP3Options{Name: m.Name, Addr: addr, Security: m.Security, TLSConfig: tc,
			Username: m.Username, Mechanism: m.SASL, Bearer: token, Logger: rt.log}), token, nil
	}
	return nil, nil, fmt.Errorf("protocol %s is not available in this build yet (imap and pop3 are)", m.Protocol)
}

// Login connects to mailbox m and logs in with its profile's token, then
// closes the connection: nothing is read. The error is the mailbox's
// (see MailboxAdvice).
func (a *App) Login(ctx context.Context, m *config.Mailbox) error {
	d, _, err := a.rt.dialer(m)
	if err != nil {
		return &KeyError{Key: "mailboxes[" + m.Name + "]", Err: err}
	}
	c, err := d.Dial(ctx)
	if err != nil {
		return err
	}
	c.Close()
	return nil
}

// outboxSender is the outbox's view of a configured SMTP sender: dial,
// STARTTLS/TLS, AUTH with a current token.
// graphSender is a Graph sender's client bound to its mailbox.
func (rt *parts) graphSender(snd *config.Sender, log *slog.Logger) (*graph.Sender, error) {
	p, ok := rt.profiles[snd.Profile]
	if !ok {
		return nil, fmt.Errorf("profile %q is not defined", snd.Profile)
	}
	gc := graph.New(graph.Options{Endpoint: snd.Endpoint, HTTPClient: p.HTTPClient, Bearer: rt.mgr.Bearer(p.ForSubject(snd.Username), nil)})
	return &graph.Sender{Client: gc, User: snd.Username, SaveToSentItems: snd.SaveToSentItems, Log: log}, nil
}

func (rt *parts) outboxSender(snd *config.Sender) (*outbox.Sender, error) {
	if snd.Protocol == "graph" {
		gs, err := rt.graphSender(snd, rt.log)
		if err != nil {
			return nil, err
		}
		return &outbox.Sender{Name: snd.Name, Mailer: gs, Rate: snd.Rate, MaxConns: snd.MaxConnections, MaxRcptsPerDay: snd.MaxRecipientsPerDay}, nil
	}
	p, ok := rt.profiles[snd.Profile]
	if !ok {
		return nil, fmt.Errorf("profile %q is not defined", snd.Profile)
	}
	tc, err := tlsConfig(snd.Host, snd.TLSCA)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(snd.Host, strconv.Itoa(snd.Port))
	p = p.ForSubject(snd.Username)
	token := rt.mgr.Bearer(p, nil)
	return &outbox.Sender{
		Name:   snd.Name,
		Bearer: token,
		Rate:   snd.Rate,
		// the proxy's accounts of the same mailbox and host share its pace
		Pace: outbox.PaceKey(snd.Username, snd.Host),
		// each connection its own batch; the day's budget spans them
		MaxConns:       snd.MaxConnections,
		MaxRcptsPerDay: snd.MaxRecipientsPerDay,
		Dial: func(ctx context.Context) (*smtp.Client, error) {
			tok, err := token.Token(ctx)
			if err != nil {
				return nil, &TokenError{Profile: p, Err: err}
			}
			c, err := smtp.Dial(ctx, addr, &smtp.Options{Security: snd.Security, TLSConfig: tc})
			if err != nil {
				return nil, err
			}
			var sc sasl.Client = sasl.NewXOAuth2ClientNoIR(snd.Username, tok)
			if strings.EqualFold(snd.SASL, "oauthbearer") {
				sc = sasl.NewOAuthBearerClientNoIR(snd.Username, tok, snd.Host, snd.Port)
			}
			if err := c.Authenticate(sc); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
	}, nil
}

// mailboxUser is the user a mailbox's login is for, the subject a service
// account acts for: its username, without the "recent:" of Gmail's POP3
// recent mode (a way to log in, not another user).
func mailboxUser(m *config.Mailbox) string {
	const recent = "recent:"
	if m.Protocol == "pop3" && len(m.Username) > len(recent) && strings.EqualFold(m.Username[:len(recent)], recent) {
		return m.Username[len(recent):]
	}
	return m.Username
}
