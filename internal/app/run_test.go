package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mailgate/mailgate/internal/agent"
	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/mailbox"
	"github.com/mailgate/mailgate/internal/store"
)

// dialerFunc adapts a function to mailbox.Dialer.
type dialerFunc func(ctx context.Context) (mailbox.Conn, error)

func (f dialerFunc) Dial(ctx context.Context) (mailbox.Conn, error) { return f(ctx) }

// TestRunOnceHostCap: run logs in to at most agent.DefaultHostCap
// mailboxes of one host at a time, as serve's supervisor does; another
// host's mailboxes do not wait for them, and the held-back ones run once
// a slot frees.
func TestRunOnceHostCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		in := map[string]*atomic.Int32{"imap.example": {}, "other.example": {}}
		var dialed atomic.Int32
		refused := errors.New("refused")
		var mbs []*agent.Mailbox
		add := func(host string, n int) {
			for i := range n {
				mbs = append(mbs, &agent.Mailbox{Name: fmt.Sprintf("%s-%d", host, i), Host: host,
					Dialer: dialerFunc(func(context.Context) (mailbox.Conn, error) {
						in[host].Add(1)
						dialed.Add(1)
						<-release
						in[host].Add(-1)
						return nil, refused
					})})
			}
		}
		add("imap.example", agent.DefaultHostCap+4)
		add("other.example", 2)
		done := make(chan []error, 1)
		go func() {
			_, errs := runAll(t.Context(), mbs, nil, nil, nil)
			done <- errs
		}()
		synctest.Wait() // every goroutine is blocked: in a login or waiting for a slot
		if got := in["imap.example"].Load(); got != agent.DefaultHostCap {
			t.Errorf("%d logins at once to imap.example, want %d", got, agent.DefaultHostCap)
		}
		if got := in["other.example"].Load(); got != 2 {
			t.Errorf("%d logins at once to other.example, want 2 (its own slots)", got)
		}
		close(release)
		errs := <-done
		if int(dialed.Load()) != len(mbs) {
			t.Errorf("%d of %d mailboxes dialed", dialed.Load(), len(mbs))
		}
		for i, err := range errs {
			if !errors.Is(err, refused) {
				t.Errorf("%s: %v, want the dialer's error", mbs[i].Name, err)
			}
		}
	})
}

// TestAgentMailboxWhole: the agent's mailbox is built in one place with
// everything run and serve use (mode, interval, host, token), so run's
// per-host rule and serve's see the same host.
func TestAgentMailboxWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mailgate.yaml")
	file := recordsFile + `sinks:
  - {name: kept, type: store}
mailboxes:
  - {name: m, protocol: imap, host: imap.example, port: 993, username: u@example.com, profile: p, sink: kept, mode: idle, interval: 90s}
`
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(dir, "db"), &store.Options{Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := Open(t.Context(), cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	m, _ := a.Config().Mailbox("m")
	mb, err := a.rt.agentMailbox(m)
	if err != nil {
		t.Fatal(err)
	}
	if mb.Host != "imap.example" || !mb.Idle || mb.Interval != 90*time.Second || mb.Bearer == nil || mb.Dialer == nil || mb.Sink == nil {
		t.Errorf("agent mailbox %+v", mb)
	}
}
