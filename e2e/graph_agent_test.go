package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/agent"
	"github.com/mailgate/mailgate/internal/app"
	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/graph"
	"github.com/mailgate/mailgate/internal/mailbox"
	"github.com/mailgate/mailgate/internal/oauth"
	"github.com/mailgate/mailgate/internal/sink"
)

// TestGraphAgentAgainstEmulator: 1,000 messages read through delta in
// pages of 10, through a storm of 429s, into a maildir exactly once; a
// stale delta link (410) resyncs without duplicates.
func TestGraphAgentAgainstEmulator(t *testing.T) {
	srv := emu(t)
	mb := emulator.DemoSharedMailbox
	body := func(i int) []byte {
		return []byte(fmt.Sprintf("Message-ID: <graph-%d@mailgate.test>\r\nSubject: g %d\r\n\r\n%s\r\n", i, i, strings.Repeat("graph body ", 200)))
	}
	for i := range 1000 {
		if _, err := srv.GraphDeliver(mb, body(i)); err != nil {
			t.Fatal(err)
		}
	}
	mgr := oauth.NewManager(oauth.NewMemoryStore(), nil)
	p := profile(t, srv, "graph")
	p.Scopes = []string{"https://graph.microsoft.com/.default"}
	gc := graph.New(graph.Options{Endpoint: srv.URL(), HTTPClient: p.HTTPClient,
		Bearer: mgr.Bearer(p, nil)})
	dir := t.TempDir()
	st := sqliteStore(t, dir)
	md, err := sink.NewMaildir(sink.MaildirOptions{Path: filepath.Join(dir, "inbox")})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := mailbox.ParseAfter("seen")
	a := &agent.Mailbox{Name: "g", Sink: md, After: after, BatchSize: 100,
		Dialer: mailbox.NewGraph(mailbox.GraphOptions{Name: "g", Client: gc, Username: mb, PageSize: 10})}
	srv.InjectFault(emulator.Fault{Status: 429, RetryAfter: time.Second, Count: 4, Route: "graph"})
	s, err := agent.RunOnce(t.Context(), a, app.AgentLedger(st), nil, nil)
	if err != nil || s.Delivered != 1000 {
		t.Fatalf("%+v %v", s, err)
	}
	var want [][]byte
	for i := range 1000 {
		want = append(want, body(i))
	}
	maildirHolds(t, filepath.Join(dir, "inbox"), want)
	if read, _ := srv.GraphRead(mb, "<graph-500@mailgate.test>"); !read {
		t.Error("not marked read")
	}
	// new mail, then a stale delta link: a full resync, nothing twice
	for i := 1000; i < 1010; i++ {
		srv.GraphDeliver(mb, body(i))
	}
	srv.ExpireDeltaTokens()
	s, err = agent.RunOnce(t.Context(), a, app.AgentLedger(st), nil, nil)
	if err != nil || s.Delivered != 10 || s.Duplicates != 0 {
		t.Fatalf("after 410: %+v %v", s, err)
	}
	s, err = agent.RunOnce(t.Context(), a, app.AgentLedger(st), nil, nil)
	if err != nil || s.Delivered != 0 {
		t.Fatalf("third run: %+v %v", s, err)
	}
}

// TestGraphErrorsNameTheFix: an access-policy denial and a missing Graph
// permission each come back with what to change.
func TestGraphErrorsNameTheFix(t *testing.T) {
	srv := emu(t)
	mgr := oauth.NewManager(oauth.NewMemoryStore(), nil)
	p := profile(t, srv, "graph")
	p.Scopes = []string{"https://graph.microsoft.com/.default"}
	gc := graph.New(graph.Options{Endpoint: srv.URL(), HTTPClient: p.HTTPClient,
		Bearer: mgr.Bearer(p, nil)})
	srv.Tenant().DenyGraphAccess(emulator.DemoAppID, emulator.DemoSharedMailbox)
	_, _, err := gc.Delta(t.Context(), emulator.DemoSharedMailbox, "inbox", "", 10)
	var ge *graph.Error
	if !asGraph(err, &ge) || !strings.Contains(ge.Hint(), "ApplicationAccessPolicy") {
		t.Errorf("access policy: %v", err)
	}
	if err := srv.Tenant().RevokeAppRoles(emulator.DemoAppID, "https://graph.microsoft.com", "Mail.ReadWrite", "Mail.Send"); err != nil {
		t.Fatal(err)
	}
	mgr.Invalidate(p.Name, nil)
	_, _, err = gc.Delta(t.Context(), emulator.DemoInvoicesMailbox, "inbox", "", 10)
	if !asGraph(err, &ge) || !strings.Contains(ge.Hint(), "Mail.ReadWrite") {
		t.Errorf("no role: %v", err)
	}
}

func asGraph(err error, ge **graph.Error) bool {
	e, ok := err.(*graph.Error)
	if ok {
		*ge = e
	}
	return ok
}
