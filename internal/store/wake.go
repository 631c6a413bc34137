package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
)

// The outbox wake: Enqueue tells a waiting outbox worker at once that
// there is work, so that `mailgate send` through a running serve does not
// wait for its poll. In the same process a channel does it; across
// processes PostgreSQL's NOTIFY (sent in Enqueue's transaction, so it
// arrives with the commit) or, for SQLite, a datagram to a unix socket
// beside the database file (PATH.wake) that the worker listens on. Every
// path is best effort: the worker's poll stays as the fallback.

// outboxChannel is the PostgreSQL notification channel.
const outboxChannel = "mailgate_outbox"

// wakers are the in-process listeners of a Store.
type wakers struct {
	mu   sync.Mutex
	subs map[chan struct{}]bool
	// sock is the SQLite wake socket's path ("" for :memory: and
	// PostgreSQL).
	sock string
}

// ring signals every in-process listener, without blocking.
func (w *wakers) ring() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for c := range w.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

func (w *wakers) add() chan struct{} {
	c := make(chan struct{}, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.subs == nil {
		w.subs = map[chan struct{}]bool{}
	}
	w.subs[c] = true
	return c
}

func (w *wakers) remove(c chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.subs, c)
}

// wakeOutbox tells listeners in this and other processes that a message
// was queued (PostgreSQL's listeners hear Enqueue's NOTIFY instead).
func (s *Store) wakeOutbox() {
	s.wake.ring()
	if s.wake.sock == "" {
		return
	}
	c, err := net.DialTimeout("unixgram", s.wake.sock, time.Second)
	if err != nil {
		return // nobody listens: no serve, or it polls
	}
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write([]byte{1})
	c.Close()
}

// OutboxWake returns a channel that receives (coalesced) when a message is
// queued into this store, by this process or another, until ctx is done.
// The error says the cross-process path could not be set up (the channel
// still hears this process); callers keep polling either way.
func (s *Store) OutboxWake(ctx context.Context) (<-chan struct{}, error) {
	c := s.wake.add()
	context.AfterFunc(ctx, func() { s.wake.remove(c) })
	switch {
	case s.d.name == "postgres":
		go s.listenPostgres(ctx)
	case s.wake.sock != "":
		return c, s.listenSocket(ctx)
	}
	return c, nil
}

// listenSocket binds the SQLite wake socket and rings the in-process
// listeners for each datagram. A socket file left by a process that died
// is replaced; a second serve on the same file takes the socket over (the
// first then polls).
func (s *Store) listenSocket(ctx context.Context) error {
	_ = os.Remove(s.wake.sock)
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.wake.sock, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("store: outbox wake socket: %w", err)
	}
	context.AfterFunc(ctx, func() {
		l.Close()
		_ = os.Remove(s.wake.sock)
	})
	go func() {
		buf := make([]byte, 16)
		for {
			if _, _, err := l.ReadFrom(buf); err != nil {
				return
			}
			s.wake.ring()
		}
	}()
	return nil
}

// listenPostgres holds one connection in LISTEN and rings the in-process
// listeners for each notification, reconnecting after a failure.
func (s *Store) listenPostgres(ctx context.Context) {
	for ctx.Err() == nil {
		err := s.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("store: outbox notifications lost; polling until reconnected", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (s *Store) listenOnce(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var lerr error
	_ = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			lerr = errors.New("not a pgx connection")
			return nil
		}
		pc := sc.Conn()
		if _, lerr = pc.Exec(ctx, "LISTEN "+outboxChannel); lerr != nil {
			return driver.ErrBadConn
		}
		s.wake.ring() // anything queued while no one listened
		for {
			if _, lerr = pc.WaitForNotification(ctx); lerr != nil {
				// the connection is in LISTEN (or broken): never back to the pool
				return driver.ErrBadConn
			}
			s.wake.ring()
		}
	})
	return lerr
}
