// Package store owns mailgate's persistent state: the OAuth token cache and
// refresh tokens today, and every later table (console records, the
// delivery ledger, the outbox, admin users and sessions, stored messages).
//
// Two databases are supported with one implementation: SQLite (the
// default, through the pure-Go modernc.org/sqlite driver, so CGO_ENABLED=0
// builds work) and PostgreSQL (through github.com/jackc/pgx/v5/stdlib) for
// several instances sharing one store. Queries are plain SQL over
// database/sql, written once with `?` placeholders; the small dialect seam
// in dialect.go rewrites placeholders and locks migrations.
//
// Secrets never reach the database in clear: token and secret columns are
// sealed with AES-256-GCM (NIST SP 800-38D) under a 32-byte key, with a
// random 96-bit nonce, a version byte and additional data naming the table,
// column and row, so a sealed value copied to another row does not open.
// A wrong key is reported as such at Open (see the key check in store_meta)
// and on every value (DecryptError), never as garbage.
//
// Durability: a method returns after its transaction committed. SQLite runs
// in WAL mode with synchronous=FULL, so a commit is on disk (WAL with
// synchronous=NORMAL could lose the last commits on power loss, and a
// rotated refresh token must not be lost); PostgreSQL commits with its
// default synchronous_commit=on.
//
// Use:
//
//  1. key, err := store.LoadKey(keyPath, os.Getenv) — MAILGATE_KEY, else the
//     key file, created 0600 on first start.
//  2. st, err := store.Open(ctx, "sqlite:/var/lib/mailgate/mailgate.db",
//     &store.Options{Key: key, Logger: log}) — or a postgres:// URL;
//     pending migrations are applied.
//  3. Hand st to the composition root's adapters where an oauth.Store or an
//     agent.Ledger is wanted; use TokenInfo for the console's token health;
//     st.Close() at shutdown.
//
// The store's API speaks in its own plain types (Token, LedgerEntry,
// HeldMessage, Cursor: strings, numbers, times and bytes) and imports no
// other mailgate package: the packages that need persistence (oauth, agent)
// declare the interfaces they need in their own terms, and the composition
// root (internal/cli's adapters.go) converts field by field. sink's
// MessageStore takes plain values, so st implements it directly.
// internal/arch's test keeps it so.
//
// # Adding a table
//
//  1. Add migrations/sqlite/NNNN_name.sql and migrations/postgres/NNNN_name.sql
//     with the next number (both directories keep the same numbers; never
//     edit a released migration, add a new one). Use TEXT and BIGINT in both,
//     BLOB in SQLite where PostgreSQL has BYTEA; keep times as Unix
//     nanoseconds (see nanos/fromNanos).
//  2. Add one file for the concern (e.g. outbox.go) with its record type and
//     methods taking ctx first, written with `?` placeholders through
//     s.exec/s.queryRow/s.query or s.inTx; upserts use
//     `ON CONFLICT (…) DO UPDATE SET col = excluded.col`, which both accept.
//  3. Seal every secret column with s.seal.sealString(value, table, column,
//     row identity…) and open it with the same place; never log values.
//  4. Return ErrNotFound (wrapped) for a missing record, never (nil, nil).
//  5. Add the table to the shared test suite, which runs on both dialects,
//     and to the raw-bytes grep test if it holds secrets.
//  6. Add it to copyTables in copy.go (or copySkipped, with the reason), so
//     that `mailgate store migrate` copies it; TestCopyCoversEveryTable
//     fails until then.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"               // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrNotFound is returned (wrapped) when a record does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrWrongKey is returned by Open when the key does not open the
// database's key check: the database was created with another key.
var ErrWrongKey = errors.New("store: cannot decrypt the key check: wrong MAILGATE_KEY or key file?")

// Options configure Open.
type Options struct {
	// Key is the 32-byte sealing key (see LoadKey). Required.
	Key []byte
	// Logger receives migration and warning lines; nil discards.
	Logger *slog.Logger
}

// String describes the options without the key.
func (o Options) String() string {
	return fmt.Sprintf("store.Options{Key: [REDACTED %d bytes]}", len(o.Key))
}

// LogValue keeps the key out of logs.
func (o Options) LogValue() slog.Value { return slog.StringValue(o.String()) }

// Store is mailgate's database. It is safe for concurrent use.
type Store struct {
	db   *sql.DB
	d    dialect
	seal *sealer
	log  *slog.Logger
	wake wakers
}

// busyTimeoutMS is how long a SQLite connection waits for another writer.
const busyTimeoutMS = 10000

// sqliteConns bounds the connections to a SQLite file.
const sqliteConns = 8

// postgresConns bounds one store's connections to PostgreSQL (and keeps
// as many open for reuse).
const postgresConns = 20

