package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// ErrBadLogin is a wrong name or password (which one is not said).
var ErrBadLogin = errors.New("store: wrong administrator name or password")

// dummyHash is compared against when no such administrator exists.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte(rand.Text()), bcrypt.DefaultCost)
	return h
})

func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// SetAdmin creates an administrator or changes its password (bcrypt).
func (s *Store) SetAdmin(ctx context.Context, name, password string) error {
	if name == "" || len(password) < 12 {
		return errors.New("store: an administrator needs a name and a password of at least 12 characters")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("store: admin: %w", err)
	}
	_, err = s.exec(ctx, `INSERT INTO admins (name, pw_hash, created_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET pw_hash = excluded.pw_hash`, name, string(h), time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("store: admin: %w", err)
	}
	// a new password ends the old sessions
	_, err = s.exec(ctx, "DELETE FROM admin_sessions WHERE admin = ?", name)
	return err
}

// CountAdmins says how many administrators exist.
func (s *Store) CountAdmins(ctx context.Context) (int, error) {
	var n int
	err := s.queryRow(ctx, "SELECT COUNT(*) FROM admins").Scan(&n)
	return n, err
}

// CheckAdmin verifies a password; ErrBadLogin when it does not match.
func (s *Store) CheckAdmin(ctx context.Context, name, password string) error {
	var h string
	err := s.queryRow(ctx, "SELECT pw_hash FROM admins WHERE name = ?", name).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		// spend the same time as a real check, so names cannot be probed
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return ErrBadLogin
	}
	if err != nil {
		return fmt.Errorf("store: admin: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(h), []byte(password)) != nil {
		return ErrBadLogin
	}
	return nil
}

func randomToken(prefix string) string {
	return prefix + rand.Text() + rand.Text()
}

// NewSession starts a console session for an administrator and returns its
// id (only its hash is stored).
func (s *Store) NewSession(ctx context.Context, admin string, ttl time.Duration) (string, error) {
	id := randomToken("")
	_, err := s.exec(ctx, "INSERT INTO admin_sessions (id_hash, admin, expires_at) VALUES (?, ?, ?)",
		tokenHash(id), admin, time.Now().Add(ttl).UnixNano())
	if err != nil {
		return "", fmt.Errorf("store: session: %w", err)
	}
	return id, nil
}

// SessionAdmin returns the administrator of a live session, "" if none.
func (s *Store) SessionAdmin(ctx context.Context, id string) (string, error) {
	if id == "" {
		return "", nil
	}
	var admin string
	err := s.queryRow(ctx, "SELECT admin FROM admin_sessions WHERE id_hash = ? AND expires_at > ?", tokenHash(id), time.Now().UnixNano()).Scan(&admin)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return admin, err
}

// EndSession deletes a session (logout).
func (s *Store) EndSession(ctx context.Context, id string) error {
	_, err := s.exec(ctx, "DELETE FROM admin_sessions WHERE id_hash = ? OR expires_at < ?", tokenHash(id), time.Now().UnixNano())
	return err
}

// NewAPIToken creates a Bearer token for /api/v1 and /metrics acting as an
// administrator; it is shown once (only its hash is stored). It does not
// expire.
func (s *Store) NewAPIToken(ctx context.Context, admin string) (string, error) {
	return s.NewAPITokenUntil(ctx, admin, time.Time{})
}

// NewAPITokenUntil is NewAPIToken for a token refused from expires on
// (the zero time: never).
func (s *Store) NewAPITokenUntil(ctx context.Context, admin string, expires time.Time) (string, error) {
	var n int
	if err := s.queryRow(ctx, "SELECT COUNT(*) FROM admins WHERE name = ?", admin).Scan(&n); err != nil {
		return "", fmt.Errorf("store: api token: %w", err)
	}
	if n == 0 {
		return "", fmt.Errorf("store: no administrator %q (create it with mailgate admin add)", admin)
	}
	var exp int64
	if !expires.IsZero() {
		exp = expires.UnixNano()
	}
	tok := randomToken("mgt_")
	_, err := s.exec(ctx, "INSERT INTO api_tokens (token_hash, admin, created_at, expires_at) VALUES (?, ?, ?, ?)", tokenHash(tok), admin, time.Now().UnixNano(), exp)
	if err != nil {
		return "", fmt.Errorf("store: api token: %w", err)
	}
	return tok, nil
}

