package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/mailbox"
	"github.com/mailgate/mailgate/internal/sink"
	"github.com/mailgate/mailgate/internal/store"
)

// memServer is an in-memory IMAP-like folder with UIDs, \Seen and
// expunge, standing in for the server in crash-window tests (the real
// server tests run against Dovecot).
type memServer struct {
	mu       sync.Mutex
	validity string
	next     int
	msgs     map[int]string
	seen     map[int]bool
	failAck  int  // fail the next n Ack calls
	failAt   int  // fail Fetch after this many deliveries (0 = never)
	pop      bool // the scan lists every message, like POP3's UIDL
	// undoDeletes: the next n Ack calls with delete succeed but delete
	// nothing (a POP3 session dropped before its QUIT)
	undoDeletes int
}

func newServer(n int) *memServer {
	s := &memServer{validity: "100", next: 1, msgs: map[int]string{}, seen: map[int]bool{}}
	for range n {
		s.add()
	}
	return s
}

func (s *memServer) add() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs[s.next] = fmt.Sprintf("Message-ID: <m%d@test>\r\n\r\nbody %d\r\n", s.next, s.next)
	s.next++
}

func (s *memServer) Dial(context.Context) (mailbox.Conn, error) { return &memConn{s: s}, nil }

type memConn struct{ s *memServer }

func (c *memConn) uids() []int {
	var u []int
	for k := range c.s.msgs {
		u = append(u, k)
	}
	sort.Ints(u)
	return u
}

func (c *memConn) Scan(_ context.Context, cur mailbox.Cursor) (*mailbox.Scan, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	sc := &mailbox.Scan{Validity: c.s.validity, Next: mailbox.Cursor{Validity: c.s.validity, Last: cur.Last}}
	last, _ := strconv.Atoi(cur.Last)
	resync := cur.Validity != "" && cur.Validity != c.s.validity
	for _, u := range c.uids() {
		if !resync && !c.s.pop && u <= last {
			continue
		}
		it := mailbox.Item{UID: strconv.Itoa(u), Key: fmt.Sprintf("mb/imap/%s/%d", c.s.validity, u), Size: int64(len(c.s.msgs[u]))}
		if resync {
			it.MessageID = strings.TrimSuffix(strings.TrimPrefix(strings.SplitN(c.s.msgs[u], "\r\n", 2)[0], "Message-ID: "), "")
		}
		sc.Items = append(sc.Items, it)
		sc.Next.Last = strconv.Itoa(u)
	}
	return sc, nil
}

func (c *memConn) Fetch(_ context.Context, items []mailbox.Item, deliver func(mailbox.Item, io.Reader) error) error {
	for i, it := range items {
		if c.s.failAt > 0 && i == c.s.failAt {
			return errors.New("connection dropped")
		}
		u, _ := strconv.Atoi(it.UID)
		c.s.mu.Lock()
		body, ok := c.s.msgs[u]
		c.s.mu.Unlock()
		if !ok {
			continue
		}
		if err := deliver(it, strings.NewReader(body)); err != nil {
			return err
		}
	}
	return nil
}

func (c *memConn) Ack(_ context.Context, items []mailbox.Item, a mailbox.After) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.s.failAck > 0 {
		c.s.failAck--
		return errors.New("ack failed")
	}
	if a.Kind == "delete" && c.s.undoDeletes > 0 {
		c.s.undoDeletes--
		return nil
	}
	for _, it := range items {
		if !strings.HasPrefix(it.Key, "mb/imap/"+c.s.validity+"/") {
			continue
		}
		u, _ := strconv.Atoi(it.UID)
		switch a.Kind {
		case "seen":
			c.s.seen[u] = true
		case "delete":
			delete(c.s.msgs, u)
		}
	}
	return nil
}

func (c *memConn) Close() error { return nil }

