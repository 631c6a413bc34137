package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Token is a cached access token as the store keeps it: oauth.Token's
// fields as plain values (the store does not import oauth; the composition
// root converts, and maps ErrNotFound to oauth.ErrNoToken). AccessToken,
// RefreshToken and IDToken are sealed at rest.
type Token struct {
	AccessToken  string
	TokenType    string
	RefreshToken string
	IssuedAt     time.Time
	Expiry       time.Time
	ExtExpiry    time.Time
	RefreshAfter time.Time
	Scope        string
	Resource     string
	IDToken      string
}

const (
	tokensTable  = "oauth_tokens"
	refreshTable = "oauth_refresh_tokens"
)

// nanos encodes t as Unix nanoseconds, NULL for the zero time. Times
// outside 1678–2262 do not fit and are rejected by the callers' checks.
func nanos(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

// fromNanos decodes what nanos stored.
func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64)
}

// nanosRange reports whether t survives nanos unchanged.
func nanosRange(t time.Time) bool {
	return t.IsZero() || time.Unix(0, t.UnixNano()).Equal(t)
}

// LoadToken returns the cached access token of profile for the scope key
// (oauth's normalised scope set), or an error matching ErrNotFound.
func (s *Store) LoadToken(ctx context.Context, profile, key string) (*Token, error) {
	var (
		at, rt, idt                             []byte
		issued, expiry, extExpiry, refreshAfter sql.NullInt64
		tok                                     Token
	)
	err := s.queryRow(ctx, `SELECT access_token, refresh_token, id_token, token_type, scope, resource,
		issued_at, expiry, ext_expiry, refresh_after
		FROM oauth_tokens WHERE profile = ? AND scope_key = ?`, profile, key).
		Scan(&at, &rt, &idt, &tok.TokenType, &tok.Scope, &tok.Resource, &issued, &expiry, &extExpiry, &refreshAfter)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: profile %q scopes %q: no token stored: %w", profile, key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: load token of profile %q: %w", profile, err)
	}
	if tok.AccessToken, err = s.seal.openString(at, tokensTable, "access_token", profile, key); err != nil {
		return nil, err
	}
	if tok.RefreshToken, err = s.seal.openString(rt, tokensTable, "refresh_token", profile, key); err != nil {
		return nil, err
	}
	if tok.IDToken, err = s.seal.openString(idt, tokensTable, "id_token", profile, key); err != nil {
		return nil, err
	}
	tok.IssuedAt = fromNanos(issued)
	tok.Expiry = fromNanos(expiry)
	tok.ExtExpiry = fromNanos(extExpiry)
	tok.RefreshAfter = fromNanos(refreshAfter)
	return &tok, nil
}

// SaveToken stores tok as the cached access token of profile for the
// scope key, replacing any previous one. Secret fields are sealed.
func (s *Store) SaveToken(ctx context.Context, profile, key string, tok *Token) error {
	if tok == nil {
		return errors.New("store: save token: nil token")
	}
	for _, t := range []time.Time{tok.IssuedAt, tok.Expiry, tok.ExtExpiry, tok.RefreshAfter} {
		if !nanosRange(t) {
			return fmt.Errorf("store: save token of profile %q: time %s out of range", profile, t)
		}
	}
	at, err := s.seal.sealString(tok.AccessToken, tokensTable, "access_token", profile, key)
	if err != nil {
		return err
	}
	rt, err := s.seal.sealString(tok.RefreshToken, tokensTable, "refresh_token", profile, key)
	if err != nil {
		return err
	}
	idt, err := s.seal.sealString(tok.IDToken, tokensTable, "id_token", profile, key)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO oauth_tokens (profile, scope_key, access_token, refresh_token, id_token,
		token_type, scope, resource, issued_at, expiry, ext_expiry, refresh_after, saved_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (profile, scope_key) DO UPDATE SET
		access_token = excluded.access_token, refresh_token = excluded.refresh_token, id_token = excluded.id_token,
		token_type = excluded.token_type, scope = excluded.scope, resource = excluded.resource,
		issued_at = excluded.issued_at, expiry = excluded.expiry, ext_expiry = excluded.ext_expiry,
		refresh_after = excluded.refresh_after, saved_at = excluded.saved_at`,
		profile, key, at, rt, idt, tok.TokenType, tok.Scope, tok.Resource,
		nanos(tok.IssuedAt), nanos(tok.Expiry), nanos(tok.ExtExpiry), nanos(tok.RefreshAfter), time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("store: save token of profile %q: %w", profile, err)
	}
	return nil
}

// LoadRefreshToken returns profile's refresh token, or an error matching
// ErrNotFound. It records the time of the read (TokenInfo's
// RefreshUsed): oauth reads it only to redeem it.
func (s *Store) LoadRefreshToken(ctx context.Context, profile string) (string, error) {
	var sealed []byte
	err := s.queryRow(ctx, "UPDATE oauth_refresh_tokens SET used_at = ? WHERE profile = ? RETURNING refresh_token",
		time.Now().UnixNano(), profile).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store: profile %q has no refresh token: %w", profile, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("store: load refresh token of profile %q: %w", profile, err)
	}
	return s.seal.openString(sealed, refreshTable, "refresh_token", profile)
}

// SaveRefreshToken stores profile's refresh token, sealed, replacing the
// previous one; the empty string deletes it. It returns once the commit is
// durable (see the package doc).
func (s *Store) SaveRefreshToken(ctx context.Context, profile, refreshToken string) error {
	if refreshToken == "" {
		if _, err := s.exec(ctx, "DELETE FROM oauth_refresh_tokens WHERE profile = ?", profile); err != nil {
			return fmt.Errorf("store: delete refresh token of profile %q: %w", profile, err)
		}
		return nil
	}
	sealed, err := s.seal.sealString(refreshToken, refreshTable, "refresh_token", profile)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO oauth_refresh_tokens (profile, refresh_token, saved_at, used_at)
		VALUES (?, ?, ?, NULL)
		ON CONFLICT (profile) DO UPDATE SET refresh_token = excluded.refresh_token,
		saved_at = excluded.saved_at, used_at = NULL`,
		profile, sealed, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("store: save refresh token of profile %q: %w", profile, err)
	}
	return nil
}

