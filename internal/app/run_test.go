package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mailgate/mailgate/internal/agent"
	"github.com/mailgate/mailgate/internal/mailbox"
)

// dialerFunc adapts a function to mailbox.Dialer.
type dialerFunc func(ctx context.Context) (mailbox.Conn, error)

func (f dialerFunc) Dial(ctx context.Context) (mailbox.Conn, error) { return f(ctx) }

// TestRunOnceConcurrency: run reads at most its concurrency of mailboxes
// at once, whatever their hosts, and every one of them in the end.
func TestRunOnceConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var in, dialed atomic.Int32
		refused := errors.New("refused")
		var mbs []*agent.Mailbox
		for i := range 30 {
			mbs = append(mbs, &agent.Mailbox{Name: fmt.Sprintf("mb%d", i), Host: fmt.Sprintf("h%d.example", i%2),
				Dialer: dialerFunc(func(context.Context) (mailbox.Conn, error) {
					in.Add(1)
					dialed.Add(1)
					<-release
					in.Add(-1)
					return nil, refused
				})})
		}
		done := make(chan []error, 1)
		go func() {
			_, errs := runAll(t.Context(), mbs, nil, nil, nil, 7, 1000)
			done <- errs
		}()
		synctest.Wait() // every goroutine is blocked: in a login or waiting for a worker
		if got := in.Load(); got != 7 {
			t.Errorf("%d mailboxes read at once, want 7", got)
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

// TestRunOnceLoginRate: run logs in to one host at most rate times a
// second after a first burst of rate, as serve's supervisor does, while
// another host has its own rate (synctest's clock: no wall-clock timing).
func TestRunOnceLoginRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var mu sync.Mutex
		logins := map[string][]time.Duration{}
		var mbs []*agent.Mailbox
		add := func(host string, n int) {
			for i := range n {
				mbs = append(mbs, &agent.Mailbox{Name: fmt.Sprintf("%s-%d", host, i), Host: host,
					Dialer: dialerFunc(func(context.Context) (mailbox.Conn, error) {
						mu.Lock()
						logins[host] = append(logins[host], time.Since(start))
						mu.Unlock()
						return nil, errors.New("refused")
					})})
			}
		}
		add("imap.example", 12)
		add("other.example", 4)
		runAll(t.Context(), mbs, nil, nil, nil, 100, 4)
		if got := len(logins["imap.example"]); got != 12 {
			t.Fatalf("%d logins to imap.example, want 12", got)
		}
		slices.Sort(logins["imap.example"])
		for k, at := range logins["imap.example"] {
			// a burst of 4 at once, then one every 250 ms
			if want := time.Duration(max(k-3, 0)) * 250 * time.Millisecond; at < want {
				t.Errorf("login %d to imap.example at %v, want not before %v", k, at, want)
			}
		}
		for k, at := range logins["other.example"] {
			if at != 0 {
				t.Errorf("login %d to other.example at %v, want at once (its own burst)", k, at)
			}
		}
	})
}

// TestAgentMailboxWhole: the agent's mailbox is built in one place with
// everything run and serve use (mode, interval, host, token), so run's
// per-host rule and serve's see the same host.
func TestAgentMailboxWhole(t *testing.T) {
	dir := t.TempDir()
	file := recordsFile + `sinks:
  - {name: kept, type: store}
mailboxes:
  - {name: m, protocol: imap, host: imap.example, port: 993, username: u@example.com, profile: p, sink: kept, mode: idle, interval: 90s}
`
	a := openAppFile(t, dir, file)
	m, _ := a.Config().Mailbox("m")
	mb, err := a.rt.agentMailbox(m)
	if err != nil {
		t.Fatal(err)
	}
	if mb.Host != "imap.example" || !mb.Idle || mb.Interval != 90*time.Second || mb.Bearer == nil || mb.Dialer == nil || mb.Sink == nil {
		t.Errorf("agent mailbox %+v", mb)
	}
}

// TestTLSConfigShared: mailboxes of one host and tls_ca share one TLS
// configuration (a copy of the system pool per mailbox cost tens of KiB
// each, 10,000 mailboxes on outlook.office365.com would hold 10,000).
func TestTLSConfigShared(t *testing.T) {
	rt := &parts{}
	a, err := rt.tlsConfig("outlook.office365.com", "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := rt.tlsConfig("outlook.office365.com", "")
	c, _ := rt.tlsConfig("imap.example", "")
	if a != b {
		t.Error("two mailboxes of one host got two TLS configurations")
	}
	if a == c || c.ServerName != "imap.example" {
		t.Errorf("another host shares the configuration (server name %q)", c.ServerName)
	}
	if _, err := rt.tlsConfig("imap.example", filepath.Join(t.TempDir(), "missing.pem")); err == nil {
		t.Error("a missing tls_ca is no error")
	}
}