func setup(t *testing.T, srv *memServer, after string) (*Mailbox, storeLedger, *sink.Maildir, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(dir, "db"), &store.Options{Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	md, err := sink.NewMaildir(sink.MaildirOptions{Path: filepath.Join(dir, "inbox")})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := mailbox.ParseAfter(after)
	return &Mailbox{Name: "mb", Dialer: srv, Sink: md, After: a, BatchSize: 7}, storeLedger{st}, md, filepath.Join(dir, "inbox")
}

func count(t *testing.T, dir string) int {
	es, err := os.ReadDir(filepath.Join(dir, "new"))
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func TestRunOnceDeliversOnceAndAcks(t *testing.T) {
	for _, after := range []string{"seen", "delete", "keep"} {
		t.Run(after, func(t *testing.T) {
			srv := newServer(30)
			mb, st, _, dir := setup(t, srv, after)
			s, err := RunOnce(t.Context(), mb, st, nil, nil)
			if err != nil || s.Delivered != 30 || s.Acked != 30 {
				t.Fatalf("%+v %v", s, err)
			}
			if count(t, dir) != 30 {
				t.Fatalf("%d files", count(t, dir))
			}
			switch after {
			case "seen":
				if len(srv.seen) != 30 {
					t.Errorf("%d seen", len(srv.seen))
				}
			case "delete":
				if len(srv.msgs) != 0 {
					t.Errorf("%d left", len(srv.msgs))
				}
			}
			srv.add()
			s, err = RunOnce(t.Context(), mb, st, nil, nil)
			if err != nil || s.Delivered != 1 || s.Duplicates != 0 || count(t, dir) != 31 {
				t.Fatalf("second run %+v %v, %d files", s, err, count(t, dir))
			}
		})
	}
}

// TestDeleteRedoneWhenStillListed: messages acknowledged with a delete
// that are listed again (the POP3 session that deleted them was dropped
// before its QUIT) are deleted again by the next run, not left on the
// server for good and not delivered again; with seen, acknowledged
// messages listed again are left alone.
func TestDeleteRedoneWhenStillListed(t *testing.T) {
	for _, after := range []string{"delete", "seen"} {
		t.Run(after, func(t *testing.T) {
			srv := newServer(20)
			srv.pop, srv.undoDeletes = true, 1
			mb, st, _, dir := setup(t, srv, after)
			s, err := RunOnce(t.Context(), mb, st, nil, nil)
			if err != nil || s.Delivered != 20 {
				t.Fatalf("%+v %v", s, err)
			}
			left := len(srv.msgs)
			if after == "delete" && left != mb.BatchSize {
				t.Fatalf("%d left after the first run, want the first batch's %d", left, mb.BatchSize)
			}
			s, err = RunOnce(t.Context(), mb, st, nil, nil)
			if err != nil || s.Delivered != 0 || s.Duplicates != 0 || count(t, dir) != 20 {
				t.Fatalf("second run %+v %v, %d files", s, err, count(t, dir))
			}
			want := 0
			if after == "seen" {
				want = 20
			}
			if len(srv.msgs) != want {
				t.Errorf("%d left on the server after the second run, want %d", len(srv.msgs), want)
			}
		})
	}
}

func TestCrashWindows(t *testing.T) {
	t.Run("fetch dies half-way", func(t *testing.T) {
		srv := newServer(20)
		srv.failAt = 3
		mb, st, _, dir := setup(t, srv, "seen")
		if _, err := RunOnce(t.Context(), mb, st, nil, nil); err == nil {
			t.Fatal("want the fetch error")
		}
		if len(srv.seen) != 3 || count(t, dir) != 3 {
			t.Fatalf("the 3 delivered must be synced and acked: %d seen, %d files", len(srv.seen), count(t, dir))
		}
		srv.failAt = 0
		s, err := RunOnce(t.Context(), mb, st, nil, nil)
		if err != nil || count(t, dir) != 20 || len(srv.seen) != 20 || s.Delivered != 17 {
			t.Fatalf("%+v %v: %d files %d seen", s, err, count(t, dir), len(srv.seen))
		}
	})
	t.Run("server ack fails after the ledger recorded delivery", func(t *testing.T) {
		srv := newServer(10)
		srv.failAck = 1
		mb, st, _, dir := setup(t, srv, "delete")
		if _, err := RunOnce(t.Context(), mb, st, nil, nil); err == nil {
			t.Fatal("want the ack error")
		}
		if len(srv.msgs) != 10 {
			t.Fatal("deleted although the ack failed")
		}
		// the second batch was fetched while the first was synced; when
		// the first one's ack failed it was still made durable and
		// recorded, so both are replayed
		s, err := RunOnce(t.Context(), mb, st, nil, nil)
		if err != nil || s.Replayed != 10 || s.Delivered != 0 || len(srv.msgs) != 0 || count(t, dir) != 10 {
			t.Fatalf("%+v %v: %d left, %d files", s, err, len(srv.msgs), count(t, dir))
		}
	})
	t.Run("crash before the ledger: the sink recognises the replay", func(t *testing.T) {
		srv := newServer(5)
		mb, st, md, dir := setup(t, srv, "seen")
		// the sink got the messages, the process died before the ledger
		for _, u := range []int{1, 2} {
			d, _ := md.Begin(t.Context(), sink.Message{Key: fmt.Sprintf("mb/imap/100/%d", u)})
			_, _ = io.WriteString(d, srv.msgs[u])
			_, _ = d.Commit(t.Context())
		}
		_ = md.Sync(t.Context())
		s, err := RunOnce(t.Context(), mb, st, nil, nil)
		if err != nil || s.Duplicates != 2 || s.Delivered != 3 || count(t, dir) != 5 {
			t.Fatalf("%+v %v: %d files", s, err, count(t, dir))
		}
	})
	t.Run("uidvalidity change", func(t *testing.T) {
		srv := newServer(6)
		mb, st, _, dir := setup(t, srv, "keep")
		if _, err := RunOnce(t.Context(), mb, st, nil, nil); err != nil {
			t.Fatal(err)
		}
		srv.mu.Lock()
		srv.validity = "200" // the folder was recreated: same messages, new UIDs
		srv.mu.Unlock()
		srv.add()
		s, err := RunOnce(t.Context(), mb, st, nil, nil)
		if err != nil || s.Rekeyed != 6 || s.Delivered != 1 || count(t, dir) != 7 {
			t.Fatalf("%+v %v: %d files", s, err, count(t, dir))
		}
	})
}

// pipeDialer hands out connections that acknowledge while a fetch is in
// progress (like IMAP's pipelined UID STORE) and check, at every Ack, that
// each message is already durable in the maildir and recorded in the
// ledger.
type pipeDialer struct {
	t      *testing.T
	s      *memServer
	ledger storeLedger
	dir    string
	acks   atomic.Int32
	acked  atomic.Int32
}

func (d *pipeDialer) Dial(context.Context) (mailbox.Conn, error) {
	return &pipeConn{memConn: &memConn{s: d.s}, d: d}, nil
}

type pipeConn struct {
	*memConn
	d *pipeDialer
}

func (c *pipeConn) AckDuringFetch(mailbox.After) bool { return true }

func (c *pipeConn) Ack(ctx context.Context, items []mailbox.Item, a mailbox.After) error {
	d := c.d
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.Key
	}
	states, err := d.ledger.Delivered(ctx, "mb", keys)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if states[k] == 0 {
			d.t.Errorf("ack of %s before the ledger recorded it", k)
		}
	}
	es, err := os.ReadDir(filepath.Join(d.dir, "new"))
	if err != nil {
		return err
	}
	if n := int(d.acked.Load()) + len(items); len(es) < n {
		d.t.Errorf("ack of %d messages with %d in new/ (%d acked before)", len(items), len(es), d.acked.Load())
	}
	d.acks.Add(1)
	d.acked.Add(int32(len(items)))
	return c.memConn.Ack(ctx, items, a)
}

