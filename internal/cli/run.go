package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
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

func init() {
	register(&command{
		name:    "run",
		summary: "poll the mailboxes once, deliver to their sinks, mark, move or delete, exit",
		run:     runRun,
	})
}

// runRun is `mailgate run [--once] [--mailbox NAME]`: every enabled mailbox
// (or one) is read once, concurrently; exit 1 when any failed. --once is
// what run always does; it stays accepted for scripts that give it.
func runRun(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "run", "")
	cfgFlag := fs.String("config", "", "config file (default $MAILGATE_CONFIG, then ./mailgate.yaml)")
	fs.Bool("once", true, "read each mailbox once and exit, which run always does (accepted for scripts; serve runs continuously)")
	only := fs.String("mailbox", "", "read only this mailbox")
	verbose := fs.Bool("v", false, "log each step on stderr")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintln(env.Err, "usage: mailgate run [--once] [--mailbox NAME] [--config FILE]")
		return ExitUsage
	}
	log := logger(env.Err, *verbose)
	rt, code, ok := loadRuntime(ctx, env, "run", configPath(env, *cfgFlag), log)
	if !ok {
		return code
	}
	defer rt.close()
	cfg := rt.cfg // with the console's records
	var boxes []*config.Mailbox
	for i := range cfg.Mailboxes {
		m := &cfg.Mailboxes[i]
		if *only != "" && m.Name != *only || *only == "" && !m.Enabled {
			continue
		}
		boxes = append(boxes, m)
	}
	if len(boxes) == 0 {
		if *only != "" {
			fmt.Fprintf(env.Err, "mailgate: run: no mailbox %q in %s\n", *only, cfg.File)
		} else {
			fmt.Fprintf(env.Err, "mailgate: run: no enabled mailbox in %s\n", cfg.File)
		}
		return ExitUsage
	}
	agents := make([]*agent.Mailbox, len(boxes))
	for i, m := range boxes {
		a, err := rt.agentMailbox(m)
		if err != nil {
			fmt.Fprintf(env.Err, "%s: mailboxes[%s]: %v\n", cfg.File, m.Name, err)
			return ExitUsage
		}
		agents[i] = a
	}
	bar := newProgress(env.Err)
	var wg sync.WaitGroup
	results := make([]error, len(agents))
	stats := make([]agent.Stats, len(agents))
	for i, a := range agents {
		wg.Go(func() {
			stats[i], results[i] = agent.RunOnce(ctx, a, rt.store, log, bar.update)
		})
	}
	wg.Wait()
	bar.done()
	failed := 0
	for i, a := range agents {
		s := stats[i]
		if err := results[i]; err != nil {
			failed++
			fmt.Fprintf(env.Err, "%s: FAILED after %d delivered: %v\n", a.Name, s.Delivered, err)
			for _, line := range diagnose(boxes[i], rt.profiles[boxes[i].Profile], err) {
				fmt.Fprintf(env.Err, "  %s\n", line)
			}
			continue
		}
		fmt.Fprintf(env.Err, "%s: %d delivered, %d already there, %d acknowledged (%s)\n", a.Name, s.Delivered, s.Duplicates, s.Acked, a.After)
		if s.Held > 0 {
			fmt.Fprintf(env.Err, "%s: %d refused by the sink and set aside, not acknowledged: see mailgate messages held\n", a.Name, s.Held)
		}
	}
	if failed > 0 {
		return ExitFailed
	}
	return ExitOK
}

// runtime is what the mail commands share: the store, the token engine
// and one oauth profile and sink per configured name.
type runtimeT struct {
	cfg      *config.Config
	store    *storeT
	mgr      *oauth.Manager
	profiles map[string]*oauth.Profile
	sinksMu  sync.Mutex // the console's Test opens sinks while agents run
	sinks    map[string]sink.Sink
	log      *slog.Logger
}

// loadRuntime loads the config file at path and opens its runtime, with
// the console's records; on failure it reports to env.Err as command cmd
// and returns the exit status (2 for a problem in the config).
func loadRuntime(ctx context.Context, env *Env, cmd, path string, log *slog.Logger) (*runtimeT, int, bool) {
	cfg, code, ok := loadConfig(env, path)
	if !ok {
		return nil, code, false
	}
	rt, err := newRuntime(ctx, env, cfg, log)
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: %s: %v\n", cmd, err)
		if isProfileError(err) {
			return nil, ExitUsage, false
		}
		return nil, ExitFailed, false
	}
	return rt, ExitOK, true
}

