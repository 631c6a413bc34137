package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations
var migrationFiles embed.FS

// migration is one embedded NNNN_name.sql file.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads dir of fsys: files named NNNN_name.sql, versions
// unique, starting at 1 and without gaps.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		base := strings.TrimSuffix(e.Name(), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || name == "" || len(num) != 4 {
			return nil, fmt.Errorf("store: migration %s/%s: name must be NNNN_name.sql", dir, e.Name())
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("store: migration %s: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("store: migrations in %s: expected version %04d, found %04d_%s", dir, i+1, m.version, m.name)
		}
	}
	return ms, nil
}

const createSchemaMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at BIGINT  NOT NULL
)`

// SchemaVersionError says the database was migrated by a newer mailgate
// than this one.
type SchemaVersionError struct {
	Database int // highest version recorded in the database
	Known    int // highest version this binary carries
}

func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("store: the database schema is at version %d but this mailgate knows only up to %d: upgrade mailgate",
		e.Database, e.Known)
}

// migrate applies the dialect's pending migrations, each in its own
// transaction that first takes the dialect's cross-process lock (SQLite:
// BEGIN IMMEDIATE; PostgreSQL: an advisory transaction lock), then checks
// schema_migrations, so two processes opening the same database at once
// apply each migration exactly once. It returns the versions it applied.
func (s *Store) migrate(ctx context.Context, ms []migration) ([]int, error) {
	var applied []int
	for _, m := range ms {
		did, err := s.applyMigration(ctx, m, len(ms))
		if err != nil {
			return applied, err
		}
		if did {
			applied = append(applied, m.version)
			s.log.Info("store: migration applied", "dialect", s.d.name, "version", m.version, "name", m.name)
		}
	}
	return applied, nil
}

func (s *Store) applyMigration(ctx context.Context, m migration, known int) (bool, error) {
	did := false
	err := s.inTx(ctx, func(tx *txn) error {
		if err := s.d.lockMigrations(ctx, tx.tx); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := tx.Exec(ctx, createSchemaMigrations); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var max sql.NullInt64
		if err := tx.QueryRow(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&max); err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		if int(max.Int64) > known {
			return &SchemaVersionError{Database: int(max.Int64), Known: known}
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", m.version).Scan(&n); err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		if n > 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
			m.version, m.name, time.Now().UnixNano()); err != nil {
			return fmt.Errorf("record: %w", err)
		}
		did = true
		return nil
	})
	if err != nil {
		if _, ok := errors.AsType[*SchemaVersionError](err); ok {
			return false, err
		}
		return false, fmt.Errorf("store: migration %04d_%s (%s): %w", m.version, m.name, s.d.name, err)
	}
	return did, nil
}
