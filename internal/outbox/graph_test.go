package outbox

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/graph"
	"github.com/mailgate/mailgate/internal/store"
)

// graphSender is the demo app's Graph client sending as noreply@.
func graphSender(t *testing.T, emu *emulator.Server) *graph.Sender {
	t.Helper()
	tok := func(ctx context.Context) (string, error) {
		return emu.DemoAppToken(ctx, "https://graph.microsoft.com/.default")
	}
	c := graph.New(graph.Options{Endpoint: emu.URL(), HTTPClient: emu.Client(), Bearer: graph.BearerFunc(tok)})
	return &graph.Sender{Client: c, User: emulator.DemoSenderMailbox, SaveToSentItems: true}
}

// TestOutboxThroughGraph: queued messages go out through Graph; one that a
// crash left in "sending" after Graph had taken it is found in Sent Items
// and not sent again; a message Graph refuses fails with the reason; a
// sender Graph does not let in is retried with the fix in its status.
func TestOutboxThroughGraph(t *testing.T) {
	emu, err := emulator.Start(t.Context(), emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	st := openStore(t)
	gs := graphSender(t, emu)
	msg := func(i int) string {
		return fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: g%d\r\nMessage-ID: <g-%d@mailgate.test>\r\n\r\nbody %d\r\n", emulator.DemoSenderMailbox, emulator.DemoInvoicesMailbox, i, i, i)
	}
	enqueue := func(raw string) int64 {
		id, err := st.Enqueue(t.Context(), "g", emulator.DemoSenderMailbox, []string{emulator.DemoInvoicesMailbox}, []byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	// the crash: message 0 was handed to Graph (202) but the process died
	// before recording it as sent
	crashed := enqueue(msg(0))
	if err := st.MarkSending(t.Context(), crashed); err != nil {
		t.Fatal(err)
	}
	if err := gs.Send(t.Context(), []byte(msg(0))); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for i := 1; i <= 20; i++ {
		ids = append(ids, enqueue(msg(i)))
	}
	bad := enqueue("From: " + emulator.DemoSenderMailbox + "\r\nSubject: nobody\r\nMessage-ID: <bad@x>\r\n\r\nno recipients\r\n")

	w := &Worker{Store: st, Senders: []*Sender{{Name: "g", Mailer: gs}}, Poll: 20 * time.Millisecond, Backoff: time.Hour}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	for _, id := range append(ids, crashed) {
		waitState(t, st, id, store.OutboxSent)
	}
	if m := waitState(t, st, bad, store.OutboxFailed); !strings.Contains(m.LastError, "ErrorInvalidRecipients") {
		t.Errorf("refused message: %q", m.LastError)
	}
	got := map[string]int{}
	for _, raw := range emu.GraphMessages(emulator.DemoInvoicesMailbox, "inbox") {
		got[string(raw)]++
	}
	for i := 0; i <= 20; i++ {
		if got[msg(i)] != 1 {
			t.Errorf("message %d arrived %d times", i, got[msg(i)])
		}
	}
	// the worker counts a message after recording its state: the count of
	// the last one may follow the store by a moment
	s := w.Stats()
	for deadline := time.Now().Add(20 * time.Second); (s.Confirmed != 1 || s.Sent != 20 || s.Failed != 1) && time.Now().Before(deadline); s = w.Stats() {
		time.Sleep(20 * time.Millisecond)
	}
	if s.Confirmed != 1 || s.Sent != 20 || s.Failed != 1 {
		t.Errorf("stats %+v", s)
	}

	// an access policy now blocks the app: retried, the status names the fix
	emu.Tenant().DenyGraphAccess(emulator.DemoAppID, emulator.DemoSenderMailbox)
	blocked := enqueue(msg(99))
	m := waitState(t, st, blocked, store.OutboxQueued)
	for deadline := time.Now().Add(20 * time.Second); m.LastError == "" && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		m, _ = st.OutboxMessageStatus(t.Context(), blocked)
	}
	if !strings.Contains(m.LastError, "New-ApplicationAccessPolicy") {
		t.Errorf("blocked sender's status: %q", m.LastError)
	}
	stop()
	<-done
}
