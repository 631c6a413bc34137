package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The console's sign-in throttle. Failed sign-ins are counted per
// (administrator name, client address), so failures from one address never
// delay the same name from another one (on loopback everyone is 127.0.0.1:
// there, they do delay each other, but only for a while and never as a hard
// lock). An attempt is counted by BeginLogin before its password is checked,
// so concurrent attempts cannot all reach bcrypt: the first FreeLoginFailures
// go through at once, after that each one must wait a delay that doubles
// from one second up to MaxLoginDelay. Each address is also counted across
// all names (AddressFreeLoginFailures, then the same delays), so one address
// cannot try a few passwords on many names. A successful sign-in forgets the
// address's counts, UnlockAdmin the name's and every address-wide one; a
// day without attempts forgets a count too.
const (
	// FreeLoginFailures is how many attempts a (name, address) gets
	// without delay.
	FreeLoginFailures = 3
	// AddressFreeLoginFailures is how many attempts an address gets
	// without delay, whatever the names.
	AddressFreeLoginFailures = 10
	// MaxLoginDelay caps the delay between attempts.
	MaxLoginDelay = 15 * time.Minute
	// loginFailureMemory is how long a count is kept after its last attempt.
	loginFailureMemory = 24 * time.Hour
)

// ThrottledError refuses a sign-in before its password is checked.
type ThrottledError struct {
	Wait time.Duration // until the next attempt is allowed
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("store: too many failed sign-ins: wait %s", e.Seconds())
}

// Seconds is the wait rounded up to whole seconds, as people read it.
func (e *ThrottledError) Seconds() time.Duration {
	return (e.Wait + time.Second - 1).Truncate(time.Second)
}

// anyName is the admin column of an address's count across names (no
// administrator has an empty name).
const anyName = ""

// loginDelay is how long after the n-th counted attempt the next one waits:
// nothing for the first free-1, then 1 s, 2 s, 4 s … up to MaxLoginDelay.
func loginDelay(n, free int) time.Duration {
	if n < free {
		return 0
	}
	if k := n - free; k < 20 {
		if d := time.Second << k; d < MaxLoginDelay {
			return d
		}
	}
	return MaxLoginDelay
}

// BeginLogin counts a sign-in attempt of name from address, before the
// password is checked (CheckAdmin), and refuses it with a *ThrottledError
// while the (name, address)'s delay runs, or the address's across names.
// Attempts refused by the (name, address) delay are not counted (they check
// nothing). The counts are kept until LoginSucceeded, UnlockAdmin, or a day
// without attempts.
func (s *Store) BeginLogin(ctx context.Context, name, address string, now time.Time) error {
	if name == anyName {
		return ErrBadLogin
	}
	if err := s.countAttempt(ctx, name, address, now, FreeLoginFailures); err != nil {
		return err
	}
	return s.countAttempt(ctx, anyName, address, now, AddressFreeLoginFailures)
}

// countAttempt counts an attempt of (name, address), unless its delay runs.
func (s *Store) countAttempt(ctx context.Context, name, address string, now time.Time, free int) error {
	t := now.UnixNano()
	// compare and swap: two processes (or requests) reading the same count
	// cannot both move it on
	for range 100 {
		var failures int
		var last, next int64
		err := s.queryRow(ctx, "SELECT failures, last_at, next_at FROM login_failures WHERE admin = ? AND address = ?", name, address).
			Scan(&failures, &last, &next)
		if errors.Is(err, sql.ErrNoRows) {
			// forget what nobody tried for a day, so the table stays small
			if _, err := s.exec(ctx, "DELETE FROM login_failures WHERE last_at < ? AND next_at < ?", now.Add(-loginFailureMemory).UnixNano(), t); err != nil {
				return fmt.Errorf("store: login throttle: %w", err)
			}
			res, err := s.exec(ctx, `INSERT INTO login_failures (admin, address, failures, last_at, next_at) VALUES (?, ?, 1, ?, ?)
				ON CONFLICT (admin, address) DO NOTHING`, name, address, t, now.Add(loginDelay(1, free)).UnixNano())
			if err != nil {
				return fmt.Errorf("store: login throttle: %w", err)
			}
			if n, err := res.RowsAffected(); err == nil && n == 1 {
				return nil
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("store: login throttle: %w", err)
		}
		if t < next {
			return &ThrottledError{Wait: time.Duration(next - t)}
		}
		n := failures + 1
		if now.Sub(time.Unix(0, last)) > loginFailureMemory {
			n = 1
		}
		res, err := s.exec(ctx, `UPDATE login_failures SET failures = ?, last_at = ?, next_at = ?
			WHERE admin = ? AND address = ? AND failures = ? AND last_at = ? AND next_at = ?`,
			n, t, now.Add(loginDelay(n, free)).UnixNano(), name, address, failures, last, next)
		if err != nil {
			return fmt.Errorf("store: login throttle: %w", err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			return nil
		}
	}
	return errors.New("store: login throttle: too many concurrent attempts")
}

// LoginSucceeded forgets the failed attempts of name from address and the
// address's across names, and records when the administrator signed in.
func (s *Store) LoginSucceeded(ctx context.Context, name, address string, now time.Time) error {
	if _, err := s.exec(ctx, "DELETE FROM login_failures WHERE (admin = ? OR admin = ?) AND address = ?", name, anyName, address); err != nil {
		return fmt.Errorf("store: login: %w", err)
	}
	if _, err := s.exec(ctx, "UPDATE admins SET last_login = ? WHERE name = ?", now.UnixNano(), name); err != nil {
		return fmt.Errorf("store: login: %w", err)
	}
	return nil
}

// UnlockAdmin forgets the failed sign-ins of name from every address, and
// every address's count across names (one of them may be the
// administrator's own), and returns how many addresses had failures for
// name. ErrNotFound when there is no such administrator.
func (s *Store) UnlockAdmin(ctx context.Context, name string) (int, error) {
	if err := s.adminExists(ctx, name); err != nil {
		return 0, err
	}
	res, err := s.exec(ctx, "DELETE FROM login_failures WHERE admin = ?", name)
	if err != nil {
		return 0, fmt.Errorf("store: unlock: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := s.exec(ctx, "DELETE FROM login_failures WHERE admin = ?", anyName); err != nil {
		return 0, fmt.Errorf("store: unlock: %w", err)
	}
	return int(n), nil
}

// adminExists is nil when name is an administrator, else ErrNotFound
// (wrapped with the name).
func (s *Store) adminExists(ctx context.Context, name string) error {
	var n int
	if err := s.queryRow(ctx, "SELECT COUNT(*) FROM admins WHERE name = ?", name).Scan(&n); err != nil {
		return fmt.Errorf("store: admin: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: no administrator %q", ErrNotFound, name)
	}
	return nil
}