func TestPipelinedAckAfterSyncAndLedger(t *testing.T) {
	srv := newServer(50)
	mb, st, _, dir := setup(t, srv, "seen")
	pd := &pipeDialer{t: t, s: srv, ledger: st, dir: dir}
	mb.Dialer = pd
	s, err := RunOnce(t.Context(), mb, st, nil, nil)
	if err != nil || s.Delivered != 50 || s.Acked != 50 || len(srv.seen) != 50 || count(t, dir) != 50 {
		t.Fatalf("%+v %v: %d seen, %d files", s, err, len(srv.seen), count(t, dir))
	}
	if pd.acks.Load() != 8 { // 50 messages in batches of 7
		t.Errorf("%d acks, want one per batch (8)", pd.acks.Load())
	}
	// everything acknowledged is recorded as such: nothing to replay
	if pending, err := st.Unacked(t.Context(), "mb"); err != nil || len(pending) != 0 {
		t.Fatalf("%d unacked after the run: %v", len(pending), err)
	}
	srv.add()
	s, err = RunOnce(t.Context(), mb, st, nil, nil)
	if err != nil || s.Delivered != 1 || s.Replayed != 0 || count(t, dir) != 51 {
		t.Fatalf("second run %+v %v", s, err)
	}
}

func TestHeaderTap(t *testing.T) {
	tests := []struct{ msg, want string }{
		{"Subject: x\r\nMessage-ID: <a@b>\r\n\r\nbody", "<a@b>"},
		{"message-id:\r\n <folded@b>\r\nX: y\r\n\r\n", "<folded@b>"},
		{"Subject: lf only\nMessage-Id: <lf@b>\n\nMessage-ID: <body@b>\n", "<lf@b>"},
		{"Subject: none\r\n\r\nMessage-ID: <in-body@b>\r\n", ""},
		{"no header end Message-ID: <x>", ""},
	}
	for _, tt := range tests {
		tap := &headerTap{r: iotest(tt.msg)}
		if b, _ := io.ReadAll(tap); string(b) != tt.msg {
			t.Fatal("bytes changed")
		}
		if got := tap.messageID(); got != tt.want {
			t.Errorf("%q: got %q want %q", tt.msg, got, tt.want)
		}
	}
}

