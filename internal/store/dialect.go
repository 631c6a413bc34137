package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// dialect is the seam between SQLite and PostgreSQL. Queries are written
// once with `?` placeholders and standard SQL; what differs lives here.
// Both databases accept `INSERT … ON CONFLICT (…) DO UPDATE SET x =
// excluded.x` and `RETURNING`, so upserts need no translation. Column types
// differ (BLOB/bytea) only in the per-dialect migration files.
type dialect struct {
	// name is "sqlite" or "postgres"; also the migrations directory.
	name string
	// driver is the database/sql driver name.
	driver string
	// dollar says placeholders are $1, $2… instead of ?.
	dollar bool
	// lockMigrations serialises migrations across processes inside tx.
	lockMigrations func(ctx context.Context, tx *sql.Tx) error
	// skipLocked ends a SELECT that claims rows: PostgreSQL locks them and
	// skips the ones another transaction holds; SQLite's writer holds the
	// whole database already.
	skipLocked string
	// afterRestore fixes what inserting explicit ids leaves behind
	// (PostgreSQL's BIGSERIAL sequences).
	afterRestore func(ctx context.Context, tx *txn) error
}

// migrationLockID is the PostgreSQL advisory lock key held while
// migrating ("mailgate" in ASCII).
const migrationLockID = 0x6d61696c67617465

// sqliteDialect is SQLite through modernc.org/sqlite.
func sqliteDialect() dialect {
	return dialect{
		name:   "sqlite",
		driver: "sqlite",
		// Transactions start with BEGIN IMMEDIATE (_txlock=immediate), so
		// the write lock is held from the first statement.
		lockMigrations: func(context.Context, *sql.Tx) error { return nil },
		afterRestore:   func(context.Context, *txn) error { return nil },
	}
}

// postgresDialect is PostgreSQL through pgx's database/sql driver.
func postgresDialect() dialect {
	return dialect{
		name:       "postgres",
		driver:     "pgx",
		dollar:     true,
		skipLocked: " FOR UPDATE SKIP LOCKED",
		lockMigrations: func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLockID))
			return err
		},
		afterRestore: func(ctx context.Context, tx *txn) error {
			for _, t := range []string{"messages", "outbox"} {
				if _, err := tx.Exec(ctx, "SELECT setval(pg_get_serial_sequence('"+t+"', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM "+t); err != nil {
					return fmt.Errorf("%s id sequence: %w", t, err)
				}
			}
			return nil
		},
	}
}

// rebind rewrites `?` placeholders for the dialect. Queries must not
// contain a literal question mark.
func (d dialect) rebind(q string) string {
	if !d.dollar || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}
