package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
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
// administrator; it is shown once (only its hash is stored).
func (s *Store) NewAPIToken(ctx context.Context, admin string) (string, error) {
	var n int
	if err := s.queryRow(ctx, "SELECT COUNT(*) FROM admins WHERE name = ?", admin).Scan(&n); err != nil {
		return "", fmt.Errorf("store: api token: %w", err)
	}
	if n == 0 {
		return "", fmt.Errorf("store: no administrator %q (create it with mailgate admin add)", admin)
	}
	tok := randomToken("mgt_")
	_, err := s.exec(ctx, "INSERT INTO api_tokens (token_hash, admin, created_at) VALUES (?, ?, ?)", tokenHash(tok), admin, time.Now().UnixNano())
	if err != nil {
		return "", fmt.Errorf("store: api token: %w", err)
	}
	return tok, nil
}

// APITokenAdmin returns the administrator of a token, "" if none, and
// records its use.
func (s *Store) APITokenAdmin(ctx context.Context, tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	var admin string
	err := s.queryRow(ctx, "SELECT admin FROM api_tokens WHERE token_hash = ?", tokenHash(tok)).Scan(&admin)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	_, _ = s.exec(ctx, "UPDATE api_tokens SET last_used = ? WHERE token_hash = ?", time.Now().UnixNano(), tokenHash(tok))
	return admin, nil
}
