package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/mailgate/mailgate/internal/pgtest"
)

// pg is one PostgreSQL server for the package; each test gets a database.
var pg pgtest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	if err := pg.Close(); err != nil {
		println(err.Error())
		code = 1
	}
	os.Exit(code)
}

func newKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// backend is a database the shared suite runs against.
type backend struct {
	name string
	// dsn returns a fresh, empty database for t.
	dsn func(t *testing.T) string
}

func backends() []backend {
	return []backend{
		{name: "sqlite", dsn: func(t *testing.T) string {
			return "sqlite:" + filepath.Join(t.TempDir(), "mailgate.db")
		}},
		{name: "postgres", dsn: func(t *testing.T) string { return pg.Database(t) }},
	}
}

// eachBackend runs fn as a subtest per backend.
func eachBackend(t *testing.T, fn func(t *testing.T, dsn string)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { fn(t, b.dsn(t)) })
	}
}

func mustOpen(t *testing.T, dsn string, key []byte) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn, &Options{Key: key})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestMigrationsIdempotent(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		key := newKey(t)
		s := mustOpen(t, dsn, key)
		ms, err := loadMigrations(migrationFiles, "migrations/"+s.Dialect())
		if err != nil {
			t.Fatal(err)
		}
		var n int
		var first int64
		if err := s.queryRow(t.Context(), "SELECT COUNT(*), MAX(applied_at) FROM schema_migrations").Scan(&n, &first); err != nil {
			t.Fatal(err)
		}
		if n != len(ms) {
			t.Fatalf("schema_migrations has %d rows, want %d", n, len(ms))
		}
		s.Close()
		for range 2 {
			s2 := mustOpen(t, dsn, key)
			applied, err := s2.migrate(t.Context(), ms)
			if err != nil {
				t.Fatal(err)
			}
			if len(applied) != 0 {
				t.Fatalf("re-migration applied %v", applied)
			}
			var n2 int
			var last int64
			if err := s2.queryRow(t.Context(), "SELECT COUNT(*), MAX(applied_at) FROM schema_migrations").Scan(&n2, &last); err != nil {
				t.Fatal(err)
			}
			if n2 != n || last != first {
				t.Fatalf("after reopen: %d rows (max applied_at %d), want %d (%d)", n2, last, n, first)
			}
			s2.Close()
		}
	})
}

func TestConcurrentOpen(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		key := newKey(t)
		const n = 6
		var wg sync.WaitGroup
		errs := make([]error, n)
		stores := make([]*Store, n)
		for i := range n {
			wg.Go(func() {
				stores[i], errs[i] = Open(t.Context(), dsn, &Options{Key: key})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("Open #%d: %v", i, err)
			}
			defer stores[i].Close()
		}
		ms, _ := loadMigrations(migrationFiles, "migrations/"+stores[0].Dialect())
		var rows, versions int
		if err := stores[0].queryRow(t.Context(), "SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations").Scan(&rows, &versions); err != nil {
			t.Fatal(err)
		}
		if rows != len(ms) || versions != len(ms) {
			t.Fatalf("schema_migrations: %d rows, %d versions; want %d", rows, versions, len(ms))
		}
		// All of them work, with the same key check.
		for i, s := range stores {
			if err := s.SaveRefreshToken(t.Context(), "p", "rt"); err != nil {
				t.Fatalf("store #%d: %v", i, err)
			}
		}
	})
}

// fullToken has every field set; times carry nanoseconds and a zone.
func fullToken(access string) *Token {
	now := time.Date(2026, 3, 4, 5, 6, 7, 891011121, time.FixedZone("X", 3600))
	return &Token{
		AccessToken:  access,
		TokenType:    "Bearer",
		RefreshToken: "rt-inside-" + access,
		IssuedAt:     now,
		Expiry:       now.Add(time.Hour),
		ExtExpiry:    now.Add(2 * time.Hour),
		RefreshAfter: now.Add(30 * time.Minute),
		Scope:        "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
		Resource:     "https://outlook.office.com",
		IDToken:      "id-" + access,
	}
}

