package sink

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestWebhook(t *testing.T) {
	// spool files go to a temporary directory of this test's own: other
	// test processes spool into the shared one at the same time
	spool := t.TempDir()
	t.Setenv("TMPDIR", spool)
	const secret = "hook-secret"
	body := "From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n"
	var calls atomic.Int32
	mode := atomic.Value{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		// what a receiving application does to verify the request
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(r.Header.Get("X-Mailgate-Timestamp") + "."))
		mac.Write(b)
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		if r.Header.Get("X-Mailgate-Signature") != want || string(b) != body || r.Header.Get("Content-Type") != "message/rfc822" ||
			r.Header.Get("Idempotency-Key") != "mb/imap/1/7" || r.Header.Get("X-Mailgate-Mailbox") != "mb" ||
			r.Header.Get("X-Mailgate-Size") != strconv.Itoa(len(body)) || r.Header.Get("X-Api-Key") != "k" || r.Header.Get("X-Mailgate-Received-At") != "2026-11-23T10:00:00Z" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		switch mode.Load().(string) {
		case "ok":
			w.WriteHeader(http.StatusCreated)
		case "dup":
			w.WriteHeader(http.StatusConflict)
		case "flaky":
			if n == 1 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusOK)
		case "down":
			w.WriteHeader(http.StatusBadGateway)
		case "reject":
			w.WriteHeader(http.StatusUnprocessableEntity)
		case "bad request":
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	wh, err := NewWebhook(WebhookOptions{URL: srv.URL, Secret: secret, Headers: map[string]string{"X-Api-Key": "k"}, MaxAttempts: 3, Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	msg := Message{Mailbox: "mb", Key: "mb/imap/1/7", Size: int64(len(body)), ReceivedAt: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	tests := []struct {
		mode      string
		calls     int32
		dup       bool
		permanent bool
		fail      bool
	}{
		{"ok", 1, false, false, false},
		{"dup", 1, true, false, false},
		{"flaky", 2, false, false, false},
		{"down", 3, false, false, true},
		{"reject", 1, false, true, true},
		{"bad request", 1, false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			mode.Store(tt.mode)
			calls.Store(0)
			d, err := wh.Begin(t.Context(), msg)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(d, body)
			t0 := time.Now()
			rc, err := d.Commit(t.Context())
			if calls.Load() != tt.calls {
				t.Errorf("%d calls, want %d", calls.Load(), tt.calls)
			}
			if tt.mode == "flaky" && time.Since(t0) < time.Second {
				t.Error("Retry-After not honoured")
			}
			if tt.fail {
				var se *Error
				if !errors.As(err, &se) || se.Permanent != tt.permanent {
					t.Fatalf("want a sink error (permanent %v), got %v", tt.permanent, err)
				}
				return
			}
			if err != nil || rc.Duplicate != tt.dup {
				t.Fatalf("%+v %v", rc, err)
			}
		})
	}
	if es, _ := os.ReadDir(spool); len(es) > 0 {
		for _, e := range es {
			if strings.HasPrefix(e.Name(), "mailgate-spool-") {
				t.Errorf("spool file left: %s", e.Name())
			}
		}
	}
}

func TestCommand(t *testing.T) {
	dir := t.TempDir()
	body := "Subject: x\r\n\r\nline\r\n"
	script := `cat > "$OUT/$(echo "$MAILGATE_KEY" | tr / _)"; echo "$MAILGATE_MAILBOX $MAILGATE_SIZE" > "$OUT/env"; exit ${CODE:-0}`
	tests := []struct {
		name      string
		argv      []string
		env       []string
		timeout   time.Duration
		fail      bool
		permanent bool
	}{
		{"accepts", []string{"/bin/sh", "-c", script}, nil, 0, false, false},
		{"tempfail", []string{"/bin/sh", "-c", script}, []string{"CODE=75"}, 0, true, false},
		{"refuses", []string{"/bin/sh", "-c", script + "; echo nope >&2"}, []string{"CODE=1"}, 0, true, true},
		{"times out", []string{"/bin/sh", "-c", "sleep 30 & sleep 30"}, nil, 200 * time.Millisecond, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewCommand(CommandOptions{Argv: tt.argv, Timeout: tt.timeout, Env: append([]string{"OUT=" + dir}, tt.env...)})
			if err != nil {
				t.Fatal(err)
			}
			d, _ := c.Begin(t.Context(), Message{Mailbox: "mb", Key: "mb/pop3/abc"})
			io.WriteString(d, body)
			t0 := time.Now()
			_, err = d.Commit(context.Background())
			if tt.timeout > 0 && time.Since(t0) > 5*time.Second {
				t.Fatal("the timeout did not kill the process group")
			}
			if tt.fail {
				var se *Error
				if !errors.As(err, &se) || se.Permanent != tt.permanent {
					t.Fatalf("want a sink error (permanent %v), got %v", tt.permanent, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(filepath.Join(dir, "mb_pop3_abc"))
			env, _ := os.ReadFile(filepath.Join(dir, "env"))
			if string(got) != body || strings.TrimSpace(string(env)) != "mb "+strconv.Itoa(len(body)) {
				t.Fatalf("stdin %q env %q", got, env)
			}
		})
	}
}
