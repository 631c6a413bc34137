package outbox

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailgate/mailgate/internal/smtp"
)

// testSMTP is the package tests' in-process submission server (go-smtp's,
// which offers PIPELINING): it takes every message and records, by
// Subject, when and how often it took each. Its knobs, set under mu:
// busy answers DATA with "451 4.7.500 Server busy" until then; onTake,
// when set, is called (under mu) with each message's Subject as the
// server takes it (its final dot), before it is recorded.
type testSMTP struct {
	addr string

	mu       sync.Mutex
	busy     time.Time
	onTake   func(subject string)
	arrived  map[string]time.Time // Subject -> arrival
	count    map[string]int       // Subject -> times accepted
	refusals []time.Time          // DATA answered busy
}

// startSMTP starts a testSMTP on a loopback port, closed when the test
// ends.
func startSMTP(t *testing.T) *testSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testSMTP{addr: ln.Addr().String(), arrived: map[string]time.Time{}, count: map[string]int{}}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) { return &testSession{ts: ts}, nil }))
	srv.Domain = "outbox-test.localhost"
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ts
}

// dial is a Sender's Dial to the server, without TLS.
func (ts *testSMTP) dial(ctx context.Context) (*smtp.Client, error) {
	return smtp.Dial(ctx, ts.addr, &smtp.Options{Security: "none"})
}

type testSession struct{ ts *testSMTP }

func (s *testSession) Reset()                                 {}
func (s *testSession) Logout() error                          { return nil }
func (s *testSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (s *testSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (s *testSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r) // returns at the final dot
	if err != nil {
		return err
	}
	now := time.Now()
	ts := s.ts
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if now.Before(ts.busy) {
		ts.refusals = append(ts.refusals, now)
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 7, 500}, Message: "Server busy"}
	}
	subj := strings.TrimSpace(strings.SplitN(strings.TrimPrefix(string(b), "Subject: "), "\r\n", 2)[0])
	if ts.onTake != nil {
		ts.onTake(subj)
	}
	ts.arrived[subj] = now
	ts.count[subj]++
	return nil
}
