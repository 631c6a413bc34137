package app

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/agent"
	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/sink"
	"github.com/mailgate/mailgate/internal/store"
)

// leaseInstance is one serve instance's generation and leaser on a
// store, ticked by hand.
type leaseInstance struct {
	g  *generation
	lz *leaser
	st *store.Store
}

// newLeaseInstance builds n mailboxes whose server refuses connections
// (their agents retry with backoff: the leases are what is tested).
func newLeaseInstance(t *testing.T, dsn string, n int, ttl time.Duration) *leaseInstance {
	t.Helper()
	st, err := store.Open(t.Context(), dsn, &store.Options{Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var src strings.Builder
	src.WriteString("profiles:\n  - {name: p, provider: microsoft, grant: client_credentials, tenant: t.example, client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, client_secret: s1}\nsinks:\n  - {name: x, type: maildir, path: ./x}\nmailboxes:\n")
	for i := range n {
		fmt.Fprintf(&src, "  - {name: m%d, protocol: imap, host: 127.0.0.1, port: 1, username: m%d@t.example, profile: p, sink: x}\n", i, i)
	}
	dir := filepath.Dir(strings.TrimPrefix(dsn, "sqlite:"))
	cfg, err := config.ParseWith([]byte(src.String()), filepath.Join(dir, "mailgate.yaml"), func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	tel := newTelemetry()
	g, err := newGeneration(st, cfg, tel, agent.NewLogins(0), log, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := &leaseInstance{g: g, st: st}
	in.lz = newLeaser(st, newInstanceID(""), ttl, time.Second, log, tel, func() *generation { return in.g })
	t.Cleanup(func() {
		in.lz.draining.Store(true)
		in.stop()
		in.lz.watchdog.Stop()
	})
	return in
}

// stop stops the agents as serve's stop does (the outbox is not started
// here).
func (in *leaseInstance) stop() {
	for _, u := range in.g.units {
		u.retire()
	}
}

// running is how many of the instance's units run.
func (in *leaseInstance) running() int {
	n := 0
	for _, u := range in.g.units {
		u.mu.Lock()
		if u.running {
			n++
		}
		u.mu.Unlock()
	}
	return n
}

// settled waits for the mailboxes being given up to be released.
func (in *leaseInstance) settled(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		in.lz.mu.Lock()
		n := len(in.lz.leaving)
		in.lz.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mailboxes still being given up", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLeaserBalances: one instance takes every mailbox; a second one
// joining gets half once the first gave its excess up (its agents stopped
// first); each mailbox is held by exactly one instance at every step and
// runs only there; a graceful stop releases the leases at once.
func TestLeaserBalances(t *testing.T) {
	const n = 10
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "db")
	a := newLeaseInstance(t, dsn, n, time.Minute)
	b := newLeaseInstance(t, dsn, n, time.Minute)
	ctx := t.Context()
	check := func(step string, wantA, wantB int) {
		t.Helper()
		leases, err := a.st.Leases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		owners := map[string]int{}
		for _, l := range leases {
			if l.Live {
				owners[l.Owner]++
			}
		}
		if owners[a.lz.id] != wantA || owners[b.lz.id] != wantB {
			t.Fatalf("%s: leases %v, want %d for a and %d for b", step, owners, wantA, wantB)
		}
		if a.running() != wantA || b.running() != wantB {
			t.Fatalf("%s: %d and %d agents running, want %d and %d", step, a.running(), b.running(), wantA, wantB)
		}
	}
	a.lz.tick(ctx)
	check("a alone", n, 0)
	b.lz.tick(ctx) // b sees two instances but every lease is a's
	check("b joined", n, 0)
	a.lz.tick(ctx) // a gives its excess up
	a.settled(t)
	check("a gave up its excess", n/2, 0)
	b.lz.tick(ctx)
	check("b took the free ones", n/2, n/2)
	a.lz.tick(ctx)
	b.lz.tick(ctx)
	check("balanced", n/2, n/2)

	// a stops gracefully: its leases are free at once, and b takes them
	a.lz.draining.Store(true)
	a.stop()
	a.lz.release()
	if err := a.st.ForgetInstance(ctx, a.lz.id); err != nil {
		t.Fatal(err)
	}
	b.lz.tick(ctx)
	check("a stopped", 0, n)
}

// TestLeaserWatchdog: an instance whose renewals fail stops its agents
// before its leases could expire, and forgets them; once the store
// answers again, the leases are still its own in the store and are
// released instead of being left to expire.
func TestLeaserWatchdog(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "db")
	a := newLeaseInstance(t, dsn, 3, 3*time.Second)
	ctx := t.Context()
	// m0's lease is a dead instance's, expired: a takes it over
	if _, ok, err := a.st.AcquireLease(ctx, "m0", "ghost", -time.Second); err != nil || !ok {
		t.Fatal(ok, err)
	}
	a.lz.tick(ctx)
	if a.running() != 3 {
		t.Fatalf("%d agents running, want 3", a.running())
	}
	var m strings.Builder
	if _, err := a.lz.tel.reg.WriteTo(&m); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mailgate_lease_takeovers_total 1\n", `mailgate_instance_mailboxes{instance="` + a.lz.id + `"} 3`, `mailgate_instance_heartbeat_age_seconds{instance="` + a.lz.id + `"}`} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// no renewal from now on: the watchdog fires ttl - ttl/5 after the
	// last one started (a generous bound, not a measure)
	deadline := time.Now().Add(time.Minute)
	for a.running() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the agents still run after the leases could have expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if held := a.lz.serving(); len(held) != 0 {
		t.Fatalf("still holding %v", held)
	}
	// the store still names a as the owner of unexpired leases; a's next
	// tick releases them, then takes them anew with new epochs
	a.lz.draining.Store(true)
	a.lz.tick(ctx)
	leases, err := a.st.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		if l.Owner != "" {
			t.Fatalf("lease %+v not released after the watchdog", l)
		}
	}
	a.lz.draining.Store(false)
	a.lz.tick(ctx)
	if a.running() != 3 {
		t.Fatalf("%d agents running after the store came back, want 3", a.running())
	}
	for name, u := range a.g.units {
		want := int64(2)
		if name == "m0" {
			want = 3
		}
		if f := u.fence.Load(); f == nil || f.Epoch != want {
			t.Fatalf("%s: fence %+v after the new take, want epoch %d", name, f, want)
		}
	}
}

// runOnceApp opens an App on a SQLite store in a temporary directory with
// a maildir sink x and n mailboxes m0, m1, … on a host nothing answers.
func runOnceApp(t *testing.T, n int) (dir string, st *store.Store, a *App) {
	t.Helper()
	dir = t.TempDir()
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(dir, "db"), &store.Options{Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	yaml := `profiles:
  - {name: p, provider: microsoft, grant: client_credentials, tenant: t.example, client_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, client_secret: s1}
sinks:
  - {name: x, type: maildir, path: ./x}
mailboxes:
`
	for i := range n {
		yaml += fmt.Sprintf("  - {name: m%d, protocol: imap, host: 127.0.0.1, port: 1, username: m%d@t.example, profile: p, sink: x}\n", i, i)
	}
	cfg, err := config.ParseWith([]byte(yaml), filepath.Join(dir, "mailgate.yaml"), func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err = Open(t.Context(), cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	return dir, st, a
}

// TestRunOnceSkipsLeasedMailbox: `run --once` skips a mailbox whose lease
// another instance holds, naming it, reads the others under leases of its
// own, and releases those when done.
func TestRunOnceSkipsLeasedMailbox(t *testing.T) {
	_, st, a := runOnceApp(t, 2)
	if _, ok, err := st.AcquireLease(t.Context(), "m1", "serve-elsewhere", time.Minute); err != nil || !ok {
		t.Fatal(ok, err)
	}
	res, err := a.RunOnce(t.Context(), "", nil)
	if err != nil || len(res) != 2 {
		t.Fatalf("RunOnce = %+v, %v", res, err)
	}
	if res[0].ServedBy != "" || res[0].Err == nil { // m0 was read: its server refuses connections
		t.Errorf("m0: %+v, want read (and failed to connect)", res[0])
	}
	if res[1].ServedBy != "serve-elsewhere" || res[1].Err != nil {
		t.Errorf("m1: %+v, want skipped, served by serve-elsewhere", res[1])
	}
	ls, err := st.Leases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.Mailbox == "m0" && l.Owner != "" || l.Mailbox == "m1" && l.Owner != "serve-elsewhere" {
			t.Errorf("after the run: %+v", l)
		}
	}
}

// TestDeadRun: a lease of a `mailgate run` of this host whose process
// is gone may be taken at once; a live one's, another host's or a serve's
// may not.
func TestDeadRun(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	host := hostname()
	tests := []struct {
		owner string
		want  bool
	}{
		{fmt.Sprintf("run-%s-%d-abcdef", host, dead), true},
		{fmt.Sprintf("run-%s-%d-abcdef", host, os.Getppid()), false},
		{fmt.Sprintf("run-%s-%d-abcdef", host, os.Getpid()), false},
		{fmt.Sprintf("run-%s.elsewhere-%d-abcdef", host, dead), false},
		{fmt.Sprintf("%s-%d-abcdef", host, dead), false}, // a serve's
		{"run-" + host + "-x-abcdef", false},
	}
	for _, tc := range tests {
		if got := deadRun(tc.owner); got != tc.want {
			t.Errorf("deadRun(%q) = %v, want %v", tc.owner, got, tc.want)
		}
	}
}

// FuzzDeadRun: any owner string read from the store is classified without
// panicking, and only a run of this host can be called dead.
func FuzzDeadRun(f *testing.F) {
	host := hostname()
	for _, seed := range []string{"", "run-", "run-" + host + "-", "run-" + host + "-1-abc", "run-" + host + "--1-x",
		"run-" + host + "-99999999999999999999-x", host + "-1-abc", "run-other-1-abc"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, owner string) {
		if deadRun(owner) && !strings.HasPrefix(owner, "run-"+host+"-") {
			t.Fatalf("deadRun(%q) for an owner that is not a run of this host", owner)
		}
	})
}

// knows reports whether maildir sink s already holds key: a delivery of it
// is a duplicate.
func knows(t *testing.T, s sink.Sink, key string) bool {
	t.Helper()
	d, err := s.Begin(t.Context(), sink.Message{Mailbox: "m0", Key: key, Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	r, err := d.Commit(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	return r.Duplicate
}

// otherProcess delivers key into the maildir at path through a handle of
// its own, as another serve instance sharing the maildir does.
func otherProcess(t *testing.T, path, key string) {
	t.Helper()
	y, err := sink.NewMaildir(sink.MaildirOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	d, err := y.Begin(t.Context(), sink.Message{Mailbox: "m0", Key: key, Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write([]byte("Subject: from the other instance\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := y.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestLeaserTakeoverRescansSink: a dead instance wrote a message of m0
// into the shared maildir after this instance opened it, and died before
// recording it; taking m0's lease over makes the maildir sink read its
// directories again before m0's agent starts, so the message is a
// duplicate here. A lease this instance goes on holding reads nothing
// again.
func TestLeaserTakeoverRescansSink(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "db")
	a := newLeaseInstance(t, dsn, 2, time.Minute)
	ctx := t.Context()
	if _, ok, err := a.st.AcquireLease(ctx, "m0", "ghost", -time.Second); err != nil || !ok {
		t.Fatal(ok, err)
	}
	path := filepath.Join(filepath.Dir(strings.TrimPrefix(dsn, "sqlite:")), "x")
	x := a.g.rt.sinks["x"]
	if x == nil {
		t.Fatal("the generation did not open sink x")
	}
	otherProcess(t, path, "m0/imap/7/1") // after x was opened
	a.lz.tick(ctx)                       // takes m0 over from ghost, and m1
	if a.running() != 2 {
		t.Fatalf("%d agents running, want 2", a.running())
	}
	if !knows(t, x, "m0/imap/7/1") {
		t.Error("after the takeover the sink delivers the dead instance's message again")
	}
	a.lz.mu.Lock()
	left := len(a.lz.taken)
	a.lz.mu.Unlock()
	if left != 0 {
		t.Errorf("%d mailboxes still wait for their sinks to be read again", left)
	}
	// renewing reads nothing again: a key written now stays unknown
	otherProcess(t, path, "m1/imap/7/1")
	a.lz.tick(ctx)
	if knows(t, x, "m1/imap/7/1") {
		t.Error("a renewal read the maildir again")
	}
}

// TestRunOnceRescansSink: `run --once` reads a maildir sink again after
// taking the leases, so a message another process wrote after the sink
// was opened is a duplicate.
func TestRunOnceRescansSink(t *testing.T) {
	dir, _, a := runOnceApp(t, 1)
	x, err := a.rt.sink("x") // opened before the other process writes
	if err != nil {
		t.Fatal(err)
	}
	otherProcess(t, filepath.Join(dir, "x"), "m0/imap/7/1")
	res, err := a.RunOnce(t.Context(), "", nil)
	if err != nil || len(res) != 1 || res[0].ServedBy != "" {
		t.Fatalf("RunOnce = %+v, %v", res, err)
	}
	if !knows(t, x, "m0/imap/7/1") {
		t.Error("run --once did not read the maildir again after taking the lease")
	}
}
