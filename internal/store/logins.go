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
// from one second up to MaxLoginDelay. A successful sign-in or
// UnlockAdmin forgets the count; so does a day without failures.
const (
	// FreeLoginFailures is how many attempts a (name, address) gets
	// without delay.
	FreeLoginFailures = 3
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

// loginDelay is how long after the n-th counted attempt the next one waits:
// nothing for the first FreeLoginFailures-1, then 1 s, 2 s, 4 s … up to
// MaxLoginDelay.
func loginDelay(n int) time.Duration {
	if n < FreeLoginFailures {
		return 0
	}
	if k := n - FreeLoginFailures; k < 20 {
		if d := time.Second << k; d < MaxLoginDelay {
			return d
		}
	}
	return MaxLoginDelay
}

// BeginLogin counts a sign-in attempt of name from address, before the
// password is checked (CheckAdmin), and refuses it with a *ThrottledError
// while the (name, address)'s delay runs. Refused attempts are not counted
// (they check nothing). The count is kept until LoginSucceeded, UnlockAdmin,
// or a day without attempts.
func (s *Store) BeginLogin(ctx context.Context, name, address string, now time.Time) error {
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
				ON CONFLICT (admin, address) DO NOTHING`, name, address, t, now.Add(loginDelay(1)).UnixNano())
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
			n, t, now.Add(loginDelay(n)).UnixNano(), name, address, failures, last, next)
		if err != nil {
			return fmt.Errorf("store: login throttle: %w", err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			return nil
		}
	}
	return errors.New("store: login throttle: too many concurrent attempts")
}

// LoginSucceeded forgets the failed attempts of name from address and
// records when the administrator signed in.
func (s *Store) LoginSucceeded(ctx context.Context, name, address string, now time.Time) error {
	if _, err := s.exec(ctx, "DELETE FROM login_failures WHERE admin = ? AND address = ?", name, address); err != nil {
		return fmt.Errorf("store: login: %w", err)
	}
	if _, err := s.exec(ctx, "UPDATE admins SET last_login = ? WHERE name = ?", now.UnixNano(), name); err != nil {
		return fmt.Errorf("store: login: %w", err)
	}
	return nil
}

// UnlockAdmin forgets the failed sign-ins of name from every address and
// returns how many addresses had some. ErrNotFound when there is no such
// administrator.
func (s *Store) UnlockAdmin(ctx context.Context, name string) (int, error) {
	if err := s.adminExists(ctx, name); err != nil {
		return 0, err
	}
	res, err := s.exec(ctx, "DELETE FROM login_failures WHERE admin = ?", name)
	if err != nil {
		return 0, fmt.Errorf("store: unlock: %w", err)
	}
	n, _ := res.RowsAffected()
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
