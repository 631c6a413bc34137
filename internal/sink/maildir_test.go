package sink

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func deliver(t testing.TB, s Sink, key, body string) Receipt {
	t.Helper()
	d, err := s.Begin(context.Background(), Message{Mailbox: "forms", Key: key, Size: int64(len(body))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	r, err := d.Commit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func files(t *testing.T, dir, sub string) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(dir, sub))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestMaildir(t *testing.T) {
	for _, mode := range []string{"batch", "file"} {
		t.Run(mode, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "inbox")
			m, err := NewMaildir(MaildirOptions{Path: dir, Sync: mode})
			if err != nil {
				t.Fatal(err)
			}
			body := "From: a@example.com\r\nSubject: x\r\n\r\nline one\r\n.\r\nbare\nlf\r\n"
			r := deliver(t, m, "forms/imap/7/1", body)
			if r.Duplicate || !strings.HasPrefix(r.Ref, filepath.Join(dir, "new")) {
				t.Fatalf("receipt %+v", r)
			}
			if mode == "batch" && len(files(t, dir, "new")) != 0 {
				t.Fatal("visible in new/ before Sync")
			}
			if err := m.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(r.Ref)
			if err != nil || string(got) != body {
				t.Fatalf("bytes changed: %q %v", got, err)
			}
			if fi, _ := os.Stat(r.Ref); fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v", fi.Mode())
			}
			if r2 := deliver(t, m, "forms/imap/7/1", "other"); !r2.Duplicate || r2.Ref != r.Ref {
				t.Errorf("same key again: %+v", r2)
			}
			// a mail reader moves it to cur/ with flags; a new process still knows it
			cur := filepath.Join(dir, "cur", filepath.Base(r.Ref)+":2,S")
			if err := os.Rename(r.Ref, cur); err != nil {
				t.Fatal(err)
			}
			m2, err := NewMaildir(MaildirOptions{Path: dir, Sync: mode})
			if err != nil {
				t.Fatal(err)
			}
			if r3 := deliver(t, m2, "forms/imap/7/1", body); !r3.Duplicate || r3.Ref != cur {
				t.Errorf("after reopen: %+v", r3)
			}
			if m2.Len() != 1 {
				t.Errorf("Len %d", m2.Len())
			}
		})
	}
}

func TestMaildirAbortAndCrashLeftovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "inbox")
	m, err := NewMaildir(MaildirOptions{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := m.Begin(t.Context(), Message{Key: "k1"})
	_, _ = d.Write([]byte("partial"))
	if err := d.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := d.Abort(); err != nil {
		t.Fatal("second Abort:", err)
	}
	if len(files(t, dir, "tmp")) != 0 {
		t.Error("Abort left a tmp file")
	}
	// a crash of a process of this host: one staged (committed, not
	// synced) message and one half-written, under the dead process's pid
	deliver(t, m, "k2", "staged")
	d, _ = m.Begin(t.Context(), Message{Key: "k3"})
	_, _ = d.Write([]byte("half"))
	dead := deadPid(t)
	live := files(t, dir, "tmp") // m's: this process is alive
	for _, name := range live {
		crashed := strings.Replace(name, fmt.Sprintf(".%d_", m.pid), fmt.Sprintf(".%d_", dead), 1)
		if err := os.WriteFile(filepath.Join(dir, "tmp", crashed), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	foreign := filepath.Join(dir, "tmp", "1700000000.123.other-mda")
	_ = os.WriteFile(foreign, []byte("x"), 0o600)
	elsewhere := filepath.Join(dir, "tmp", fmt.Sprintf("1700000000.%d_1.mg0123456789abcdef.other-host", dead))
	_ = os.WriteFile(elsewhere, []byte("x"), 0o600)
	m2, err := NewMaildir(MaildirOptions{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string{filepath.Base(foreign), filepath.Base(elsewhere)}, live...)
	if got := files(t, dir, "tmp"); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Errorf("tmp after reopen: %v, want %v (a dead process's leftovers go; a live one's, another host's and a fresh foreign file stay)", got, want)
	}
	if err := d.Abort(); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if len(files(t, dir, "new")) != 0 || m2.Len() != 0 {
		t.Error("an unsynced message became visible")
	}
	// the agent had not acknowledged k2, so it comes again and is delivered once
	if r := deliver(t, m2, "k2", "staged"); r.Duplicate {
		t.Error("k2 was never synced, yet seen as duplicate")
	}
}

// deadPid is the pid of a process that has ended.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestMaildirStagedFileGone: a staged file removed by another hand before
// Sync fails that Sync, but not every Sync after it: the message is
// forgotten and delivered again.
func TestMaildirStagedFileGone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "inbox")
	m, err := NewMaildir(MaildirOptions{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, m, "k1", "one")
	deliver(t, m, "k2", "two")
	for _, name := range files(t, dir, "tmp") {
		if keyHashOf(name) == keyHash("k1") {
			if err := os.Remove(filepath.Join(dir, "tmp", name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := m.Sync(t.Context()); err == nil {
		t.Fatal("Sync with a staged file gone: no error")
	}
	if err := m.Sync(t.Context()); err != nil {
		t.Fatalf("the next Sync: %v", err)
	}
	if r := deliver(t, m, "k1", "one"); r.Duplicate {
		t.Fatalf("k1 again: %+v, want delivered", r)
	}
	if r := deliver(t, m, "k2", "two"); !r.Duplicate {
		t.Errorf("k2 again: %+v, want a duplicate", r)
	}
	if err := m.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(files(t, dir, "new")); n != 2 {
		t.Errorf("%d files in new/, want 2", n)
	}
}

func TestMaildirConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "inbox")
	m, err := NewMaildir(MaildirOptions{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	dups := 0
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				// every key is delivered by two goroutines
				r := deliver(t, m, fmt.Sprintf("k%d", (g/2)*50+i), "body")
				if r.Duplicate {
					mu.Lock()
					dups++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if err := m.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(files(t, dir, "new")); n != 200 || dups != 200 {
		t.Errorf("%d files, %d duplicates; want 200 and 200", n, dups)
	}
}

// TestMaildirSyncWhileDelivering runs Syncs while other goroutines deliver
// (the agent syncs a batch while it fetches the next): each Sync makes
// durable at least what was committed before it was called, duplicates are
// still recognised while a key sits between staged and delivered, and
// nothing is lost or left in tmp/.
func TestMaildirSyncWhileDelivering(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "inbox")
	m, err := NewMaildir(MaildirOptions{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	dups := 0
	for g := range 4 {
		wg.Go(func() {
			for i := range 60 {
				// every key is delivered by two goroutines
				key := fmt.Sprintf("k%d", (g/2)*60+i)
				r := deliver(t, m, key, "body "+key)
				if r.Duplicate {
					mu.Lock()
					dups++
					mu.Unlock()
				}
				if i%7 == 0 {
					if err := m.Sync(t.Context()); err != nil {
						t.Error(err)
					}
					// what this goroutine committed is now in new/
					if _, err := os.Stat(r.Ref); err != nil {
						t.Errorf("%s committed before Sync, not in new/: %v", key, err)
					}
				}
			}
		})
	}
	wg.Wait()
	if err := m.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(files(t, dir, "new")); n != 120 || dups != 120 || m.Len() != 120 {
		t.Errorf("%d files, %d duplicates, Len %d; want 120, 120, 120", n, dups, m.Len())
	}
	if n := len(files(t, dir, "tmp")); n != 0 {
		t.Errorf("%d files left in tmp/", n)
	}
}

// BenchmarkMaildir measures durable deliveries of 5 KB messages in batches
// of 100 with one Sync per batch, against the reference of the same
// messages fsynced one by one (Sync: "file"), measured in the same run.
func BenchmarkMaildir(b *testing.B) {
	body := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 80) // 5,120 bytes
	run := func(mode string, n int) time.Duration {
		m, err := NewMaildir(MaildirOptions{Path: filepath.Join(b.TempDir(), mode), Sync: mode})
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		for i := range n {
			deliver(b, m, fmt.Sprintf("%s/%d", mode, i), body)
			if (i+1)%100 == 0 || i == n-1 {
				if err := m.Sync(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		}
		return time.Since(t0)
	}
	ref := run("file", 300) / 300
	b.ResetTimer()
	el := run("batch", b.N)
	b.StopTimer()
	per := el / time.Duration(b.N)
	b.ReportMetric(float64(time.Second)/float64(per), "msgs/s")
	b.ReportMetric(float64(time.Second)/float64(ref), "ref-fsync-each-msgs/s")
	b.ReportMetric(float64(ref)/float64(per), "x-vs-fsync-each")
}

// FuzzMaildirName: the file-name parser that rebuilds the delivered-key
// index never panics and recognises every name the sink writes.
func FuzzMaildirName(f *testing.F) {
	f.Add("1700000000.123_1.mg0123456789abcdef.host:2,S")
	f.Add("1700000000.M1P2.other-mda")
	f.Add("....")
	f.Fuzz(func(t *testing.T, name string) {
		h := keyHashOf(name)
		if h != "" && len(h) != 16 {
			t.Fatalf("%q → %q", name, h)
		}
		key := name
		ours := fmt.Sprintf("%d.%d_%d.mg%s.%s", 1700000000, 42, 7, keyHash(key), "host.example")
		if keyHashOf(ours) != keyHash(key) || keyHashOf(ours+":2,RS") != keyHash(key) {
			t.Fatalf("own name %q not recognised", ours)
		}
	})
}

// TestMaildirRescan: two handles on one maildir, as two serve instances
// sharing it. A key the second delivers after the first was opened is new
// to the first until Rescan (with a since before the delivery) and a
// duplicate after it, also once a mail reader moved the file to cur/; a
// Rescan whose since is older than the last read does not read again.
func TestMaildirRescan(t *testing.T) {
	for _, mode := range []string{"batch", "file"} {
		t.Run(mode, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "inbox")
			x, err := NewMaildir(MaildirOptions{Path: dir, Sync: mode})
			if err != nil {
				t.Fatal(err)
			}
			y, err := NewMaildir(MaildirOptions{Path: dir, Sync: mode})
			if err != nil {
				t.Fatal(err)
			}
			var _ Rescanner = x
			ry := deliver(t, y, "box/imap/7/1", "from y")
			deliver(t, y, "box/imap/7/2", "from y, read since")
			if err := y.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			// a mail reader took 7/2 into cur/ with a flag
			r2 := filepath.Join(dir, "new", filepath.Base(deliver(t, y, "box/imap/7/2", "").Ref))
			cur := filepath.Join(dir, "cur", filepath.Base(r2)+":2,S")
			if err := os.Rename(r2, cur); err != nil {
				t.Fatal(err)
			}
			since := time.Now() // x takes the mailbox over from y
			if err := x.Rescan(t.Context(), since); err != nil {
				t.Fatal(err)
			}
			if r := deliver(t, x, "box/imap/7/1", "again from x"); !r.Duplicate || r.Ref != ry.Ref {
				t.Errorf("7/1 after Rescan: %+v, want a duplicate of %s", r, ry.Ref)
			}
			if r := deliver(t, x, "box/imap/7/2", "again from x"); !r.Duplicate || r.Ref != cur {
				t.Errorf("7/2 after Rescan: %+v, want a duplicate of %s", r, cur)
			}
			if err := x.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			if n := len(files(t, dir, "new")) + len(files(t, dir, "cur")); n != 2 {
				t.Errorf("%d messages in the maildir, want 2", n)
			}
			// y delivers 7/3 after x's read began: a since older than that
			// read costs nothing and does not see it; a later one does
			deliver(t, y, "box/imap/7/3", "late")
			if err := y.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			if err := x.Rescan(t.Context(), since); err != nil {
				t.Fatal(err)
			}
			if x.Len() != 2 {
				t.Errorf("Len %d after a Rescan with an old since, want 2 (no second read)", x.Len())
			}
			if err := x.Rescan(t.Context(), time.Now()); err != nil {
				t.Fatal(err)
			}
			if r := deliver(t, x, "box/imap/7/3", "again"); !r.Duplicate {
				t.Errorf("7/3 after the second Rescan: %+v, want a duplicate", r)
			}
		})
	}
}

// TestMaildirWithoutRescan: the same shared maildir without Rescan
// delivers the other handle's key a second time (what Rescan is for).
func TestMaildirWithoutRescan(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "inbox")
	x, err := NewMaildir(MaildirOptions{Path: dir, Sync: "file"})
	if err != nil {
		t.Fatal(err)
	}
	y, err := NewMaildir(MaildirOptions{Path: dir, Sync: "file"})
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, y, "box/imap/7/1", "from y")
	if r := deliver(t, x, "box/imap/7/1", "from x"); r.Duplicate {
		t.Fatalf("x knew y's delivery without a Rescan: %+v", r)
	}
	if n := len(files(t, dir, "new")); n != 2 {
		t.Errorf("%d files, want the 2 copies a Rescan prevents", n)
	}
}

// BenchmarkRescan measures Rescan of a maildir holding 100,000 of our
// messages (what a takeover costs once per maildir), against the
// reference of listing the same directories' names alone, measured in
// the same run.
func BenchmarkRescan(b *testing.B) {
	const files = 100_000
	dir := filepath.Join(b.TempDir(), "inbox")
	if err := MakeMaildir(dir); err != nil {
		b.Fatal(err)
	}
	for i := range files {
		name := fmt.Sprintf("1700000000.42_%d.mg%s.host", i, keyHash(fmt.Sprintf("box/imap/7/%d", i)))
		if err := os.WriteFile(filepath.Join(dir, "new", name), nil, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	m, err := NewMaildir(MaildirOptions{Path: dir})
	if err != nil {
		b.Fatal(err)
	}
	list := func() {
		for _, sub := range []string{"new", "cur"} {
			f, err := os.Open(filepath.Join(dir, sub))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.Readdirnames(-1); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	}
	const refRounds = 5
	t0 := time.Now()
	for range refRounds {
		list()
	}
	ref := time.Since(t0) / refRounds
	b.ResetTimer()
	for range b.N {
		if err := m.Rescan(context.Background(), time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	per := b.Elapsed() / time.Duration(b.N)
	if m.Len() != files {
		b.Fatalf("Len %d, want %d", m.Len(), files)
	}
	b.ReportMetric(float64(per)/float64(time.Millisecond), "ms/rescan")
	b.ReportMetric(float64(ref)/float64(time.Millisecond), "ref-list-ms")
	b.ReportMetric(float64(per)/float64(ref), "x-vs-list")
}

// FuzzMaildirLeftover: any name found in tmp/ is classified without
// panicking; a fresh file is garbage only if it is one of ours, of this
// host, and not of this process.
func FuzzMaildirLeftover(f *testing.F) {
	m, err := NewMaildir(MaildirOptions{Path: filepath.Join(f.TempDir(), "inbox")})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{"1700000000.123_1.mg0123456789abcdef." + m.host, "1700000000.0_1.mg0123456789abcdef." + m.host,
		"1700000000.x_1.mg0123456789abcdef." + m.host, fmt.Sprintf("1700000000.%d_1.mg0123456789abcdef.%s", m.pid, m.host),
		"1700000000.123_1.mg0123456789abcdef.elsewhere", "1700000000.M1P2.other-mda", "...."} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !m.leftover(name, time.Now()) {
			return
		}
		parts := strings.SplitN(name, ".", 4)
		if keyHashOf(name) == "" || parts[3] != m.host || strings.HasPrefix(parts[1], fmt.Sprintf("%d_", m.pid)) {
			t.Fatalf("leftover(%q) for a fresh file that is not a dead process's of this host", name)
		}
	})
}