func sameToken(a, b *Token) bool {
	return a.AccessToken == b.AccessToken && a.TokenType == b.TokenType && a.RefreshToken == b.RefreshToken &&
		a.IssuedAt.Equal(b.IssuedAt) && a.Expiry.Equal(b.Expiry) && a.ExtExpiry.Equal(b.ExtExpiry) &&
		a.RefreshAfter.Equal(b.RefreshAfter) && a.Scope == b.Scope && a.Resource == b.Resource && a.IDToken == b.IDToken
}

func TestTokenRoundTrip(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := mustOpen(t, dsn, newKey(t))

		if _, err := s.LoadToken(ctx, "p", "mail"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("LoadToken of nothing: %v, want ErrNotFound", err)
		}
		if _, err := s.LoadRefreshToken(ctx, "p"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("LoadRefreshToken of nothing: %v, want ErrNotFound", err)
		}

		tests := []struct {
			name, profile, key string
			tok                *Token
		}{
			{"full", "p", "mail offline_access", fullToken("at-1")},
			{"other scope key", "p", "smtp", fullToken("at-2")},
			{"other profile", "q", "mail offline_access", fullToken("at-3")},
			{"zero times and empty fields", "z", "", &Token{AccessToken: "at-4"}},
			{"unicode profile", "prøfile ✉", "a b", fullToken("at-5")},
		}
		for _, tt := range tests {
			if err := s.SaveToken(ctx, tt.profile, tt.key, tt.tok); err != nil {
				t.Fatalf("%s: SaveToken: %v", tt.name, err)
			}
		}
		for _, tt := range tests {
			got, err := s.LoadToken(ctx, tt.profile, tt.key)
			if err != nil {
				t.Fatalf("%s: LoadToken: %v", tt.name, err)
			}
			if !sameToken(got, tt.tok) {
				t.Fatalf("%s: LoadToken = %+v, want %+v", tt.name, got, tt.tok)
			}
		}
		// Replace.
		repl := fullToken("at-1b")
		repl.RefreshToken, repl.IDToken, repl.ExtExpiry = "", "", time.Time{}
		if err := s.SaveToken(ctx, "p", "mail offline_access", repl); err != nil {
			t.Fatal(err)
		}
		if got, err := s.LoadToken(ctx, "p", "mail offline_access"); err != nil || !sameToken(got, repl) {
			t.Fatalf("after replace: %+v, %v", got, err)
		}

		// Refresh tokens: save, rotate, delete with "".
		before := time.Now()
		for _, rt := range []string{"rt-1", "rt-2-rotated"} {
			if err := s.SaveRefreshToken(ctx, "p", rt); err != nil {
				t.Fatal(err)
			}
			info, err := s.TokenInfo(ctx, "p")
			if err != nil {
				t.Fatal(err)
			}
			if !info.RefreshToken || info.RefreshSaved.Before(before.Add(-time.Second)) || !info.RefreshUsed.IsZero() {
				t.Fatalf("TokenInfo after save: %+v", info)
			}
			got, err := s.LoadRefreshToken(ctx, "p")
			if err != nil || got != rt {
				t.Fatalf("LoadRefreshToken = %q, %v; want %q", got, err, rt)
			}
		}
		info, err := s.TokenInfo(ctx, "p")
		if err != nil {
			t.Fatal(err)
		}
		if info.RefreshUsed.IsZero() || len(info.Access) != 2 || info.Access[0].ScopeKey != "mail offline_access" ||
			info.Access[1].ScopeKey != "smtp" || !info.Access[1].Expiry.Equal(tests[1].tok.Expiry) {
			t.Fatalf("TokenInfo = %+v", info)
		}
		if err := s.SaveRefreshToken(ctx, "p", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LoadRefreshToken(ctx, "p"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after saving \"\": %v, want ErrNotFound", err)
		}

		if err := s.SaveRefreshToken(ctx, "q", "rt-q"); err != nil {
			t.Fatal(err)
		}
		all, err := s.TokenInfos(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, ti := range all {
			names = append(names, ti.Profile)
		}
		if strings.Join(names, ",") != "p,prøfile ✉,q,z" {
			t.Fatalf("TokenInfos profiles = %q", names)
		}

		if err := s.DeleteTokens(ctx, "q"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LoadToken(ctx, "q", "mail offline_access"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after DeleteTokens: %v", err)
		}
		if _, err := s.LoadRefreshToken(ctx, "q"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after DeleteTokens: %v", err)
		}
		if info, err := s.TokenInfo(ctx, "q"); err != nil || info.RefreshToken || len(info.Access) != 0 {
			t.Fatalf("TokenInfo after DeleteTokens: %+v, %v", info, err)
		}
		if _, err := s.LoadToken(ctx, "p", "smtp"); err != nil {
			t.Fatalf("DeleteTokens(q) touched p: %v", err)
		}
		if err := s.SaveToken(ctx, "p", "x", nil); err == nil {
			t.Fatal("SaveToken(nil) succeeded")
		}
	})
}

