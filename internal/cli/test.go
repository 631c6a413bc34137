package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/mailbox"
)

func init() {
	register(&command{
		name:    "test",
		summary: "the Test button: exercise a mailbox or profile step by step and say what to fix",
		run:     runTest,
	})
}

// runTest exercises a mailbox (DNS, TCP, TLS, token, AUTH, SELECT) or a
// profile (token) and reports each step; on failure it says what to fix.
func runTest(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "test", "NAME")
	cfgFlag := fs.String("config", "", "config file (default $MAILGATE_CONFIG, then ./mailgate.yaml)")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(env.Err, "usage: mailgate test NAME (a mailbox or a profile) [--config FILE]")
		return ExitUsage
	}
	cfg, code, ok := loadConfig(env, configPath(env, *cfgFlag))
	if !ok {
		return code
	}
	rt, err := newRuntime(ctx, env, cfg, logger(env.Err, false))
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: test: %v\n", err)
		if isProfileError(err) {
			return ExitUsage
		}
		return ExitFailed
	}
	defer rt.close()
	cfg = rt.cfg // with the console's records
	out := env.Out
	step := func(okay bool, name, format string, a ...any) {
		mark := "✓"
		if !okay {
			mark = "✗"
		}
		fmt.Fprintf(out, "%s %-6s %s\n", mark, name, fmt.Sprintf(format, a...))
	}
	if m, ok := cfg.Mailbox(pos[0]); ok {
		if testMailbox(ctx, rt, m, step, func(s string) { fmt.Fprintf(out, "  %s\n", s) }) {
			return ExitOK
		}
		return ExitFailed
	}
	if p, ok := rt.profiles[pos[0]]; ok {
		t0 := time.Now()
		tok, err := rt.mgr.Token(ctx, p, nil)
		if err != nil {
			step(false, "token", "%v", err)
			printOAuthError(out, "test", p, err)
			return ExitFailed
		}
		step(true, "token", "valid until %s (%s)", tok.Expiry.Local().Format("15:04:05"), time.Since(t0).Round(time.Millisecond))
		return ExitOK
	}
	fmt.Fprintf(env.Err, "mailgate: test: no mailbox or profile %q in %s\n", pos[0], cfg.File)
	return ExitUsage
}

func testMailbox(ctx context.Context, rt *runtimeT, m *config.Mailbox, step func(bool, string, string, ...any), hint func(string)) bool {
	if m.Protocol == "graph" {
		return testGraphMailbox(ctx, rt, m, step, hint)
	}
	addr := net.JoinHostPort(m.Host, strconv.Itoa(m.Port))
	ips, err := net.DefaultResolver.LookupHost(ctx, m.Host)
	if err != nil {
		step(false, "dns", "%s: %v", m.Host, err)
		hint("check host: " + m.Host)
		return false
	}
	step(true, "dns", "%s → %s", m.Host, strings.Join(ips, ", "))
	t0 := time.Now()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		step(false, "tcp", "%s: %v", addr, err)
		hint("check port and firewall (Exchange Online: IMAP 993, POP3 995)")
		return false
	}
	step(true, "tcp", "%s (%s)", addr, time.Since(t0).Round(time.Millisecond))
	tc, err := tlsConfig(m.Host, m.TLSCA)
	if err != nil {
		conn.Close()
		step(false, "tls", "%v", err)
		return false
	}
	if m.Security == "tls" || m.Security == "" {
		tconn := tls.Client(conn, tc)
		err := tconn.HandshakeContext(ctx)
		if err != nil {
			conn.Close()
			step(false, "tls", "%v", err)
			hint("the certificate is not trusted for " + m.Host + ": add its CA with tls_ca, or use the host name it was issued for")
			return false
		}
		st := tconn.ConnectionState()
		step(true, "tls", "%s, certificate for %s, expires %s", tls.VersionName(st.Version), st.PeerCertificates[0].Subject.CommonName,
			st.PeerCertificates[0].NotAfter.Format("2006-01-02"))
	} else {
		step(true, "tls", "%s (negotiated inside the protocol)", m.Security)
	}
	conn.Close()
	p := rt.profiles[m.Profile]
	t0 = time.Now()
	tok, err := rt.mgr.Token(ctx, p, nil)
	if err != nil {
		step(false, "token", "profile %s: %v", m.Profile, err)
		for _, l := range diagnose(m, p, &mailbox.Error{Mailbox: m.Name, Step: mailbox.StepToken, Err: err}) {
			hint(l)
		}
		return false
	}
	step(true, "token", "profile %s, valid until %s (%s)", m.Profile, tok.Expiry.Local().Format("15:04:05"), time.Since(t0).Round(time.Millisecond))
	a, err := rt.agentMailbox(m)
	if err != nil {
		step(false, "config", "%v", err)
		return false
	}
	t0 = time.Now()
	c, err := a.Dialer.Dial(ctx)
	if err != nil {
		e, _ := mailbox.AsError(err)
		name := "auth"
		if e != nil && e.Step != "" {
			name = e.Step
		}
		step(false, name, "%v", err)
		for _, l := range diagnose(m, p, err) {
			hint(l)
		}
		return false
	}
	defer c.Close()
	step(true, "auth", "%s as %s (%s)", strings.ToUpper(orDefault(m.SASL, "xoauth2")), m.Username, time.Since(t0).Round(time.Millisecond))
	s, err := c.Scan(ctx, mailbox.Cursor{})
	if err != nil {
		step(false, "select", "%v", err)
		return false
	}
	step(true, "select", "%s: %d messages", orDefault(m.Folder, "INBOX"), len(s.Items))
	return true
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// testGraphMailbox: token, then a delta query of the folder.
func testGraphMailbox(ctx context.Context, rt *runtimeT, m *config.Mailbox, step func(bool, string, string, ...any), hint func(string)) bool {
	p := rt.profiles[m.Profile]
	t0 := time.Now()
	tok, err := rt.mgr.Token(ctx, p, nil)
	if err != nil {
		step(false, "token", "profile %s: %v", m.Profile, err)
		for _, l := range diagnose(m, p, &mailbox.Error{Mailbox: m.Name, Step: mailbox.StepToken, Err: err}) {
			hint(l)
		}
		return false
	}
	step(true, "token", "profile %s, valid until %s (%s)", m.Profile, tok.Expiry.Local().Format("15:04:05"), time.Since(t0).Round(time.Millisecond))
	a, err := rt.agentMailbox(m)
	if err != nil {
		step(false, "config", "%v", err)
		return false
	}
	c, err := a.Dialer.Dial(ctx)
	if err != nil {
		step(false, "graph", "%v", err)
		return false
	}
	defer c.Close()
	t0 = time.Now()
	s, err := c.Scan(ctx, mailbox.Cursor{})
	if err != nil {
		step(false, "graph", "%v", err)
		if e, ok := mailbox.AsError(err); ok && e.Hint != "" {
			hint("fix: " + e.Hint)
		}
		return false
	}
	step(true, "graph", "%s of %s: %d messages (%s)", orDefault(m.Folder, "inbox"), m.Username, len(s.Items), time.Since(t0).Round(time.Millisecond))
	return true
}