// DeleteTokens forgets every token of profile: its cached access tokens
// and its refresh token (sign-out, profile removal).
func (s *Store) DeleteTokens(ctx context.Context, profile string) error {
	err := s.inTx(ctx, func(tx *txn) error {
		if _, err := tx.Exec(ctx, "DELETE FROM oauth_tokens WHERE profile = ?", profile); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM oauth_refresh_tokens WHERE profile = ?", profile)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete tokens of profile %q: %w", profile, err)
	}
	return nil
}

// TokenInfo describes a profile's stored tokens without their values,
// for the console's token health.
type TokenInfo struct {
	Profile string
	// RefreshToken says a refresh token is stored.
	RefreshToken bool
	// RefreshSaved is when the refresh token was stored (zero if none).
	RefreshSaved time.Time
	// RefreshUsed is when it was last read to be redeemed (zero if not
	// since it was saved).
	RefreshUsed time.Time
	// Access lists the cached access tokens, by scope key.
	Access []AccessTokenInfo
}

// AccessTokenInfo describes one cached access token.
type AccessTokenInfo struct {
	ScopeKey string // the normalised scope set it was requested for
	Scope    string // the scopes granted, when the server said
	IssuedAt time.Time
	Expiry   time.Time
	Saved    time.Time
}

// TokenInfo returns what is stored for profile. A profile with nothing
// stored gives a TokenInfo with no refresh token and no access tokens.
func (s *Store) TokenInfo(ctx context.Context, profile string) (*TokenInfo, error) {
	all, err := s.tokenInfos(ctx, &profile)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return &TokenInfo{Profile: profile}, nil
	}
	return &all[0], nil
}

// TokenInfos returns TokenInfo for every profile that has a stored token,
// ordered by profile name.
func (s *Store) TokenInfos(ctx context.Context) ([]TokenInfo, error) {
	return s.tokenInfos(ctx, nil)
}

func (s *Store) tokenInfos(ctx context.Context, profile *string) ([]TokenInfo, error) {
	where, args := "", []any(nil)
	if profile != nil {
		where, args = " WHERE profile = ?", []any{*profile}
	}
	byName := map[string]*TokenInfo{}
	var order []string
	get := func(p string) *TokenInfo {
		ti := byName[p]
		if ti == nil {
			ti = &TokenInfo{Profile: p}
			byName[p] = ti
			order = append(order, p)
		}
		return ti
	}
	// Two plain reads rather than a transaction: on SQLite every
	// transaction takes the write lock (BEGIN IMMEDIATE), and a report that
	// is a moment inconsistent is harmless.
	err := func() error {
		rows, err := s.query(ctx, "SELECT profile, saved_at, used_at FROM oauth_refresh_tokens"+where+" ORDER BY profile", args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var p string
			var saved, used sql.NullInt64
			if err := rows.Scan(&p, &saved, &used); err != nil {
				rows.Close()
				return err
			}
			ti := get(p)
			ti.RefreshToken, ti.RefreshSaved, ti.RefreshUsed = true, fromNanos(saved), fromNanos(used)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = s.query(ctx, "SELECT profile, scope_key, scope, issued_at, expiry, saved_at FROM oauth_tokens"+
			where+" ORDER BY profile, scope_key", args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p string
			var a AccessTokenInfo
			var issued, expiry, saved sql.NullInt64
			if err := rows.Scan(&p, &a.ScopeKey, &a.Scope, &issued, &expiry, &saved); err != nil {
				return err
			}
			a.IssuedAt, a.Expiry, a.Saved = fromNanos(issued), fromNanos(expiry), fromNanos(saved)
			ti := get(p)
			ti.Access = append(ti.Access, a)
		}
		return rows.Err()
	}()
	if err != nil {
		return nil, fmt.Errorf("store: token info: %w", err)
	}
	out := make([]TokenInfo, 0, len(order))
	for _, p := range slices.Sorted(slices.Values(order)) {
		out = append(out, *byName[p])
	}
	return out, nil
}