func TestConcurrentWrites(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn, newKey(t))
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for g := range 4 {
			wg.Go(func() {
				for i := range 20 {
					p := string(rune('a' + g))
					if err := s.SaveRefreshToken(t.Context(), p, strings.Repeat("r", i+1)); err != nil {
						errs <- err
						return
					}
					if err := s.SaveToken(t.Context(), p, "k", fullToken("at")); err != nil {
						errs <- err
						return
					}
					if _, err := s.LoadRefreshToken(t.Context(), p); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for g := range 4 {
			rt, err := s.LoadRefreshToken(t.Context(), string(rune('a'+g)))
			if err != nil || rt != strings.Repeat("r", 20) {
				t.Fatalf("profile %c: %q, %v", 'a'+g, rt, err)
			}
		}
	})
}

func TestSealedValuesBoundToRow(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := mustOpen(t, dsn, newKey(t))
		for _, p := range []string{"alice", "bob"} {
			if err := s.SaveRefreshToken(ctx, p, "rt-of-"+p); err != nil {
				t.Fatal(err)
			}
			if err := s.SaveToken(ctx, p, "mail", fullToken("at-of-"+p)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SaveToken(ctx, "alice", "smtp", fullToken("at-smtp")); err != nil {
			t.Fatal(err)
		}
		// Move bob's sealed values into alice's rows, and one column into
		// another, as an attacker with write access to the database could.
		steps := []string{
			"UPDATE oauth_refresh_tokens SET refresh_token = (SELECT refresh_token FROM oauth_refresh_tokens WHERE profile = 'bob') WHERE profile = 'alice'",
			"UPDATE oauth_tokens SET access_token = (SELECT access_token FROM oauth_tokens WHERE profile = 'bob' AND scope_key = 'mail') WHERE profile = 'alice' AND scope_key = 'mail'",
			"UPDATE oauth_tokens SET access_token = id_token WHERE profile = 'bob'",
			"UPDATE oauth_tokens SET access_token = (SELECT access_token FROM oauth_tokens WHERE profile = 'alice' AND scope_key = 'mail') WHERE profile = 'alice' AND scope_key = 'smtp'",
		}
		for _, q := range steps {
			if _, err := s.exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		checks := []struct {
			name string
			load func() (string, error)
		}{
			{"refresh token moved to another profile", func() (string, error) { return s.LoadRefreshToken(ctx, "alice") }},
			{"access token moved to another profile", func() (string, error) {
				tok, err := s.LoadToken(ctx, "alice", "mail")
				return tokString(tok), err
			}},
			{"id token moved to the access token column", func() (string, error) {
				tok, err := s.LoadToken(ctx, "bob", "mail")
				return tokString(tok), err
			}},
			{"access token moved to another scope key", func() (string, error) {
				tok, err := s.LoadToken(ctx, "alice", "smtp")
				return tokString(tok), err
			}},
		}
		for _, c := range checks {
			got, err := c.load()
			var de *DecryptError
			if !errors.As(err, &de) || !errors.Is(err, ErrDecrypt) || got != "" {
				t.Fatalf("%s: got %q, %v; want a DecryptError", c.name, got, err)
			}
		}
		// Bob's refresh token is untouched.
		if rt, err := s.LoadRefreshToken(ctx, "bob"); err != nil || rt != "rt-of-bob" {
			t.Fatalf("bob: %q, %v", rt, err)
		}
	})
}

func tokString(t *Token) string {
	if t == nil {
		return ""
	}
	return t.AccessToken
}

func TestWrongKey(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		key := newKey(t)
		s := mustOpen(t, dsn, key)
		if err := s.SaveRefreshToken(ctx, "p", "rt-secret"); err != nil {
			t.Fatal(err)
		}
		s.Close()

		other := newKey(t)
		_, err := Open(ctx, dsn, &Options{Key: other})
		if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), "wrong MAILGATE_KEY or key file?") {
			t.Fatalf("Open with another key: %v, want ErrWrongKey", err)
		}

		// Without the key check (say, restored from a partial backup) each
		// value still refuses to open, with a clear error.
		s = mustOpen(t, dsn, key)
		if _, err := s.exec(ctx, "DELETE FROM store_meta"); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = mustOpen(t, dsn, other)
		rt, err := s.LoadRefreshToken(ctx, "p")
		if !errors.Is(err, ErrDecrypt) || rt != "" || !strings.Contains(err.Error(), "wrong MAILGATE_KEY or key file?") ||
			strings.Contains(err.Error(), "rt-secret") {
			t.Fatalf("LoadRefreshToken with another key: %q, %v", rt, err)
		}
	})
}

