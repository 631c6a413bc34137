package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// ProxyLogin is a legacy-client proxy account's last login.
type ProxyLogin struct {
	Account, Listener, Remote, Result string
	At                                time.Time
	// Advice is what to change after a refusal, a line each.
	Advice []string
}

// RecordProxyLogin keeps l as its account's last login, unless the store
// holds a later one already (another serve instance's).
func (s *Store) RecordProxyLogin(ctx context.Context, l ProxyLogin) error {
	_, err := s.exec(ctx, `INSERT INTO proxy_logins (account, at_ms, listener, remote, result, advice) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (account) DO UPDATE SET at_ms = excluded.at_ms, listener = excluded.listener, remote = excluded.remote,
			result = excluded.result, advice = excluded.advice
		WHERE excluded.at_ms >= proxy_logins.at_ms`,
		l.Account, l.At.UnixMilli(), l.Listener, l.Remote, l.Result, strings.Join(l.Advice, "\n"))
	if err != nil {
		return fmt.Errorf("store: last login of %s: %w", l.Account, err)
	}
	return nil
}

// ProxyLogins returns every account's last login, by account name.
func (s *Store) ProxyLogins(ctx context.Context) ([]ProxyLogin, error) {
	rows, err := s.query(ctx, "SELECT account, at_ms, listener, remote, result, advice FROM proxy_logins ORDER BY account")
	if err != nil {
		return nil, fmt.Errorf("store: proxy logins: %w", err)
	}
	defer rows.Close()
	var out []ProxyLogin
	for rows.Next() {
		var l ProxyLogin
		var at int64
		var advice string
		if err := rows.Scan(&l.Account, &at, &l.Listener, &l.Remote, &l.Result, &advice); err != nil {
			return nil, fmt.Errorf("store: proxy logins: %w", err)
		}
		l.At = time.UnixMilli(at)
		if advice != "" {
			l.Advice = strings.Split(advice, "\n")
		}
		out = append(out, l)
	}
	return out, rows.Err()
}
