package outbox

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailgate/mailgate/internal/smtp"
	"github.com/mailgate/mailgate/internal/store"
)

// recordCheck is a submission server (go-smtp's, which offers PIPELINING)
// that, each time it takes a message (its final dot), reads from the
// store whether the message it took before on the connection is recorded
// as sent yet.
type recordCheck struct {
	st  *store.Store
	ids map[string]int64 // Subject -> outbox id

	mu       sync.Mutex
	prev     int64
	taken    int
	unrecord []string // messages still unrecorded when the next was taken
}

type recordSession struct{ rc *recordCheck }

func (s *recordSession) Reset()                                 {}
func (s *recordSession) Logout() error                          { return nil }
func (s *recordSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (s *recordSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (s *recordSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r) // returns at the final dot
	if err != nil {
		return err
	}
	rc := s.rc
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.prev != 0 {
		m, err := rc.st.OutboxMessageStatus(context.Background(), rc.prev)
		if err != nil || m.State != store.OutboxSent {
			rc.unrecord = append(rc.unrecord, fmt.Sprintf("%d (%v)", rc.prev, err))
		}
	}
	subj := strings.TrimSpace(strings.SplitN(strings.TrimPrefix(string(b), "Subject: "), "\r\n", 2)[0])
	rc.prev = rc.ids[subj]
	rc.taken++
	return nil
}

// TestNextMessageWaitsForTheRecord: the connection sends the next
// message's envelope and content while the previous one is being recorded
// as sent, but the server never takes a message (its final dot) before the
// one it took before is recorded: a crash leaves at most one accepted,
// unrecorded message per connection.
func TestNextMessageWaitsForTheRecord(t *testing.T) {
	st := openStore(t)
	rc := &recordCheck{st: st, ids: map[string]int64{}}
	const n = 40
	for i := range n {
		subj := fmt.Sprintf("m%02d", i)
		id, err := st.Enqueue(t.Context(), "s", "a@example.com", []string{"b@example.com"}, []byte("Subject: "+subj+"\r\n\r\nbody\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		rc.ids[subj] = id
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) { return &recordSession{rc: rc}, nil }))
	srv.Domain = "record.localhost"
	go srv.Serve(ln)
	defer srv.Close()
	pipelined := make(chan bool, 1)
	snd := &Sender{Name: "s", Dial: func(ctx context.Context) (*smtp.Client, error) {
		c, err := smtp.Dial(ctx, ln.Addr().String(), &smtp.Options{Security: "none"})
		if err == nil {
			select {
			case pipelined <- c.Pipelining():
			default:
			}
		}
		return c, err
	}}
	w := &Worker{Store: st, Senders: []*Sender{snd}, Poll: 50 * time.Millisecond, Backoff: time.Hour}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		c, err := st.OutboxCounts(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if c[store.OutboxSent] == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox after 2 min: %v, stats %+v", c, w.Stats())
		}
	}
	stop()
	<-done
	if !<-pipelined {
		t.Fatal("the server offers PIPELINING but the client does not use it")
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.taken != n || len(rc.unrecord) > 0 {
		t.Fatalf("taken %d of %d; taken while the previous was unrecorded: %v", rc.taken, n, rc.unrecord)
	}
	if s := w.Stats(); s.Sent != n || s.Recovered != 0 {
		t.Errorf("stats %+v", s)
	}
}
