package store

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// A backup is one portable file, the same for both dialects (a SQLite
// backup restores into PostgreSQL and back): JSON lines,
//
//	{"mailgate_backup":1,"dialect":"sqlite","schema":9,"created":"…"}
//	{"table":"oauth_tokens","columns":["profile",…]}
//	["p1","scope",{"b64":"…"},…]          one line per row
//	…
//	{"end":true,"rows":1234}
//
// where a value is null, a number, a string, a boolean or {"b64":…} for
// bytes. Sealed columns are copied as the sealed bytes: the file holds no
// secret in clear and not the key, so a restore needs the same key
// (MAILGATE_KEY or key file) as the store it was taken from. The trailer
// makes a cut-short file fail to restore instead of restoring part.
const backupFormat = 1

// backupTables lists every table a backup holds, parents before children
// (restore inserts in this order, --force deletes in the reverse one).
// serve_instances and mailbox_leases (which serve instances are alive and
// what they hold), proxy_logins, and schema_migrations
// (the restoring binary's own migrations are applied) are left out;
// TestBackupCoversEveryTable keeps the list complete.
var backupTables = []string{
	"store_meta",
	"oauth_tokens",
	"oauth_refresh_tokens",
	"mailbox_cursors",
	"delivery_ledger",
	"messages",
	"message_chunks",
	"outbox",
	"outbox_rcpts",
	"admins",
	"admin_sessions",
	"api_tokens",
	"config_records",
	"held_messages",
	"login_failures",
}

// notBackedUp are the tables deliberately left out of backups.
var notBackedUp = []string{"schema_migrations", "mailbox_leases", "serve_instances", "proxy_logins"}

// ErrNotEmpty is returned by Restore when the target store already holds
// data and force was not given.
var ErrNotEmpty = errors.New("store: the target store is not empty")

// ErrBadBackup matches every restore failure caused by the file itself:
// not a mailgate backup, cut short, or damaged.
var ErrBadBackup = errors.New("store: not a complete mailgate backup")

type backupHeader struct {
	Format  int    `json:"mailgate_backup"`
	Dialect string `json:"dialect"`
	Schema  int    `json:"schema"`
	Created string `json:"created"`
}

type backupLine struct {
	Table   string   `json:"table,omitempty"`
	Columns []string `json:"columns,omitempty"`
	End     bool     `json:"end,omitempty"`
	Rows    int64    `json:"rows"`
}

// BackupStats says what a backup or restore covered.
type BackupStats struct {
	Tables int
	Rows   int64
	Schema int
}

// Backup writes a consistent copy of the store to w while the store stays
// in use: every table is read in one read transaction (a snapshot: WAL on
// SQLite, REPEATABLE READ on PostgreSQL), so concurrent writers neither
// block for long nor show up half in the file.
func (s *Store) Backup(ctx context.Context, w io.Writer) (BackupStats, error) {
	// ReadOnly: modernc begins a deferred transaction instead of the
	// BEGIN IMMEDIATE of _txlock, so writers are not locked out (see
	// TestBackupOnline).
	opts := &sql.TxOptions{ReadOnly: true}
	if s.d.name == "postgres" {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return BackupStats{}, fmt.Errorf("store: backup: %w", err)
	}
	defer tx.Rollback()
	t := &txn{tx: tx, d: s.d}
	var st BackupStats
	if err := t.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&st.Schema); err != nil {
		return st, fmt.Errorf("store: backup: schema version: %w", err)
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(backupHeader{Format: backupFormat, Dialect: s.d.name, Schema: st.Schema,
		Created: time.Now().UTC().Format(time.RFC3339)}); err != nil {
		return st, fmt.Errorf("store: backup: %w", err)
	}
	for _, table := range backupTables {
		n, err := dumpTable(ctx, t, table, enc)
		if err != nil {
			return st, fmt.Errorf("store: backup %s: %w", table, err)
		}
		st.Tables++
		st.Rows += n
	}
	if err := enc.Encode(backupLine{End: true, Rows: st.Rows}); err != nil {
		return st, fmt.Errorf("store: backup: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("store: backup: %w", err)
	}
	return st, nil
}

// dumpTable writes one table's column line and rows.
func dumpTable(ctx context.Context, t *txn, table string, enc *json.Encoder) (int64, error) {
	rows, err := t.Query(ctx, "SELECT * FROM "+table)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	if err := enc.Encode(backupLine{Table: table, Columns: cols}); err != nil {
		return 0, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		out := make([]any, len(vals))
		for i, v := range vals {
			out[i] = encodeValue(v)
		}
		if err := enc.Encode(out); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// backupBytes is how a byte value is written.
type backupBytes struct {
	B64 string `json:"b64"`
}

func encodeValue(v any) any {
	switch v := v.(type) {
	case []byte:
		return backupBytes{B64: base64.StdEncoding.EncodeToString(v)}
	case time.Time: // no column is a time today; kept exact if one becomes one
		return v.UTC().Format(time.RFC3339Nano)
	}
	return v
}

func decodeValue(v any) (any, error) {
	switch v := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return i, nil
		}
		return v.Float64()
	case map[string]any:
		s, ok := v["b64"].(string)
		if !ok || len(v) != 1 {
			return nil, fmt.Errorf("%w: unknown value %v", ErrBadBackup, v)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadBackup, err)
		}
		return b, nil
	}
	return v, nil
}