func TestNoSecretsInDatabase(t *testing.T) {
	secrets := []string{
		"AT-c2VjcmV0LWFjY2Vzcy10b2tlbg", "RT-first-c2VjcmV0LXJlZnJlc2g", "RT-rotated-bW9yZS1zZWNyZXQ",
		"ID-eyJhbGciOiJSUzI1NiJ9-secret", "RT-inside-token-cmVmcmVzaA",
	}
	save := func(t *testing.T, s *Store) {
		ctx := t.Context()
		tok := fullToken(secrets[0])
		tok.IDToken, tok.RefreshToken = secrets[3], secrets[4]
		if err := s.SaveToken(ctx, "p", "mail", tok); err != nil {
			t.Fatal(err)
		}
		for _, rt := range secrets[1:3] {
			if err := s.SaveRefreshToken(ctx, "p", rt); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(t *testing.T, where string, b []byte) {
		t.Helper()
		for _, sec := range secrets {
			if bytes.Contains(b, []byte(sec)) {
				t.Errorf("%s holds %q in clear", where, sec)
			}
		}
	}

	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "m.db")
		s := mustOpen(t, "sqlite:"+path, newKey(t))
		save(t, s)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("database file mode %04o, want 0600", fi.Mode().Perm())
		}
		// While open the new pages are in the WAL; after Close they are
		// checkpointed into the main file. Look at both moments.
		wal, err := os.ReadFile(path + "-wal")
		if err != nil || len(wal) == 0 {
			t.Fatalf("no WAL while open (%v): the test would prove nothing", err)
		}
		check(t, "WAL", wal)
		for _, suffix := range []string{"", "-shm"} {
			b, _ := os.ReadFile(path + suffix)
			check(t, "database file"+suffix, b)
		}
		if !bytes.Contains(wal, []byte("mail")) {
			t.Fatal("WAL lacks even the clear scope key: the grep looks at the wrong bytes")
		}
		s.Close()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "database file after close", b)
		if !bytes.Contains(b, []byte("oauth_refresh_tokens")) {
			t.Fatal("database file lacks the schema: the grep looks at the wrong bytes")
		}
	})
	t.Run("postgres", func(t *testing.T) {
		s := mustOpen(t, pg.Database(t), newKey(t))
		save(t, s)
		for _, table := range []string{"oauth_tokens", "oauth_refresh_tokens", "store_meta"} {
			rows, err := s.query(t.Context(), "SELECT t::text FROM "+table+" t")
			if err != nil {
				t.Fatal(err)
			}
			var all []byte
			for rows.Next() {
				var row string
				if err := rows.Scan(&row); err != nil {
					t.Fatal(err)
				}
				all = append(all, row...)
			}
			rows.Close()
			if len(all) == 0 {
				t.Fatalf("%s is empty", table)
			}
			check(t, table, all)
		}
	})
}

