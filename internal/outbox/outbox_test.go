package outbox

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/dovecot"
	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/imap"
	"github.com/mailgate/mailgate/internal/sasl"
	"github.com/mailgate/mailgate/internal/smtp"
	"github.com/mailgate/mailgate/internal/store"
)

// appToken is the demo app's token for Exchange (IMAP, SMTP).
func appToken(t *testing.T, emu *emulator.Server) string {
	t.Helper()
	tok, err := emu.DemoAppToken(t.Context(), "https://outlook.office365.com/.default")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// submissionDial is a Sender's Dial to dv's submission service (STARTTLS)
// logging in as the demo sender with XOAUTH2 and the token token gives.
func submissionDial(dv *dovecot.Server, token func() string) func(context.Context) (*smtp.Client, error) {
	return func(ctx context.Context) (*smtp.Client, error) {
		tok := token()
		c, err := smtp.Dial(ctx, dv.Addr("submission"), &smtp.Options{TLSConfig: dv.TLSConfig()})
		if err != nil {
			return nil, err
		}
		if err := c.Authenticate(sasl.NewXOAuth2ClientNoIR(emulator.DemoSenderMailbox, tok)); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
}

// waitState waits up to 20 s for message id to be in state and returns
// it.
func waitState(t *testing.T, st *store.Store, id int64, state string) *store.OutboxMessage {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m, err := st.OutboxMessageStatus(t.Context(), id)
		if err == nil && m.State == state {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %d: %+v %v, want %s", id, m, err, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readBack fetches every message of a mailbox over IMAPS with the
// project's own client.
func readBack(t *testing.T, dv *dovecot.Server, tok, user string) []string {
	t.Helper()
	c, err := imap.Dial(t.Context(), dv.Addr("imaps"), &imap.Options{TLSConfig: dv.TLSConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Authenticate(t.Context(), sasl.NewXOAuth2Client(user, tok)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select(t.Context(), "INBOX"); err != nil {
		t.Fatal(err)
	}
	uids, err := c.UIDsAfter(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	err = c.FetchBodies(t.Context(), uids, func(_ uint32, _ int64, _ time.Time, r io.Reader) error {
		b, err := io.ReadAll(r)
		out = append(out, string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOutboxAgainstDovecot(t *testing.T) {
	emu, err := emulator.Start(t.Context(), emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	dv := dovecot.StartT(t, dovecot.Options{CheckURL: emu.HTTPURL(), Relay: true})
	tok := appToken(t, emu)
	st := openStore(t)
	dials := 0
	dial := submissionDial(dv, func() string { return tok })
	sender := &Sender{Name: "noreply", Dial: func(ctx context.Context) (*smtp.Client, error) {
		dials++
		return dial(ctx)
	}}
	w := &Worker{Store: st, Senders: []*Sender{sender}, Poll: 20 * time.Millisecond, Backoff: 200 * time.Millisecond}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { stop(); <-done }()

	t.Run("200 messages read back intact", func(t *testing.T) {
		var ids []int64
		bodies := map[string]string{}
		for i := range 200 {
			mid := fmt.Sprintf("<out-%d@mailgate.test>", i)
			raw := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: outbox %d\r\nMessage-ID: %s\r\n\r\nline one %d\r\n.leading dot\r\n", emulator.DemoSenderMailbox, emulator.DemoSharedMailbox, i, mid, i)
			bodies[mid] = raw
			id, err := st.Enqueue(t.Context(), "noreply", emulator.DemoSenderMailbox, []string{emulator.DemoSharedMailbox}, []byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		for _, id := range ids {
			waitState(t, st, id, store.OutboxSent)
		}
		got := readBack(t, dv, tok, emulator.DemoSharedMailbox)
		seen := map[string]int{}
		for _, m := range got {
			for mid, raw := range bodies {
				// the original bytes follow the trace headers the servers add
				if strings.Contains(m, mid) {
					if !strings.HasSuffix(m, raw) {
						t.Fatalf("%s changed on the way:\n%q", mid, m)
					}
					seen[mid]++
				}
			}
		}
		if len(seen) != 200 {
			t.Fatalf("%d of 200 arrived", len(seen))
		}
		for mid, n := range seen {
			if n != 1 {
				t.Fatalf("%s arrived %d times", mid, n)
			}
		}
		if dials > 3 {
			t.Errorf("%d connections for 200 messages: the connection is not reused", dials)
		}
	})
	t.Run("4xx for a while, then delivered", func(t *testing.T) {
		dv.Relay().FailData(3)
		id, _ := st.Enqueue(t.Context(), "noreply", emulator.DemoSenderMailbox, []string{emulator.DemoSharedMailbox},
			[]byte("From: "+emulator.DemoSenderMailbox+"\r\nSubject: retry\r\n\r\nx\r\n"))
		m := waitState(t, st, id, store.OutboxSent)
		if m.Attempts != 4 {
			t.Errorf("%d attempts, want 4", m.Attempts)
		}
	})
	t.Run("5xx recipient marked failed with the reply", func(t *testing.T) {
		dv.Relay().Reject("nobody@contoso.example")
		id, _ := st.Enqueue(t.Context(), "noreply", emulator.DemoSenderMailbox, []string{"nobody@contoso.example", emulator.DemoSharedMailbox},
			[]byte("From: "+emulator.DemoSenderMailbox+"\r\nSubject: partly\r\n\r\nx\r\n"))
		m := waitState(t, st, id, store.OutboxSent)
		for _, r := range m.Rcpts {
			if r.Addr == "nobody@contoso.example" && (r.State != store.OutboxFailed || !strings.Contains(r.Reply, "550")) {
				t.Errorf("%+v", r)
			}
			if r.Addr == emulator.DemoSharedMailbox && r.State != store.OutboxSent {
				t.Errorf("%+v", r)
			}
		}
		id, _ = st.Enqueue(t.Context(), "noreply", emulator.DemoSenderMailbox, []string{"nobody@contoso.example"},
			[]byte("From: "+emulator.DemoSenderMailbox+"\r\nSubject: none\r\n\r\nx\r\n"))
		m = waitState(t, st, id, store.OutboxFailed)
		if !strings.Contains(m.LastError, "550 5.1.1") {
			t.Errorf("last error %q", m.LastError)
		}
	})
}

// TestReauthAfterTokenExpiry: a token expires between two messages and the
// server dropped the connection meanwhile (Dovecot restarted): the second
// message goes out on a new connection with a fresh token, without an
// error reaching the queue.
func TestReauthAfterTokenExpiry(t *testing.T) {
	emu, err := emulator.Start(t.Context(), emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	emu.SetTokenLifetime(2 * time.Second)
	dv := dovecot.StartT(t, dovecot.Options{CheckURL: emu.HTTPURL(), Relay: true})
	st := openStore(t)
	// a fresh token per connection, as the token engine would hand out
	sender := &Sender{Name: "noreply", Dial: submissionDial(dv, func() string { return appToken(t, emu) })}
	w := &Worker{Store: st, Senders: []*Sender{sender}, Poll: 20 * time.Millisecond, Backoff: 100 * time.Millisecond}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { stop(); <-done }()
	send := func(subject string) *store.OutboxMessage {
		id, _ := st.Enqueue(t.Context(), "noreply", emulator.DemoSenderMailbox, []string{emulator.DemoSharedMailbox},
			[]byte("From: "+emulator.DemoSenderMailbox+"\r\nSubject: "+subject+"\r\n\r\nx\r\n"))
		deadline := time.Now().Add(15 * time.Second)
		for {
			m, _ := st.OutboxMessageStatus(t.Context(), id)
			if m != nil && m.State == store.OutboxSent {
				return m
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v", subject, m)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	send("first")
	time.Sleep(2500 * time.Millisecond) // the first token has expired
	if err := dv.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	m := send("second")
	if m.LastError != "" && m.State != store.OutboxSent {
		t.Errorf("%+v", m)
	}
	if s := w.Stats(); s.Sent != 2 || s.Failed != 0 || s.Retried != 0 {
		t.Errorf("stats %+v", s)
	}
}
