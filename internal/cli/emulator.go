package cli

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/logging"
)

func init() {
	register(&command{
		name:    "emulator",
		summary: "run the Entra ID emulator alone and write a mailgate.yaml pointing at it",
		run:     runEmulator,
	})
}

func runEmulator(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "emulator", "")
	listen := fs.String("listen", "127.0.0.1:8443", "HTTPS listen address (the authority URL)")
	httpListen := fs.String("http-listen", "127.0.0.1:0", `plain-HTTP listen address for loopback tools ("-" for none)`)
	configOut := fs.String("config-out", "", "write the ready mailgate.yaml to FILE instead of stdout")
	dir := fs.String("dir", "", "directory for the emulator's CA, demo certificate and secret files (default: beside --config-out, else a temporary one)")
	imapListen := fs.String("imap", "", `listen address of the emulated Exchange Online IMAP service (implicit TLS, XOAUTH2), e.g. 127.0.0.1:9993; "" for none`)
	gmailIMAP := fs.String("gmail-imap", "127.0.0.1:9994", `listen address of the Gmail-flavoured IMAP service (implicit TLS, XOAUTH2 with Gmail's error challenge; the config then reads alice's Gmail through the service account); "" for none`)
	gmailSMTP, gmailPOP3 := fs.String("gmail-smtp", "", `listen address of the Gmail-flavoured SMTP submission service (implicit TLS), e.g. 127.0.0.1:9465`),
		fs.String("gmail-pop3", "127.0.0.1:9995", `listen address of the Gmail-flavoured POP3 service (implicit TLS, XOAUTH2; the IMAP service's mail, each message listed once; "recent:" user prefix); "" for none`)
	gmailLocalized := fs.Bool("gmail-localized", false, "German Gmail folder names ([Google Mail]/Papierkorb…)")
	_ = fs.String("config", "", "ignored: the emulator needs no config")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(env.Err, "mailgate: emulator: unexpected argument %q\n", pos[0])
		return ExitUsage
	}
	d := *dir
	if d == "" && *configOut != "" {
		d = filepath.Join(filepath.Dir(*configOut), "mailgate-emulator")
	}
	if d != "" {
		if err := os.MkdirAll(d, 0o700); err != nil {
			fmt.Fprintf(env.Err, "mailgate: emulator: %v\n", err)
			return ExitFailed
		}
	}
	srv, err := emulator.Start(ctx, emulator.Options{Listen: *listen, HTTPListen: *httpListen, Dir: d, Logger: logging.New(env.Err, env.Log, slog.LevelWarn), IMAPListen: *imapListen,
		GmailIMAPListen: *gmailIMAP, GmailSMTPListen: *gmailSMTP, GmailPOP3Listen: *gmailPOP3, GmailLocalized: *gmailLocalized})
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: emulator: %v\n", err)
		return ExitFailed
	}
	defer srv.Close()
	yaml := srv.ConfigYAML()
	if *configOut != "" {
		if err := os.WriteFile(*configOut, yaml, 0o600); err != nil {
			fmt.Fprintf(env.Err, "mailgate: emulator: %v\n", err)
			return ExitFailed
		}
		fmt.Fprintf(env.Err, "wrote %s\n", *configOut)
	} else {
		env.Out.Write(yaml)
	}
	t := srv.Tenant()
	fmt.Fprintf(env.Err, "Entra ID emulator serving %s (and %s), tenant %s\n", srv.URL(), srv.HTTPURL(), t.ID())
	fmt.Fprintf(env.Err, "CA certificate: %s\n", srv.CAFile())
	if a := srv.IMAPAddr(); a != "" {
		fmt.Fprintf(env.Err, "Exchange IMAP service: %s (implicit TLS, XOAUTH2 with this emulator's tokens)\n", a)
	}
	if a, b, c := srv.GmailIMAPAddr(), srv.GmailSMTPAddr(), srv.GmailPOP3Addr(); a != "" || b != "" || c != "" {
		fmt.Fprintf(env.Err, "Gmail IMAP %s, SMTP %s, POP3 %s (implicit TLS, XOAUTH2 with scope %s)\n", cmp.Or(a, "off"), cmp.Or(b, "off"), cmp.Or(c, "off"), emulator.GoogleMailScope)
	}
	fmt.Fprintf(env.Err, "Google Workspace %s: service account key %s (alice and bob delegated, not carol)\n", emulator.GoogleDomain, srv.GoogleKeyFile())
	fmt.Fprintf(env.Err, "Confidential app %s (secret in %s, certificate %s)\n", emulator.DemoAppID,
		filepath.Join(srv.Dir(), "client-secret.txt"), filepath.Join(srv.Dir(), "app-cert.pem"))
	fmt.Fprintf(env.Err, "Public app %s; user %s / %s\n", emulator.DemoPublicAppID, emulator.DemoUser, emulator.DemoUserPassword)
	fmt.Fprintln(env.Err, "Stop with Ctrl-C.")
	<-ctx.Done()
	return ExitOK
}
