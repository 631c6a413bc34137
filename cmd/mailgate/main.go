// Command mailgate is an OAuth 2.0 gateway for business mailboxes: it gets
// tokens from Microsoft Entra ID, Google or any OAuth 2.0 server, reads mail
// over IMAP, POP3 or Microsoft Graph into sinks, and sends over SMTP or Graph.
//
// The commands live in internal/cli; this file only wires signals
// (SIGINT and SIGTERM stop, SIGHUP makes serve reload its config file).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/mailgate/mailgate/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// SIGHUP does not kill: serve reloads its config file on it, other
	// commands stop as on SIGTERM
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	code := cli.Main(ctx, os.Args[1:], cli.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Hangup: hup})
	stop()
	os.Exit(code)
}