// APITokenAdmin returns the administrator of a token, "" if none or
// expired, and records its use.
func (s *Store) APITokenAdmin(ctx context.Context, tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	var admin string
	var expires int64
	err := s.queryRow(ctx, "SELECT admin, expires_at FROM api_tokens WHERE token_hash = ?", tokenHash(tok)).Scan(&admin, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	now := time.Now().UnixNano()
	if expires != 0 && expires <= now {
		return "", nil
	}
	_, _ = s.exec(ctx, "UPDATE api_tokens SET last_used = ? WHERE token_hash = ?", now, tokenHash(tok))
	return admin, nil
}

// tokenIDLen is how many hex digits of a token's hash name it in
// `mailgate admin token list|revoke` (the hash of a random token says
// nothing about the token).
const tokenIDLen = 12

// APIToken describes an API token, never its value.
type APIToken struct {
	ID       string // the first hex digits of its SHA-256
	Admin    string
	Created  time.Time
	LastUsed time.Time // zero: never used
	Expires  time.Time // zero: never
}

// Expired says whether the token is refused at now.
func (t APIToken) Expired(now time.Time) bool { return !t.Expires.IsZero() && !now.Before(t.Expires) }

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// APITokens lists the API tokens of admin (every administrator's for ""),
// oldest first.
func (s *Store) APITokens(ctx context.Context, admin string) ([]APIToken, error) {
	q, args := "SELECT token_hash, admin, created_at, last_used, expires_at FROM api_tokens", []any{}
	if admin != "" {
		q, args = q+" WHERE admin = ?", append(args, admin)
	}
	rows, err := s.query(ctx, q+" ORDER BY created_at, token_hash", args...)
	if err != nil {
		return nil, fmt.Errorf("store: api tokens: %w", err)
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		var t APIToken
		var hash string
		var created, used, expires int64
		if err := rows.Scan(&hash, &t.Admin, &created, &used, &expires); err != nil {
			return nil, fmt.Errorf("store: api tokens: %w", err)
		}
		t.ID, t.Created, t.LastUsed, t.Expires = hash[:tokenIDLen], unixTime(created), unixTime(used), unixTime(expires)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: api tokens: %w", err)
	}
	return out, nil
}

// RevokeAPIToken deletes the token whose ID (as APITokens gives it) is id;
// ErrNotFound when there is none.
func (s *Store) RevokeAPIToken(ctx context.Context, id string) error {
	if len(id) != tokenIDLen || strings.Trim(id, "0123456789abcdef") != "" {
		return fmt.Errorf("%w: no API token %q (an id is %d hex digits, see mailgate admin token list)", ErrNotFound, id, tokenIDLen)
	}
	res, err := s.exec(ctx, "DELETE FROM api_tokens WHERE token_hash LIKE ?", id+"%")
	if err != nil {
		return fmt.Errorf("store: revoke api token: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("%w: no API token %q", ErrNotFound, id)
	}
	return nil
}

// RevokeAPITokens deletes every API token of admin and says how many there
// were.
func (s *Store) RevokeAPITokens(ctx context.Context, admin string) (int, error) {
	res, err := s.exec(ctx, "DELETE FROM api_tokens WHERE admin = ?", admin)
	if err != nil {
		return 0, fmt.Errorf("store: revoke api tokens: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// Admin describes a console administrator (never its password hash).
type Admin struct {
	Name      string
	Created   time.Time
	LastLogin time.Time // zero: never signed in to the console
	Tokens    int       // API tokens, expired ones included
	// ThrottledUntil is the latest time before which some address may not
	// try again (zero: none is delayed); ThrottledAddresses counts them.
	ThrottledUntil     time.Time
	ThrottledAddresses int
}

// Admins lists the administrators by name, with their sign-in throttle at
// now.
func (s *Store) Admins(ctx context.Context, now time.Time) ([]Admin, error) {
	rows, err := s.query(ctx, `SELECT a.name, a.created_at, a.last_login,
		(SELECT COUNT(*) FROM api_tokens t WHERE t.admin = a.name),
		(SELECT COALESCE(MAX(f.next_at), 0) FROM login_failures f WHERE f.admin = a.name AND f.next_at > ?),
		(SELECT COUNT(*) FROM login_failures f WHERE f.admin = a.name AND f.next_at > ?)
		FROM admins a ORDER BY a.name`, now.UnixNano(), now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("store: admins: %w", err)
	}
	defer rows.Close()
	var out []Admin
	for rows.Next() {
		var a Admin
		var created, last, until int64
		if err := rows.Scan(&a.Name, &created, &last, &a.Tokens, &until, &a.ThrottledAddresses); err != nil {
			return nil, fmt.Errorf("store: admins: %w", err)
		}
		a.Created, a.LastLogin, a.ThrottledUntil = unixTime(created), unixTime(last), unixTime(until)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: admins: %w", err)
	}
	return out, nil
}

// RemoveAdmin deletes an administrator with its sessions, API tokens and
// sign-in throttle; ErrNotFound when there is none.
func (s *Store) RemoveAdmin(ctx context.Context, name string) error {
	err := s.inTx(ctx, func(tx *txn) error {
		for _, q := range []string{"DELETE FROM admin_sessions WHERE admin = ?", "DELETE FROM api_tokens WHERE admin = ?",
			"DELETE FROM login_failures WHERE admin = ?"} {
			if _, err := tx.Exec(ctx, q, name); err != nil {
				return err
			}
		}
		res, err := tx.Exec(ctx, "DELETE FROM admins WHERE name = ?", name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return fmt.Errorf("%w: no administrator %q", ErrNotFound, name)
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("store: remove admin: %w", err)
	}
	return err
}
