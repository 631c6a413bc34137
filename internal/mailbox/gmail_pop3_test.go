package mailbox

import (
	"crypto/tls"
	"errors"
	"io"
	"testing"

	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/sasl"
)

func startGmailPOP3(t *testing.T) *emulator.Server {
	t.Helper()
	emu, err := emulator.Start(t.Context(), emulator.Options{HTTPListen: "-", GmailIMAPListen: "127.0.0.1:0", GmailPOP3Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	for i := range 3 {
		if _, err := emu.GmailDeliver(gmailUser, gmailMessage(i)); err != nil {
			t.Fatal(err)
		}
	}
	return emu
}

func gmailPOP3Dialer(t *testing.T, emu *emulator.Server, scopes ...string) Dialer {
	t.Helper()
	tok, err := emu.GoogleMailToken(gmailUser, scopes...)
	if err != nil {
		t.Fatal(err)
	}
	return NewPOP3(POP3Options{Name: "gmail", Addr: emu.GmailPOP3Addr(), Username: gmailUser, Mechanism: "xoauth2",
		TLSConfig: &tls.Config{RootCAs: emu.CertPool(), ServerName: "127.0.0.1"}, Bearer: fixedBearer{tok}})
}

// scanPOP3 dials, scans and returns the connection and its items.
func scanPOP3(t *testing.T, d Dialer) (Conn, []Item) {
	t.Helper()
	conn, err := d.Dial(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := conn.Scan(t.Context(), Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	return conn, sc.Items
}

// TestGmailPOP3UnackedNotPopped: Gmail never lists again a message
// RETRieved in a session that ended with QUIT. A message fetched whose
// delivery failed (not acknowledged) must therefore not be followed by a
// QUIT: the session is dropped, which undoes it, and the failed message is
// listed again in the next session. (With a QUIT at Close, or at the
// DELE's Ack, it was popped and never listed again: lost.)
func TestGmailPOP3UnackedNotPopped(t *testing.T) {
	for _, after := range []string{"keep", "delete"} {
		t.Run(after, func(t *testing.T) {
			emu := startGmailPOP3(t)
			d := gmailPOP3Dialer(t, emu, emulator.GoogleMailScope)
			conn, items := scanPOP3(t, d)
			if len(items) != 3 {
				t.Fatalf("%d items, want 3", len(items))
			}
			errSink := errors.New("sink down")
			err := conn.Fetch(t.Context(), items[:2], func(it Item, r io.Reader) error {
				if _, err := io.Copy(io.Discard, r); err != nil {
					return err
				}
				if it.UID == items[1].UID {
					return errSink
				}
				return nil
			})
			if !errors.Is(err, errSink) {
				t.Fatalf("Fetch = %v", err)
			}
			if err := conn.Ack(t.Context(), items[:1], After{Kind: after}); err != nil {
				t.Fatal(err)
			}
			if err := conn.Close(); err != nil {
				t.Fatal(err)
			}
			conn, again := scanPOP3(t, d)
			defer conn.Close()
			var uids []string
			for _, it := range again {
				uids = append(uids, it.UID)
			}
			// the session was dropped (item 2 unacknowledged), so Gmail
			// popped nothing: the acknowledged message too is listed (its
			// key is in the ledger), and the failed one is not lost
			if len(again) != 3 || again[1].UID != items[1].UID {
				t.Errorf("listed after the failed delivery: %v, want all three", uids)
			}
		})
	}
}

// TestGmailPOP3ListedOnce: a session that fetched and acknowledged
// everything ends with QUIT, so Gmail lists nothing the next time; the
// IMAP view still holds the messages (the account keeps Gmail's copy).
func TestGmailPOP3ListedOnce(t *testing.T) {
	emu := startGmailPOP3(t)
	d := gmailPOP3Dialer(t, emu, emulator.GoogleMailScope)
	conn, items := scanPOP3(t, d)
	if err := conn.Fetch(t.Context(), items, func(_ Item, r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }); err != nil {
		t.Fatal(err)
	}
	if err := conn.Ack(t.Context(), items, After{Kind: "seen"}); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	conn, again := scanPOP3(t, d)
	defer conn.Close()
	if len(again) != 0 {
		t.Errorf("%d listed after a session that fetched all, want 0", len(again))
	}
	if n, _ := emu.GmailCount(gmailUser, "INBOX"); n != 3 {
		t.Errorf("INBOX over IMAP holds %d, want 3", n)
	}
}

// TestGmailPOP3RefusedScope: over POP3 too, a token without
// https://mail.google.com/ gets the error challenge, answered with an
// empty line, and the error names the scope.
func TestGmailPOP3RefusedScope(t *testing.T) {
	emu := startGmailPOP3(t)
	_, err := gmailPOP3Dialer(t, emu, "https://www.googleapis.com/auth/gmail.readonly").Dial(t.Context())
	e, ok := AsError(err)
	var ae *sasl.AuthError
	if !ok || !e.AuthFailed || !errors.As(err, &ae) || ae.Scope != emulator.GoogleMailScope {
		t.Fatalf("Dial = %v, want an auth failure with Gmail's challenge", err)
	}
	if empty, other := emu.GmailPOP3ChallengeAnswers(); empty != 1 || other != 0 {
		t.Errorf("the server saw %d empty and %d other answers, want 1 and 0", empty, other)
	}
}
