package cli

import (
	"context"
	"fmt"

	"github.com/mailgate/mailgate/internal/app"
	"github.com/mailgate/mailgate/internal/oauth"
)

func init() {
	register(&command{
		name:    "cert",
		summary: "cert new: create a certificate and key for an app registration's certificate credential",
		run:     runCert,
		subs:    []string{"new"},
	})
}

func runCert(ctx context.Context, env *Env, args []string) int {
	if len(args) == 0 || args[0] != "new" {
		fmt.Fprintln(env.Err, "usage: mailgate cert new --cn NAME --out DIR [--days N] [--bits N]")
		return ExitUsage
	}
	fs := newFlagSet(env, "cert new", "")
	cn := fs.String("cn", "", "subject common name, e.g. the app's name (required)")
	out := fs.String("out", "", "directory to write cert.pem and key.pem into (required; created 0700 if missing)")
	days := fs.Int("days", oauth.DefaultCertDays, "validity in days (Entra accepts certificates up to its own policy limit)")
	bits := fs.Int("bits", oauth.DefaultCertBits, "RSA key size (2048 or more)")
	force := fs.Bool("force", false, "overwrite an existing cert.pem/key.pem")
	pos, code, ok := parseFlags(fs, args[1:])
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(env.Err, "mailgate: cert new: unexpected argument %q\n", pos[0])
		return ExitUsage
	}
	switch {
	case *cn == "":
		fmt.Fprintln(env.Err, "mailgate: cert new: --cn is required")
		return ExitUsage
	case *out == "":
		fmt.Fprintln(env.Err, "mailgate: cert new: --out is required")
		return ExitUsage
	case *days <= 0:
		fmt.Fprintln(env.Err, "mailgate: cert new: --days must be positive")
		return ExitUsage
	case *bits < oauth.MinRSABits:
		fmt.Fprintf(env.Err, "mailgate: cert new: --bits must be at least %d\n", oauth.MinRSABits)
		return ExitUsage
	}
	certPEM, keyPEM, err := oauth.NewSelfSignedCertificate(*cn, *bits, *days)
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: cert new: %v\n", err)
		return ExitFailed
	}
	certPath, keyPath, cert, err := app.WriteCertificate(*out, certPEM, keyPEM, *force)
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: cert new: %v\n", err)
		return ExitFailed
	}
	tp := oauth.Thumbprints(cert)
	fmt.Fprintf(env.Out, "certificate: %s\n", certPath)
	fmt.Fprintf(env.Out, "private key: %s (mode 0600; never upload it)\n", keyPath)
	fmt.Fprintf(env.Out, "subject:     CN=%s\n", *cn)
	fmt.Fprintf(env.Out, "expires:     %s\n", cert.NotAfter.UTC().Format("2006-01-02"))
	fmt.Fprintf(env.Out, "thumbprint:  %s   (SHA-1, as the Azure portal shows it)\n", tp.SHA1)
	fmt.Fprintf(env.Out, "x5t:         %s\n", tp.X5T)
	fmt.Fprintf(env.Out, "x5t#S256:    %s\n", tp.X5TS256)
	fmt.Fprintln(env.Err, "\nNext: Entra admin center > App registrations > your app > Certificates & secrets >")
	fmt.Fprintf(env.Err, "Certificates > Upload certificate: %s. Then in mailgate.yaml:\n", certPath)
	fmt.Fprintf(env.Err, "  client_certificate: {cert: %s, key: %s}\n", certPath, keyPath)
	fmt.Fprintf(env.Err, "  secret_expires: %s\n", cert.NotAfter.UTC().Format("2006-01-02"))
	return ExitOK
}