// Restore loads a backup written by Backup into this store, in one
// transaction. The store must hold the same schema version as the backup
// (restore with the mailgate version that made it, then upgrade) and the
// same key (the backup's key check must open with it). A store that holds
// any data is refused with ErrNotEmpty unless force is set; with force,
// its data is replaced.
func (s *Store) Restore(ctx context.Context, r io.Reader, force bool) (BackupStats, error) {
	dec := json.NewDecoder(bufio.NewReader(r))
	dec.UseNumber()
	var h backupHeader
	if err := dec.Decode(&h); err != nil || h.Format != backupFormat {
		return BackupStats{}, fmt.Errorf("%w: no backup header", ErrBadBackup)
	}
	st := BackupStats{Schema: h.Schema}
	err := s.inTx(ctx, func(tx *txn) error {
		var schema int
		if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&schema); err != nil {
			return fmt.Errorf("schema version: %w", err)
		}
		if schema != h.Schema {
			return fmt.Errorf("the backup has schema version %d, this store %d: restore with the mailgate version that made the backup, then upgrade", h.Schema, schema)
		}
		if err := s.clearForRestore(ctx, tx, force); err != nil {
			return err
		}
		var err error
		st, err = s.loadTables(ctx, tx, dec, st)
		if err != nil {
			return err
		}
		if err := s.checkRestoredKey(ctx, tx); err != nil {
			return err
		}
		return s.d.afterRestore(ctx, tx)
	})
	if err != nil {
		return st, fmt.Errorf("store: restore: %w", err)
	}
	return st, nil
}

// clearForRestore refuses a store with data (or, with force, empties it).
// store_meta always goes: the backup brings its own key check.
func (s *Store) clearForRestore(ctx context.Context, tx *txn, force bool) error {
	for i := len(backupTables) - 1; i >= 0; i-- {
		table := backupTables[i]
		if !force && table != "store_meta" {
			var n int64
			if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
				return fmt.Errorf("%s: %w", table, err)
			}
			if n > 0 {
				return fmt.Errorf("%w: %s has %d rows (restore into a fresh store, or give --force to replace its data)", ErrNotEmpty, table, n)
			}
			continue
		}
		if _, err := tx.Exec(ctx, "DELETE FROM "+table); err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
	}
	return nil
}

// loadTables reads the table sections up to the trailer and inserts them.
func (s *Store) loadTables(ctx context.Context, tx *txn, dec *json.Decoder, st BackupStats) (BackupStats, error) {
	known := map[string]bool{}
	for _, t := range backupTables {
		known[t] = true
	}
	var ins *sql.Stmt
	defer func() {
		if ins != nil {
			ins.Close()
		}
	}()
	ncols := 0
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return st, fmt.Errorf("%w: cut short (%v)", ErrBadBackup, err)
		}
		if len(raw) > 0 && raw[0] == '[' {
			if ins == nil {
				return st, fmt.Errorf("%w: a row before any table", ErrBadBackup)
			}
			if err := insertRow(ctx, ins, raw, ncols); err != nil {
				return st, err
			}
			st.Rows++
			continue
		}
		var l backupLine
		if err := json.Unmarshal(raw, &l); err != nil {
			return st, fmt.Errorf("%w: %w", ErrBadBackup, err)
		}
		if l.End {
			if l.Rows != st.Rows {
				return st, fmt.Errorf("%w: the trailer counts %d rows, the file has %d", ErrBadBackup, l.Rows, st.Rows)
			}
			return st, nil
		}
		if !known[l.Table] || len(l.Columns) == 0 {
			return st, fmt.Errorf("%w: unknown table %q", ErrBadBackup, l.Table)
		}
		if ins != nil {
			ins.Close()
		}
		q := "INSERT INTO " + l.Table + " (" + strings.Join(l.Columns, ", ") + ") VALUES (?" + strings.Repeat(", ?", len(l.Columns)-1) + ")"
		var err error
		if ins, err = tx.Prepare(ctx, q); err != nil {
			return st, fmt.Errorf("%s: %w", l.Table, err)
		}
		ncols = len(l.Columns)
		st.Tables++
	}
}

func insertRow(ctx context.Context, ins *sql.Stmt, raw json.RawMessage, ncols int) error {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var vals []any
	if err := dec.Decode(&vals); err != nil || len(vals) != ncols {
		return fmt.Errorf("%w: a row has %d values for %d columns", ErrBadBackup, len(vals), ncols)
	}
	for i, v := range vals {
		d, err := decodeValue(v)
		if err != nil {
			return err
		}
		vals[i] = d
	}
	_, err := ins.ExecContext(ctx, vals...)
	return err
}

// checkRestoredKey opens the restored key check with this store's key: a
// backup sealed with another key is refused before it replaces anything.
func (s *Store) checkRestoredKey(ctx context.Context, tx *txn) error {
	var got []byte
	if err := tx.QueryRow(ctx, "SELECT value FROM store_meta WHERE name = ?", "key_check").Scan(&got); err != nil {
		return fmt.Errorf("%w: no key check", ErrBadBackup)
	}
	if v, err := s.seal.openString(got, "store_meta", "value", "key_check"); err != nil || v != keyCheckPlain {
		return fmt.Errorf("the backup was sealed with another key (set MAILGATE_KEY or key_file to the key of the store it was taken from): %w", ErrWrongKey)
	}
	return nil
}