func TestContextCancelled(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn, newKey(t))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		calls := map[string]func() error{
			"LoadToken":        func() error { _, err := s.LoadToken(ctx, "p", "k"); return err },
			"SaveToken":        func() error { return s.SaveToken(ctx, "p", "k", fullToken("a")) },
			"LoadRefreshToken": func() error { _, err := s.LoadRefreshToken(ctx, "p"); return err },
			"SaveRefreshToken": func() error { return s.SaveRefreshToken(ctx, "p", "r") },
			"DeleteTokens":     func() error { return s.DeleteTokens(ctx, "p") },
			"TokenInfo":        func() error { _, err := s.TokenInfo(ctx, "p"); return err },
			"Open": func() error {
				s2, err := Open(ctx, dsn, &Options{Key: newKey(t)})
				if err == nil {
					s2.Close()
				}
				return err
			},
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled ctx: %v, want context.Canceled", name, err)
			}
		}
		// Nothing was written.
		if _, err := s.LoadRefreshToken(t.Context(), "p"); !errors.Is(err, ErrNotFound) {
			t.Errorf("after cancelled save: %v", err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	key := newKey(t)
	tests := []struct {
		name, dsn string
		key       []byte
		want      string
	}{
		{"unknown scheme hides the rest", "mysql://admin:hunter2@db/x", key, `unsupported database "mysql"`},
		{"short key", "sqlite::memory:", key[:16], "must be 32 bytes"},
		{"no key", "sqlite::memory:", nil, "must be 32 bytes"},
		{"empty sqlite path", "sqlite:", key, "empty path"},
		{"missing directory", "sqlite:" + filepath.Join(t.TempDir(), "no", "such", "m.db"), key, "store: sqlite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), tt.dsn, &Options{Key: tt.key})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %q, want it to contain %q (and no password)", err, tt.want)
			}
		})
	}
}

func TestMemorySQLite(t *testing.T) {
	s := mustOpen(t, "sqlite::memory:", newKey(t))
	if err := s.SaveRefreshToken(t.Context(), "p", "rt"); err != nil {
		t.Fatal(err)
	}
	if rt, err := s.LoadRefreshToken(t.Context(), "p"); err != nil || rt != "rt" {
		t.Fatalf("%q, %v", rt, err)
	}
}