// iotest reads s three bytes at a time, to cross the header end.
func iotest(s string) io.Reader { return &slowReader{s: s} }

type slowReader struct{ s string }

func (r *slowReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	n := copy(p[:min(3, len(p))], r.s)
	r.s = r.s[n:]
	return n, nil
}

func FuzzHeaderTap(f *testing.F) {
	f.Add("Message-ID: <a@b>\r\n\r\nx")
	f.Add("\r\n\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		tap := &headerTap{r: iotest(s)}
		b, _ := io.ReadAll(tap)
		if string(b) != s {
			t.Fatal("bytes changed")
		}
		_ = tap.messageID()
	})
}

// TestLimiter: the bucket lets a burst of rate through at once, then one
// event every 1/rate, and refills while nobody asks.
func TestLimiter(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	ms := time.Millisecond
	tests := []struct {
		name string
		rate int
		at   []time.Duration // offsets from t0 of successive reservations
		want []time.Duration // waits
	}{
		{"burst then paced", 4, []time.Duration{0, 0, 0, 0, 0, 0}, []time.Duration{0, 0, 0, 0, 250 * ms, 500 * ms}},
		{"refills while idle", 2, []time.Duration{0, 0, 0, 2000 * ms, 2000 * ms, 2000 * ms}, []time.Duration{0, 0, 500 * ms, 0, 0, 500 * ms}},
		{"steady rate never waits", 10, []time.Duration{0, 100 * ms, 200 * ms, 300 * ms}, []time.Duration{0, 0, 0, 0}},
		{"default rate", 0, []time.Duration{0}, []time.Duration{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLimiter(tt.rate)
			for i, at := range tt.at {
				if got := l.reserve(t0.Add(at)); got != tt.want[i] {
					t.Errorf("reservation %d at +%v waits %v, want %v", i, at, got, tt.want[i])
				}
			}
		})
	}
	if l := NewLimiter(0); l.burst != DefaultLoginRate {
		t.Errorf("default burst %d, want %d", l.burst, DefaultLoginRate)
	}
}

// idleConn is a memConn whose Wait blocks until its context ends, or
// returns after max when renew is set; it counts the connections waiting
// and the IDLE commands issued.
type idleConn struct {
	*memConn
	waiting, waits *atomic.Int32
	maxes          chan time.Duration
	renew          bool
}

