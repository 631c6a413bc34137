// Package proxy is the legacy-client proxy: IMAP, POP3 and SMTP listeners
// where programs that only know a password (fetchmail, scanners, scripts
// with imaplib/poplib/smtplib) log in with a local password, and mailgate
// logs in to the real server with the account's OAuth 2.0 token (XOAUTH2).
//
// It follows RFC 9051/3501 (IMAP: CAPABILITY, LOGIN, AUTHENTICATE PLAIN
// with SASL-IR, STARTTLS, LITERAL+ of RFC 7888), RFC 1939/2449/5034 (POP3:
// CAPA, USER/PASS, AUTH PLAIN, STLS) and RFC 6409/4954 (SMTP submission:
// EHLO, AUTH PLAIN and LOGIN, STARTTLS). The local password never goes
// upstream; the token never reaches the legacy client or the log.
//
// A session, in steps:
//
//  1. Serve accepts a connection (implicit TLS for security tls) and the
//     protocol's front answers what a client asks before it logs in.
//  2. The client's user name and password go to Options.Accounts, which
//     checks the local password (a bcrypt hash, compared in constant
//     time); failures are throttled per (account, remote address).
//  3. The account's Bearer gives a token (one request serves every
//     concurrent login: the oauth cache), the proxy dials the upstream
//     server and logs in with XOAUTH2 as the account's mailbox.
//  4. IMAP and POP3 then relay bytes both ways (io.Copy, no per-line
//     work) until one side closes, the idle timeout or the session
//     timeout. SMTP receives each message itself (to check the From header
//     against the account's allowed_from) and submits it upstream.
//
// The package knows nothing of the store, the configuration or the web
// console: the composition root (internal/app) gives it an Accounts, a
// Recorder and an Explain function.
package proxy