func TestSchemaNewerThanBinary(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		key := newKey(t)
		s := mustOpen(t, dsn, key)
		if _, err := s.exec(t.Context(), "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", 9999, "future", 1); err != nil {
			t.Fatal(err)
		}
		s.Close()
		_, err := Open(t.Context(), dsn, &Options{Key: key})
		var sv *SchemaVersionError
		if !errors.As(err, &sv) || sv.Database != 9999 {
			t.Fatalf("Open: %v, want SchemaVersionError{9999}", err)
		}
	})
}

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		files   fstest.MapFS
		want    []int
		wantErr string
	}{
		{"ordered", fstest.MapFS{"m/0002_b.sql": file("B"), "m/0001_a.sql": file("A"), "m/README": file("x")}, []int{1, 2}, ""},
		{"gap", fstest.MapFS{"m/0001_a.sql": file("A"), "m/0003_c.sql": file("C")}, nil, "expected version 0002"},
		{"duplicate", fstest.MapFS{"m/0001_a.sql": file("A"), "m/0001_b.sql": file("B")}, nil, "expected version 0002"},
		{"bad name", fstest.MapFS{"m/1_a.sql": file("A")}, nil, "NNNN_name.sql"},
		{"no name", fstest.MapFS{"m/0001.sql": file("A")}, nil, "NNNN_name.sql"},
		{"zero", fstest.MapFS{"m/0000_a.sql": file("A")}, nil, "NNNN_name.sql"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := loadMigrations(tt.files, "m")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.version)
			}
			if len(got) != len(tt.want) || got[0] != tt.want[0] || got[len(got)-1] != tt.want[len(tt.want)-1] {
				t.Fatalf("versions %v, want %v", got, tt.want)
			}
		})
	}
}

// TestDialectsHaveSameMigrations keeps the two directories in step.
func TestDialectsHaveSameMigrations(t *testing.T) {
	lite, err := loadMigrations(migrationFiles, "migrations/sqlite")
	if err != nil {
		t.Fatal(err)
	}
	pgm, err := loadMigrations(migrationFiles, "migrations/postgres")
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) != len(pgm) || len(lite) == 0 {
		t.Fatalf("%d sqlite migrations, %d postgres", len(lite), len(pgm))
	}
	for i := range lite {
		if lite[i].version != pgm[i].version || lite[i].name != pgm[i].name {
			t.Errorf("migration %d: sqlite %04d_%s, postgres %04d_%s", i, lite[i].version, lite[i].name, pgm[i].version, pgm[i].name)
		}
	}
}

func TestRebind(t *testing.T) {
	tests := []struct{ in, lite, pg string }{
		{"SELECT 1", "SELECT 1", "SELECT 1"},
		{"a = ? AND b = ?", "a = ? AND b = ?", "a = $1 AND b = $2"},
		{"VALUES (?, ?, ?)", "VALUES (?, ?, ?)", "VALUES ($1, $2, $3)"},
	}
	for _, tt := range tests {
		if got := sqliteDialect().rebind(tt.in); got != tt.lite {
			t.Errorf("sqlite rebind(%q) = %q", tt.in, got)
		}
		if got := postgresDialect().rebind(tt.in); got != tt.pg {
			t.Errorf("postgres rebind(%q) = %q", tt.in, got)
		}
	}
}

func TestKeyNotPrinted(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, KeySize)
	s := mustOpen(t, "sqlite::memory:", key)
	opts := Options{Key: key}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("x", "store", s, "opts", opts)
	out := buf.String() + fmt.Sprintf("%v %+v %s %v", s, s, opts, &opts)
	for _, leak := range []string{"ab ab", "abab", "171 171", base64.StdEncoding.EncodeToString(key)} {
		if strings.Contains(out, leak) {
			t.Fatalf("key printed: %s", out)
		}
	}
	if !strings.Contains(out, "REDACTED") || !strings.Contains(out, "store.Store{sqlite}") {
		t.Fatalf("unexpected output %s", out)
	}
}

// BenchmarkSaveRefreshToken measures a durable refresh-token write (one
// committed, sealed upsert; SQLite synchronous=FULL).
func BenchmarkSaveRefreshToken(b *testing.B) {
	for _, be := range []struct {
		name string
		dsn  func(b *testing.B) string
	}{
		{"sqlite", func(b *testing.B) string { return "sqlite:" + filepath.Join(b.TempDir(), "m.db") }},
		{"postgres", func(b *testing.B) string { return pg.Database(b) }},
	} {
		b.Run(be.name, func(b *testing.B) {
			s, err := Open(b.Context(), be.dsn(b), &Options{Key: newKey(b)})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			rt := strings.Repeat("r", 1500)
			for b.Loop() {
				if err := s.SaveRefreshToken(b.Context(), "p", rt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