func newRuntime(ctx context.Context, env *Env, cfg *config.Config, log *slog.Logger) (*runtimeT, error) {
	return newObservedRuntime(ctx, env, cfg, log, nil)
}

// newObservedRuntime is newRuntime with token requests reported to onToken.
func newObservedRuntime(ctx context.Context, env *Env, cfg *config.Config, log *slog.Logger, onToken func(profile, result string, aadsts int)) (*runtimeT, error) {
	st, err := openStore(ctx, env, cfg, log)
	if err != nil {
		return nil, err
	}
	cfg = withConsoleRecords(ctx, env, st, cfg)
	rt, err := newRuntimeOn(st, cfg, log, onToken)
	if err != nil {
		st.Close()
		return nil, err
	}
	return rt, nil
}

// withConsoleRecords adds the records made in the console (kept in the
// store) to the file's configuration; when they no longer fit the file,
// the file alone is used and the problem is said.
func withConsoleRecords(ctx context.Context, env *Env, st *store.Store, cfg *config.Config) *config.Config {
	rs, err := st.Records(ctx)
	if err != nil || len(rs) == 0 || cfg.File == "" {
		return cfg
	}
	data, err := os.ReadFile(cfg.File)
	if err != nil {
		return cfg
	}
	recs := make([]config.Record, 0, len(rs))
	for _, r := range rs {
		recs = append(recs, config.Record{Kind: r.Kind, Name: r.Name, YAML: r.YAML})
	}
	merged, _, broken, err := fitRecords(data, cfg.File, env.Getenv, recs)
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: the console's records do not fit %s, using the file alone: %v\n", cfg.File, err)
		return cfg
	}
	for _, b := range broken {
		fmt.Fprintf(env.Err, "mailgate: console record %s %s is failing and skipped: %s\n", b.Kind, b.Name, b.Reason)
	}
	return merged
}

// newRuntimeOn builds a runtime over a store that is already open (serve
// keeps its store across configuration reloads).
func newRuntimeOn(st *store.Store, cfg *config.Config, log *slog.Logger, onToken func(profile, result string, aadsts int)) (*runtimeT, error) {
	rt := &runtimeT{cfg: cfg, store: st, mgr: observedTokenManager(st, log, onToken), profiles: map[string]*oauth.Profile{}, sinks: map[string]sink.Sink{}, log: log}
	for i := range cfg.Profiles {
		p, err := oauthProfile(&cfg.Profiles[i], i)
		if err != nil {
			return nil, err
		}
		rt.profiles[p.Name] = p
	}
	return rt, nil
}

func (rt *runtimeT) close() {
	rt.closeSinks()
	rt.store.Close()
}

// closeSinks closes the sinks opened so far.
func (rt *runtimeT) closeSinks() {
	rt.sinksMu.Lock()
	defer rt.sinksMu.Unlock()
	for name, s := range rt.sinks {
		s.Close()
		delete(rt.sinks, name)
	}
}

// sink opens a configured sink once.
func (rt *runtimeT) sink(name string) (sink.Sink, error) {
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

// agentMailbox builds the agent's view of a configured mailbox.
func (rt *runtimeT) agentMailbox(m *config.Mailbox) (*agent.Mailbox, error) {
	p, ok := rt.profiles[m.Profile]
	if !ok {
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
	var tc *tls.Config
	if m.Protocol != "graph" {
		if tc, err = tlsConfig(m.Host, m.TLSCA); err != nil {
			return nil, err
		}
	}
	token := rt.mgr.Bearer(p, nil)
	a := &agent.Mailbox{Name: m.Name, Sink: s, After: after, BatchSize: m.BatchSize, Bearer: token}
	addr := net.JoinHostPort(m.Host, strconv.Itoa(m.Port))
	switch m.Protocol {
	case "imap":
		a.Dialer = mailbox.NewIMAP(mailbox.IMAPOptions{Name: m.Name, Addr: addr, Security: m.Security, TLSConfig: tc,
			Username: m.Username, Mechanism: m.SASL, Bearer: token, Folder: m.Folder, BatchSize: m.BatchSize, Logger: rt.log})
	case "graph":
		gc := graph.New(graph.Options{Endpoint: m.Endpoint, HTTPClient: p.HTTPClient, Bearer: token})
		a.Dialer = mailbox.NewGraph(mailbox.GraphOptions{Name: m.Name, Client: gc, Username: m.Username, Folder: m.Folder, Logger: rt.log})
	case "pop3":
		a.Dialer = mailbox.NewPOP3(mailbox.POP3Options{Name: m.Name, Addr: addr, Security: m.Security, TLSConfig: tc,
			Username: m.Username, Mechanism: m.SASL, Bearer: token, Logger: rt.log})
	default:
		return nil, fmt.Errorf("protocol %s is not available in this build yet (imap and pop3 are)", m.Protocol)
	}
	return a, nil
}

// progress draws a one-line bar on a terminal and nothing otherwise (the
// summary lines follow either way).
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	state map[string][2]int
}

func newProgress(w io.Writer) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, tty: tty, state: map[string][2]int{}}
}

