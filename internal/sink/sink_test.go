package sink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memStore is an in-memory MessageStore that keeps a digest per key.
type memStore struct {
	mu    sync.Mutex
	byKey map[string]string // key → id
	sums  map[string][32]byte
	size  map[string]int64
	fail  error
}

func newMemStore() *memStore {
	return &memStore{byKey: map[string]string{}, sums: map[string][32]byte{}, size: map[string]int64{}}
}

func (s *memStore) PutMessage(ctx context.Context, mailbox, key string, receivedAt time.Time, r io.Reader) (string, bool, error) {
	if s.fail != nil {
		return "", false, s.fail
	}
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.byKey[key]; ok {
		return id, true, nil
	}
	id := fmt.Sprintf("m%d", len(s.byKey)+1)
	s.byKey[key] = id
	s.sums[id] = [32]byte(h.Sum(nil))
	s.size[id] = n
	return id, false, nil
}

func TestIsPermanent(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("plain"), false},
		{&Error{Sink: "webhook", Err: errors.New("503")}, false},
		{&Error{Sink: "webhook", Permanent: true, Err: errors.New("400")}, true},
		{fmt.Errorf("agent: %w", &Error{Sink: "command", Permanent: true, Err: errors.New("exit 1")}), true},
	}
	for _, tt := range tests {
		if got := IsPermanent(tt.err); got != tt.want {
			t.Errorf("IsPermanent(%v) = %v", tt.err, got)
		}
	}
}

func TestStore(t *testing.T) {
	ms := newMemStore()
	s, err := NewStore(ms)
	if err != nil {
		t.Fatal(err)
	}
	body := "Subject: s\r\n\r\nhello\r\n"
	tests := []struct {
		key string
		dup bool
		ref string
	}{
		{"mb/imap/1/1", false, "message m1"},
		{"mb/imap/1/2", false, "message m2"},
		{"mb/imap/1/1", true, "message m1"},
	}
	for _, tt := range tests {
		r := deliver(t, s, tt.key, body)
		if r.Duplicate != tt.dup || r.Ref != tt.ref {
			t.Errorf("%s: %+v, want dup %v ref %q", tt.key, r, tt.dup, tt.ref)
		}
	}
	if ms.sums["m1"] != sha256.Sum256([]byte(body)) {
		t.Error("stored bytes differ")
	}
	ms.fail = errors.New("disk full")
	d, _ := s.Begin(t.Context(), Message{Key: "mb/imap/1/3"})
	io.WriteString(d, body)
	if _, err := d.Commit(t.Context()); err == nil || IsPermanent(err) {
		t.Errorf("store failure: %v, want a temporary sink error", err)
	}
	if err := d.Abort(); err != nil {
		t.Errorf("Abort after a failed Commit: %v", err)
	}
}