// Open opens (creating it if needed) and migrates the database named by
// dsn: "sqlite:PATH" (the file is created with mode 0600), "sqlite::memory:"
// for tests (one connection), or a "postgres://…"/"postgresql://…" URL.
func Open(ctx context.Context, dsn string, opts *Options) (*Store, error) {
	if opts == nil {
		opts = &Options{}
	}
	seal, err := newSealer(opts.Key)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{seal: seal, log: log}
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		s.d = sqliteDialect()
		path := strings.TrimPrefix(dsn, "sqlite:")
		s.db, err = openSQLite(path, log)
		if path != ":memory:" {
			s.wake.sock = path + ".wake"
		}
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		s.d = postgresDialect()
		if s.db, err = sql.Open(s.d.driver, dsn); err == nil {
			// database/sql keeps 2 idle connections by default: many
			// agents writing at once would open and close a server
			// process per transaction; unbounded, they could exceed the
			// server's max_connections (100 by default) with several
			// instances
			s.db.SetMaxOpenConns(postgresConns)
			s.db.SetMaxIdleConns(postgresConns)
		}
	default:
		scheme, _, _ := strings.Cut(dsn, ":")
		return nil, fmt.Errorf("store: unsupported database %q: use sqlite:PATH or postgres://…", scheme)
	}
	if err != nil {
		return nil, err
	}
	if err := s.init(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// init checks the connection, migrates and verifies the key.
func (s *Store) init(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: connect to %s: %w", s.d.name, err)
	}
	if s.d.name == "sqlite" {
		if err := sqliteWAL(ctx, s.db); err != nil {
			return err
		}
	}
	ms, err := loadMigrations(migrationFiles, "migrations/"+s.d.name)
	if err != nil {
		return err
	}
	if _, err := s.migrate(ctx, ms); err != nil {
		return err
	}
	return s.checkKey(ctx)
}

// keyCheckPlain is sealed into store_meta on first open and opened at
// every later open.
const keyCheckPlain = "mailgate store key check v1"

// checkKey seals a known value on first use and opens it afterwards,
// turning a wrong key into ErrWrongKey before any real value is read.
func (s *Store) checkKey(ctx context.Context) error {
	sealed, err := s.seal.sealString(keyCheckPlain, "store_meta", "value", "key_check")
	if err != nil {
		return err
	}
	if _, err := s.exec(ctx, "INSERT INTO store_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
		"key_check", sealed); err != nil {
		return fmt.Errorf("store: key check: %w", err)
	}
	var got []byte
	if err := s.queryRow(ctx, "SELECT value FROM store_meta WHERE name = ?", "key_check").Scan(&got); err != nil {
		return fmt.Errorf("store: key check: %w", err)
	}
	v, err := s.seal.openString(got, "store_meta", "value", "key_check")
	if err != nil || v != keyCheckPlain {
		return ErrWrongKey
	}
	return nil
}

// openSQLite creates the file (mode 0600) if needed and opens it in WAL
// mode with a busy timeout, foreign keys, synchronous=FULL and BEGIN
// IMMEDIATE transactions.
func openSQLite(path string, log *slog.Logger) (*sql.DB, error) {
	params := url.Values{}
	params.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	params.Add("_pragma", "foreign_keys(1)")
	params.Add("_pragma", "synchronous(FULL)")
	params.Set("_txlock", "immediate")
	if path == ":memory:" {
		db, err := sql.Open("sqlite", "file::memory:?"+params.Encode())
		if err != nil {
			return nil, fmt.Errorf("store: sqlite: %w", err)
		}
		// Every connection would get its own empty database.
		db.SetMaxOpenConns(1)
		return db, nil
	}
	if path == "" {
		return nil, errors.New("store: sqlite: empty path (use sqlite:PATH)")
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	fi, err := f.Stat()
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		log.Warn("store: the database file can be read by group or others; values are sealed, but consider chmod 600",
			"path", path, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
	}
	u := url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: params.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	// SQLite has one writer at a time. Thousands of mailboxes saving their
	// cursors at once would each hold a connection spinning in busy_timeout
	// and some would give up with SQLITE_BUSY; a bounded pool makes them
	// queue in database/sql instead (no transaction uses a second
	// connection, so the bound cannot deadlock).
	db.SetMaxOpenConns(sqliteConns)
	db.SetMaxIdleConns(sqliteConns)
	return db, nil
}

// sqliteWAL switches the database to WAL mode (a persistent setting of
// the file, so every later connection uses it). The switch needs an
// exclusive lock and SQLite does not wait for it through busy_timeout
// when another connection is doing the same, so it is retried here until
// the busy timeout has passed.
func sqliteWAL(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeoutMS * time.Millisecond)
	for {
		var mode string
		err := db.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode)
		var se *sqlite.Error
		if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return fmt.Errorf("store: sqlite: %w", ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("store: sqlite: set WAL mode: %w", err)
		}
		if mode != "wal" && mode != "memory" {
			return fmt.Errorf("store: sqlite: journal_mode is %q, want wal", mode)
		}
		return nil
	}
}

// String names the store's dialect; it never shows the key.
func (s *Store) String() string { return "store.Store{" + s.d.name + "}" }

// LogValue keeps the sealing key out of logs.
func (s *Store) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Dialect is "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return s.db.ExecContext(ctx, s.d.rebind(q), args...)
}

func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return s.db.QueryRowContext(ctx, s.d.rebind(q), args...)
}

func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return s.db.QueryContext(ctx, s.d.rebind(q), args...)
}

// txn is a transaction whose queries use `?` placeholders (inTx hands it
// to its function; nothing outside the package needs one).
type txn struct {
	tx *sql.Tx
	d  dialect
}

// Prepare compiles a statement once for many executions in the
// transaction (SQLite would otherwise parse it again on every Exec).
func (t *txn) Prepare(ctx context.Context, q string) (*sql.Stmt, error) {
	return t.tx.PrepareContext(ctx, t.d.rebind(q))
}

// Exec runs a statement in the transaction.
func (t *txn) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.d.rebind(q), args...)
}

// QueryRow runs a query returning at most one row.
func (t *txn) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.d.rebind(q), args...)
}

// Query runs a query.
func (t *txn) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.d.rebind(q), args...)
}

// inTx runs fn in a transaction (BEGIN IMMEDIATE on SQLite) and commits
// when it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(*txn) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(&txn{tx: tx, d: s.d}); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