func (c *idleConn) Wait(ctx context.Context, max time.Duration) error {
	c.waits.Add(1)
	select {
	case c.maxes <- max:
	default:
	}
	if c.renew {
		t := time.NewTimer(max)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.waiting.Add(1)
	defer c.waiting.Add(-1)
	<-ctx.Done()
	return ctx.Err()
}

type idleDialer struct {
	s                     *memServer
	dials, waiting, waits *atomic.Int32
	maxes                 chan time.Duration
	renew                 bool
}

func (d idleDialer) Dial(context.Context) (mailbox.Conn, error) {
	d.dials.Add(1)
	return &idleConn{memConn: &memConn{s: d.s}, waiting: d.waiting, waits: d.waits, maxes: d.maxes, renew: d.renew}, nil
}

// serveIdle serves n idle mailboxes of one host through dialers made by
// dialer and returns the supervisor and its stop function.
func serveIdle(t *testing.T, n int, sup *Supervisor, dialer func(*memServer) mailbox.Dialer) func() {
	t.Helper()
	for i := range n {
		srv := newServer(1)
		mb, st, _, _ := setup(t, srv, "seen")
		mb.Name = fmt.Sprintf("mb%d", i)
		mb.Host = "outlook.office365.com"
		mb.Idle = true
		mb.Dialer = dialer(srv)
		sup.Mailboxes = append(sup.Mailboxes, mb)
		sup.Ledger = st
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { sup.Serve(ctx, time.Second); close(done) }()
	return func() { cancel(); <-done }
}

// TestSupervisorHoldsEveryIdleMailbox: the login rate of a host paces new
// connections but never bounds how many stay open: 40 IDLE mailboxes on
// one host all wait at once (the former per-host cap held 8).
func TestSupervisorHoldsEveryIdleMailbox(t *testing.T) {
	const n = 40
	var dials, waiting, waits atomic.Int32
	sup := &Supervisor{LoginRate: 1000}
	stop := serveIdle(t, n, sup, func(s *memServer) mailbox.Dialer {
		return idleDialer{s: s, dials: &dials, waiting: &waiting, waits: &waits}
	})
	defer stop()
	deadline := time.Now().Add(60 * time.Second)
	for waiting.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d mailboxes in IDLE at once", waiting.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, st := range sup.Statuses() {
		if st.Total != 1 || st.LastError != nil {
			t.Errorf("%s: delivered %d, err %v", st.Mailbox, st.Total, st.LastError)
		}
	}
	if d := dials.Load(); d != n {
		t.Errorf("%d logins for %d mailboxes", d, n)
	}
}

// TestSupervisorRenewsIdle: an IDLE wait lasts IdleRenew (by default
// DefaultIdleRenew, under RFC 2177's 29 minutes) and is then re-issued on
// the same connection.
func TestSupervisorRenewsIdle(t *testing.T) {
	if DefaultIdleRenew >= 29*time.Minute {
		t.Errorf("DefaultIdleRenew %v, want under 29 minutes", DefaultIdleRenew)
	}
	for _, tt := range []struct {
		name  string
		renew time.Duration
		want  time.Duration
	}{
		{"default", 0, DefaultIdleRenew},
		{"set", 20 * time.Millisecond, 20 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var dials, waiting, waits atomic.Int32
			maxes := make(chan time.Duration, 1)
			sup := &Supervisor{IdleRenew: tt.renew}
			stop := serveIdle(t, 1, sup, func(s *memServer) mailbox.Dialer {
				return idleDialer{s: s, dials: &dials, waiting: &waiting, waits: &waits, maxes: maxes, renew: tt.renew > 0}
			})
			defer stop()
			if got := <-maxes; got != tt.want {
				t.Errorf("IDLE for %v, want %v", got, tt.want)
			}
			if tt.renew == 0 {
				return
			}
			deadline := time.Now().Add(60 * time.Second)
			for waits.Load() < 3 {
				if time.Now().After(deadline) {
					t.Fatalf("%d IDLE commands", waits.Load())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if d := dials.Load(); d != 1 {
				t.Errorf("%d connections, want IDLE re-issued on one", d)
			}
		})
	}
}

// refusingSink refuses the nth delivery at Commit, as a webhook answering
// 500 or a command exiting 1 would.
type refusingSink struct {
	sink.Sink
	n, seen int
}

type refusedDelivery struct{ sink.Delivery }

func (refusedDelivery) Commit(context.Context) (sink.Receipt, error) {
	return sink.Receipt{}, errors.New("sink: refused")
}

func (s *refusingSink) Begin(ctx context.Context, m sink.Message) (sink.Delivery, error) {
	d, err := s.Sink.Begin(ctx, m)
	if err != nil {
		return nil, err
	}
	if s.seen++; s.seen == s.n {
		return refusedDelivery{d}, nil
	}
	return d, nil
}

// TestStatsCountFetchedAndFailed: a run the sink stops half-way reports
// what it fetched, delivered and failed; the failed message comes again.
func TestStatsCountFetchedAndFailed(t *testing.T) {
	srv := newServer(5)
	mb, st, _, dir := setup(t, srv, "seen")
	mb.Sink = &refusingSink{Sink: mb.Sink, n: 3}
	s, err := RunOnce(t.Context(), mb, st, nil, nil)
	// small messages are read ahead of the sink: at least 3 were fetched
	if err == nil || s.Fetched < 3 || s.Failed != 1 || s.Delivered != 2 {
		t.Fatalf("first run: %+v %v; want 3 or more fetched, 1 failed, 2 delivered and the sink's error", s, err)
	}
	s, err = RunOnce(t.Context(), mb, st, nil, nil)
	if err != nil || s.Fetched != 3 || s.Failed != 0 || s.Delivered != 3 || count(t, dir) != 5 {
		t.Fatalf("second run: %+v %v, %d files", s, err, count(t, dir))
	}
}

// TestDelivererOrderAndSizes: small messages queued, large ones and ones
// larger than the server announced streamed; all arrive whole, in order.
func TestDelivererOrderAndSizes(t *testing.T) {
	dir := t.TempDir()
	md, err := sink.NewMaildir(sink.MaildirOptions{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer md.Close()
	var st Stats
	d := newDeliverer(t.Context(), &Mailbox{Name: "mb", Sink: md}, &st, time.Now(), nil)
	defer d.close()
	bodies := []string{
		"Subject: small\r\n\r\nx\r\n",
		"Subject: big\r\n\r\n" + strings.Repeat("b", maxQueued+10),
		"Subject: lied\r\n\r\n" + strings.Repeat("l", maxQueued+10), // announced as small
		"Subject: small again\r\n\r\ny\r\n",
	}
	for i, b := range bodies {
		size := int64(len(b))
		if i == 2 {
			size = 100
		}
		it := mailbox.Item{Key: fmt.Sprintf("mb/k/%d", i), UID: fmt.Sprint(i), Size: size}
		if err := d.deliver(it, strings.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.wait(); err != nil {
		t.Fatal(err)
	}
	entries, delivered, _ := d.take()
	if len(entries) != 4 || len(delivered) != 4 || st.Delivered != 4 || st.Fetched != 4 {
		t.Fatalf("%d entries, %d delivered, %+v", len(entries), len(delivered), st)
	}
	if err := md.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i, e := range entries {
		if e.Key != fmt.Sprintf("mb/k/%d", i) {
			t.Errorf("entry %d is %s: out of order", i, e.Key)
		}
		got, err := os.ReadFile(e.SinkRef)
		if err != nil || string(got) != bodies[i] {
			t.Errorf("message %d: %d bytes, want %d (%v)", i, len(got), len(bodies[i]), err)
		}
	}
}

// syncGate holds the sink's Sync until released, and says when one began.
type syncGate struct {
	sink.Sink
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (s *syncGate) Sync(ctx context.Context) error {
	s.once.Do(func() { close(s.entered) })
	<-s.release
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.Sink.Sync(ctx)
}

// TestServeStopFinishesTheBatch: cancelling Serve's context does not
// cancel the run in progress: the batch being synced is made durable,
// recorded and acknowledged, then Serve returns.
func TestServeStopFinishesTheBatch(t *testing.T) {
	srv := newServer(3)
	mb, st, _, dir := setup(t, srv, "seen")
	gate := &syncGate{Sink: mb.Sink, entered: make(chan struct{}), release: make(chan struct{})}
	mb.Sink = gate
	sup := &Supervisor{Mailboxes: []*Mailbox{mb}, Ledger: st}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { sup.Serve(ctx, time.Minute); close(done) }()
	select {
	case <-gate.entered:
	case <-time.After(time.Minute):
		t.Fatal("no Sync began")
	}
	stop()
	close(gate.release)
	<-done
	sts := sup.Statuses()
	if len(sts) != 1 || sts[0].LastError != nil || sts[0].Total != 3 {
		t.Fatalf("statuses %+v", sts)
	}
	if count(t, dir) != 3 || len(srv.seen) != 3 {
		t.Fatalf("%d files, %d seen; want 3 and 3", count(t, dir), len(srv.seen))
	}
	if pending, err := st.Unacked(t.Context(), mb.Name); err != nil || len(pending) != 0 {
		t.Fatalf("unacknowledged in the ledger: %v %v", pending, err)
	}
}