// sinksFor builds one of each sink; the webhook and command accept
// everything, the store keeps digests.
func sinksFor(t *testing.T) map[string]Sink {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if fmt.Sprint(n) != r.Header.Get("X-Mailgate-Size") {
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	md, err := NewMaildir(MaildirOptions{Path: filepath.Join(t.TempDir(), "inbox")})
	if err != nil {
		t.Fatal(err)
	}
	wh, err := NewWebhook(WebhookOptions{URL: srv.URL, Secret: "s", MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := NewCommand(CommandOptions{Argv: []string{"/bin/sh", "-c", `test "$(wc -c | tr -d ' ')" = "$MAILGATE_SIZE"`}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewStore(newMemStore())
	if err != nil {
		t.Fatal(err)
	}
	return map[string]Sink{"maildir": md, "webhook": wh, "command": cmd, "store": st}
}

// leftovers lists files a sink left behind: the spool directory and the
// maildir's tmp/.
func leftovers(t *testing.T, spoolDir string, s Sink) []string {
	t.Helper()
	var out []string
	es, _ := os.ReadDir(spoolDir)
	for _, e := range es {
		out = append(out, e.Name())
	}
	if m, ok := s.(*Maildir); ok {
		out = append(out, files(t, m.dir, "tmp")...)
	}
	return out
}

func TestAbortAtEveryPoint(t *testing.T) {
	spoolDir := t.TempDir()
	t.Setenv("TMPDIR", spoolDir)
	points := []string{"after Begin", "after Write", "after Commit", "after a cancelled Commit", "twice"}
	for name, s := range sinksFor(t) {
		for i, point := range points {
			t.Run(name+"/"+point, func(t *testing.T) {
				key := fmt.Sprintf("%s/abort/%d", name, i)
				d, err := s.Begin(t.Context(), Message{Mailbox: "mb", Key: key, Size: -1})
				if err != nil {
					t.Fatal(err)
				}
				if point != "after Begin" {
					if _, err := io.WriteString(d, "Subject: a\r\n\r\nb\r\n"); err != nil {
						t.Fatal(err)
					}
				}
				committed := false
				switch point {
				case "after Commit":
					if _, err := d.Commit(t.Context()); err != nil {
						t.Fatal(err)
					}
					committed = true
				case "after a cancelled Commit":
					ctx, cancel := context.WithCancel(t.Context())
					cancel()
					if _, err := d.Commit(ctx); err == nil && name != "store" {
						t.Error("Commit with a cancelled context succeeded")
					}
				}
				if err := d.Abort(); err != nil {
					t.Fatal(err)
				}
				if err := d.Abort(); err != nil {
					t.Fatal("second Abort:", err)
				}
				if _, err := d.Write([]byte("x")); err == nil {
					t.Error("Write after Abort succeeded")
				}
				if got := leftovers(t, spoolDir, s); len(got) != 0 && !(committed && name == "maildir") {
					t.Errorf("left behind: %v", got)
				}
				if err := s.Sync(t.Context()); err != nil {
					t.Fatal(err)
				}
				if m, ok := s.(*Maildir); ok {
					if got := files(t, m.dir, "tmp"); len(got) != 0 {
						t.Errorf("tmp/ after Sync: %v", got)
					}
				}
			})
		}
	}
}

// zeroReader yields n bytes of a repeating pattern without holding them.
type patternReader struct{ left int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(b)), p.left))
	for i := range n {
		b[i] = "0123456789abcdef\r\n"[i%18]
	}
	p.left -= int64(n)
	return n, nil
}

func TestLargeMessageBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 50 MB through each sink")
	}
	t.Setenv("TMPDIR", t.TempDir())
	const size = 50 << 20
	for name, s := range sinksFor(t) {
		t.Run(name, func(t *testing.T) {
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			var peak atomic.Uint64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				var ms runtime.MemStats
				for {
					runtime.ReadMemStats(&ms)
					if ms.HeapInuse > peak.Load() {
						peak.Store(ms.HeapInuse)
					}
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
				}
			})
			d, err := s.Begin(t.Context(), Message{Mailbox: "mb", Key: name + "/big", Size: size})
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.CopyBuffer(d, &patternReader{left: size}, make([]byte, 32<<10))
			if err != nil || n != size {
				t.Fatal(n, err)
			}
			r, err := d.Commit(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			close(stop)
			wg.Wait()
			if growth := int64(peak.Load()) - int64(before.HeapInuse); growth > 16<<20 {
				t.Errorf("HeapInuse grew by %d MB while delivering 50 MB", growth>>20)
			}
			if name == "maildir" {
				fi, err := os.Stat(r.Ref)
				if err != nil || fi.Size() != size {
					t.Fatalf("maildir file: %v %v", fi, err)
				}
			}
		})
	}
}