func (p *progress) update(name string, done, total int) {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state[name] = [2]int{done, total}
	var parts []string
	for n, s := range p.state {
		width := 20
		fill := 0
		if s[1] > 0 {
			fill = width * s[0] / s[1]
		}
		parts = append(parts, fmt.Sprintf("%s [%s%s] %d/%d", n, strings.Repeat("#", fill), strings.Repeat(".", width-fill), s[0], s[1]))
	}
	fmt.Fprintf(p.w, "\r%s", strings.Join(parts, "  "))
}

func (p *progress) done() {
	if p.tty && len(p.state) > 0 {
		fmt.Fprintln(p.w)
	}
}

// diagnose says what to change when a mailbox failed: the token's AADSTS
// explanation, or for a login Exchange refused, what Exchange Online needs
// for this app and this mailbox, IDs filled in.
func diagnose(m *config.Mailbox, p *oauth.Profile, err error) []string {
	// a token refused by Entra ID, whichever step asked for it (Graph asks
	// on its first call)
	if ex, ok := oauth.ExplainError(err, p); ok {
		return []string{"fix: " + ex.String()}
	}
	e, ok := mailbox.AsError(err)
	if !ok {
		return nil
	}
	switch {
	case e.Step == mailbox.StepAuth && e.AuthFailed && p != nil && (p.Grant == "" || p.Grant == oauth.GrantClientCredentials):
		role := map[string]string{"imap": "IMAP.AccessAsApp", "pop3": "POP.AccessAsApp"}[m.Protocol]
		return []string{
			"the server refused the app-only token for " + m.Username + ". Exchange Online needs, for app " + p.ClientID + ":",
			"  1. Entra admin center › App registrations › " + p.ClientID + " › API permissions: Office 365 Exchange Online › Application permissions › " + role + ", then Grant admin consent",
			"  2. Exchange Online PowerShell: New-ServicePrincipal -AppId " + p.ClientID + " -ObjectId <object id of the enterprise application (not of the app registration)>",
			"  3. Add-MailboxPermission -Identity " + m.Username + " -User <that service principal's id> -AccessRights FullAccess",
			"  and the profile must request scope https://outlook.office365.com/.default",
		}
	case e.Step == mailbox.StepAuth && e.AuthFailed:
		return []string{"the server refused the user's token for " + m.Username + ": the signed-in user needs the mailbox's delegated permission (" +
			map[string]string{"imap": "IMAP.AccessAsUser.All", "pop3": "POP.AccessAsUser.All"}[m.Protocol] +
			") and, for a shared mailbox, FullAccess on it: Add-MailboxPermission -Identity " + m.Username + " -User <user> -AccessRights FullAccess"}
	case e.Hint != "":
		return []string{"fix: " + e.Hint}
	}
	return nil
}

// outboxSender is the outbox's view of a configured SMTP sender: dial,
// STARTTLS/TLS, AUTH with a current token.
// graphSender is a Graph sender's client bound to its mailbox.
func (rt *runtimeT) graphSender(snd *config.Sender, log *slog.Logger) (*graph.Sender, error) {
	p, ok := rt.profiles[snd.Profile]
	if !ok {
		return nil, fmt.Errorf("profile %q is not defined", snd.Profile)
	}
	gc := graph.New(graph.Options{Endpoint: snd.Endpoint, HTTPClient: p.HTTPClient, Bearer: rt.mgr.Bearer(p, nil)})
	return &graph.Sender{Client: gc, User: snd.Username, SaveToSentItems: snd.SaveToSentItems, Log: log}, nil
}

func (rt *runtimeT) outboxSender(snd *config.Sender) (*outbox.Sender, error) {
	if snd.Protocol == "graph" {
		gs, err := rt.graphSender(snd, rt.log)
		if err != nil {
			return nil, err
		}
		return &outbox.Sender{Name: snd.Name, Mailer: gs}, nil
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
	token := rt.mgr.Bearer(p, nil)
	return &outbox.Sender{
		Name:   snd.Name,
		Bearer: token,
		Dial: func(ctx context.Context) (*smtp.Client, error) {
			tok, err := token.Token(ctx)
			if err != nil {
				return nil, err
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