func TestWebhookCancelStopsRetries(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	wh, _ := NewWebhook(WebhookOptions{URL: srv.URL})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	d, _ := wh.Begin(ctx, Message{Key: "k"})
	io.WriteString(d, "x")
	t0 := time.Now()
	_, err := d.Commit(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || IsPermanent(err) {
		t.Errorf("err %v", err)
	}
	if time.Since(t0) > 10*time.Second || calls.Load() != 1 {
		t.Errorf("%d calls in %s", calls.Load(), time.Since(t0))
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		in       string
		min, max time.Duration
	}{
		{"", 0, 0},
		{"0", 0, 0},
		{"120", 120 * time.Second, 120 * time.Second},
		{"-3", 0, 0},
		{"soon", 0, 0},
		{"99999", 10 * time.Minute, 10 * time.Minute},
		{time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat), 25 * time.Second, 31 * time.Second},
		{"Wed, 21 Oct 2015 07:28:00 GMT", 0, 0},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.in); got < tt.min || got > tt.max {
			t.Errorf("retryAfter(%q) = %s, want %s..%s", tt.in, got, tt.min, tt.max)
		}
	}
}

func TestCommandStderrInError(t *testing.T) {
	c, _ := NewCommand(CommandOptions{Argv: []string{"/bin/sh", "-c", "cat >/dev/null; echo 'mailbox quota exceeded' >&2; exit 1"}})
	d, _ := c.Begin(t.Context(), Message{Key: "k"})
	io.WriteString(d, "x")
	_, err := d.Commit(t.Context())
	if !IsPermanent(err) || !bytes.Contains([]byte(err.Error()), []byte("mailbox quota exceeded")) {
		t.Errorf("err %v", err)
	}
}

func TestWebhookOptionsRedacted(t *testing.T) {
	o := WebhookOptions{URL: "https://app:url-pw@app.example/hook?token=query-tok", Secret: "hunter2"}
	for _, s := range []string{fmt.Sprint(o), fmt.Sprintf("%+v", o), o.LogValue().String()} {
		for _, secret := range []string{"hunter2", "url-pw", "query-tok"} {
			if bytes.Contains([]byte(s), []byte(secret)) {
				t.Errorf("%s printed: %s", secret, s)
			}
		}
	}
}

// TestWebhookErrorsRedacted: a refusal and an unreachable server are
// reported without the URL's password or query token (the error reaches
// the log, the dashboard and the API).
func TestWebhookErrorsRedacted(t *testing.T) {
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusForbidden) }))
	defer refusing.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, base := range []string{refusing.URL, closed.URL} {
		u := strings.Replace(base, "http://", "http://app:url-pw@", 1) + "/hook?token=query-tok"
		wh, err := NewWebhook(WebhookOptions{URL: u, MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		d, err := wh.Begin(t.Context(), Message{Key: "k", Mailbox: "m"})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(d, "Subject: x\r\n\r\nx\r\n")
		_, err = d.Commit(t.Context())
		if err == nil {
			t.Fatalf("%s: delivered", base)
		}
		if strings.Contains(err.Error(), "url-pw") || strings.Contains(err.Error(), "query-tok") {
			t.Errorf("the error shows a credential: %v", err)
		}
	}
}

// TestCommandEnvironment: the program gets a minimal environment and the
// message's facts, never mailgate's own environment (which may hold
// MAILGATE_KEY, the store's key, and other secrets).
func TestCommandEnvironment(t *testing.T) {
	t.Setenv("MAILGATE_TEST_PARENT_SECRET", "parent-secret-value")
	t.Setenv("MAILGATE_KEY", "store-key-value")
	out := filepath.Join(t.TempDir(), "env")
	c, err := NewCommand(CommandOptions{Argv: []string{"/bin/sh", "-c", "cat >/dev/null; env > " + out}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Begin(t.Context(), Message{Key: "k1", Mailbox: "m"})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(d, "x")
	if _, err := d.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	env := string(b)
	for _, secret := range []string{"parent-secret-value", "store-key-value"} {
		if strings.Contains(env, secret) {
			t.Errorf("the command saw %s in its environment:\n%s", secret, env)
		}
	}
	for _, want := range []string{"PATH=/usr/local/bin:/usr/bin:/bin\n", "MAILGATE_MAILBOX=m\n", "MAILGATE_KEY=k1\n", "MAILGATE_SIZE=1\n", "LANG=C.UTF-8\n"} {
		if !strings.Contains(env, want) {
			t.Errorf("environment lacks %q:\n%s", want, env)
		}
	}
}
