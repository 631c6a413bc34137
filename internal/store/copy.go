package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// ErrTargetNotEmpty is returned (wrapped in *TargetNotEmptyError) by Copy
// when the target store holds rows and Force is not set.
var ErrTargetNotEmpty = errors.New("store: the target store is not empty")

// TargetNotEmptyError names the first target table found holding rows.
// It matches ErrTargetNotEmpty with errors.Is.
type TargetNotEmptyError struct {
	Table string
	Rows  int64
}

func (e *TargetNotEmptyError) Error() string {
	return fmt.Sprintf("store: the target store is not empty (%s has %d rows): use --force to replace its contents", e.Table, e.Rows)
}

// Is makes errors.Is(err, ErrTargetNotEmpty) true.
func (e *TargetNotEmptyError) Is(target error) bool { return target == ErrTargetNotEmpty }

// CopyOptions configure Copy.
type CopyOptions struct {
	// Force empties a target that holds rows instead of refusing it.
	Force bool
}

// TableCount is how many rows Copy copied into one table.
type TableCount struct {
	Table string
	Rows  int64
}

// colKind is how a column is read from one database and written to the
// other: by the declared type, not by what SQLite happened to store.
type colKind int

const (
	colText colKind = iota
	colInt
	colBytes
)

type copyCol struct {
	name string
	kind colKind
}

// copyTable is one table that Copy copies: its columns in the order of
// the migrations, where the rows of SELECT start (filter), and whether
// its id is a sequence that PostgreSQL must be told about afterwards.
type copyTable struct {
	name    string
	cols    []copyCol
	orderBy string
	filter  string // extra WHERE clause, "" for none
	serial  bool   // id is BIGSERIAL in PostgreSQL (AUTOINCREMENT in SQLite)
}

func textCol(name string) copyCol  { return copyCol{name, colText} }
func intCol(name string) copyCol   { return copyCol{name, colInt} }
func bytesCol(name string) copyCol { return copyCol{name, colBytes} }

// copyTables lists every table Copy copies, parents before children
// (foreign keys). Sealed columns are copied as they are: their additional
// data is the table, the column and the row's identity (names, keys, and
// for message_chunks the message id and sequence, which are copied too),
// the same in both dialects, so the same key opens them in the target.
var copyTables = []copyTable{
	// The key check is written by Open into every store; other facts
	// about the store, if any are added later, are copied.
	{name: "store_meta", cols: []copyCol{textCol("name"), bytesCol("value")}, orderBy: "name", filter: "name <> 'key_check'"},
	{name: "oauth_tokens", orderBy: "profile, scope_key", cols: []copyCol{
		textCol("profile"), textCol("scope_key"), bytesCol("access_token"), bytesCol("refresh_token"), bytesCol("id_token"),
		textCol("token_type"), textCol("scope"), textCol("resource"), intCol("issued_at"), intCol("expiry"), intCol("ext_expiry"),
		intCol("refresh_after"), intCol("saved_at")}},
	{name: "oauth_refresh_tokens", orderBy: "profile", cols: []copyCol{
		textCol("profile"), bytesCol("refresh_token"), intCol("saved_at"), intCol("used_at")}},
	{name: "mailbox_cursors", orderBy: "mailbox", cols: []copyCol{
		textCol("mailbox"), textCol("validity"), textCol("last_uid"), intCol("saved_at")}},
	{name: "delivery_ledger", orderBy: "mailbox, msg_key", cols: []copyCol{
		textCol("mailbox"), textCol("msg_key"), textCol("uid"), textCol("message_id"), intCol("size"), intCol("msg_date"),
		textCol("sink_ref"), intCol("state"), intCol("delivered_at"), intCol("acked_at")}},
	{name: "messages", orderBy: "id", serial: true, cols: []copyCol{
		intCol("id"), textCol("mailbox"), textCol("msg_key"), intCol("size"), intCol("received_at"), intCol("stored_at")}},
	{name: "message_chunks", orderBy: "message_id, seq", cols: []copyCol{
		intCol("message_id"), intCol("seq"), bytesCol("data")}},
	{name: "outbox", orderBy: "id", serial: true, cols: []copyCol{
		intCol("id"), textCol("sender"), textCol("mail_from"), bytesCol("raw"), textCol("state"), intCol("attempts"),
		intCol("next_attempt"), textCol("last_error"), intCol("created_at"), intCol("updated_at"),
		textCol("claimed_by"), intCol("claim_until")}},
	{name: "outbox_rcpts", orderBy: "outbox_id, rcpt", cols: []copyCol{
		intCol("outbox_id"), textCol("rcpt"), textCol("state"), textCol("reply")}},
	{name: "admins", orderBy: "name", cols: []copyCol{
		textCol("name"), textCol("pw_hash"), intCol("created_at"), intCol("last_login")}},
	{name: "admin_sessions", orderBy: "id_hash", cols: []copyCol{
		textCol("id_hash"), textCol("admin"), intCol("expires_at")}},
	{name: "api_tokens", orderBy: "token_hash", cols: []copyCol{
		textCol("token_hash"), textCol("admin"), intCol("created_at"), intCol("last_used"), intCol("expires_at")}},
	{name: "config_records", orderBy: "kind, name", cols: []copyCol{
		textCol("kind"), textCol("name"), bytesCol("sealed"), intCol("updated_at")}},
	{name: "held_messages", orderBy: "mailbox, msg_key", cols: []copyCol{
		textCol("mailbox"), textCol("msg_key"), textCol("uid"), textCol("message_id"), textCol("subject"), textCol("sender"),
		intCol("size"), intCol("msg_date"), textCol("state"), intCol("permanent"), textCol("reason"), intCol("attempts"),
		intCol("first_at"), intCol("last_at"), intCol("next_at")}},
	// Sign-in throttling is copied so that a migration does not reset a
	// lockout an attacker earned.
	{name: "login_failures", orderBy: "admin, address", cols: []copyCol{
		textCol("admin"), textCol("address"), intCol("failures"), intCol("last_at"), intCol("next_at")}},
}

// copySkipped are the tables Copy does not copy, with the reason. They
// still count when deciding whether the target is empty, and Force
// empties them.
var copySkipped = map[string]string{
	// Bookkeeping of the migrations, written by Open in the target.
	"schema_migrations": "written by Open",
	// Leases and instances (heartbeats) of serve processes of the source:
	// the target's own serve instances take the mailboxes anew, and in the
	// target they would make `send` believe an outbox worker runs.
	"mailbox_leases":  "belongs to the running processes of the source",
	"serve_instances": "belongs to the running processes of the source",
	// The proxy accounts' last logins: what the source's processes saw.
	"proxy_logins": "belongs to the running processes of the source",
}

// Copy copies every mailgate table of from into to, which must be opened
// with the same key (values are copied sealed as they are; Open's key
// check refuses a target made with another key). The target must hold no
// row in any mailgate table (the key check apart), else Copy returns a
// *TargetNotEmptyError; with opts.Force the target is emptied first. The
// whole copy is one transaction in the target: it is all there or not at
// all. It returns the rows copied per table, in copy order.
func Copy(ctx context.Context, from, to *Store, opts CopyOptions) ([]TableCount, error) {
	if from == to {
		return nil, errors.New("store: copy: the source and the target are the same store")
	}
	if err := sameKey(from, to); err != nil {
		return nil, err
	}
	var counts []TableCount
	err := to.inTx(ctx, func(tx *txn) error {
		if err := prepareTarget(ctx, tx, opts.Force); err != nil {
			return err
		}
		counts = counts[:0]
		for _, tb := range copyTables {
			n, err := copyRows(ctx, from, tx, tb)
			if err != nil {
				return fmt.Errorf("store: copy %s: %w", tb.name, err)
			}
			if tb.serial && to.d.name == "postgres" {
				if err := resetSequence(ctx, tx, tb.name); err != nil {
					return fmt.Errorf("store: copy %s: %w", tb.name, err)
				}
			}
			counts = append(counts, TableCount{Table: tb.name, Rows: n})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}

// ErrKeyMismatch is returned by Copy when the target store was opened
// with another key than the source: the sealed values copied as they are
// would not open there.
var ErrKeyMismatch = errors.New("store: copy: the target is opened with another key than the source: use the same MAILGATE_KEY or key file")

// sameKey checks that a value sealed by from opens in to.
func sameKey(from, to *Store) error {
	probe, err := from.seal.sealString(keyCheckPlain, "store_meta", "value", "copy_probe")
	if err != nil {
		return err
	}
	if _, err := to.seal.openString(probe, "store_meta", "value", "copy_probe"); err != nil {
		return ErrKeyMismatch
	}
	return nil
}

// emptiedTables are the tables whose rows make a target non-empty, in an
// order that deletes children before parents.
func emptiedTables() []copyTable {
	ts := []copyTable{{name: "mailbox_leases"}, {name: "serve_instances"}, {name: "proxy_logins"}}
	for k := len(copyTables) - 1; k >= 0; k-- {
		ts = append(ts, copyTables[k])
	}
	return ts
}

// prepareTarget refuses a target with rows, or empties it with force.
func prepareTarget(ctx context.Context, tx *txn, force bool) error {
	for _, tb := range emptiedTables() {
		q := "SELECT COUNT(*) FROM " + tb.name
		if tb.filter != "" {
			q += " WHERE " + tb.filter
		}
		var n int64
		if err := tx.QueryRow(ctx, q).Scan(&n); err != nil {
			return fmt.Errorf("store: copy: count %s in the target: %w", tb.name, err)
		}
		if n == 0 {
			continue
		}
		if !force {
			return &TargetNotEmptyError{Table: tb.name, Rows: n}
		}
		q = "DELETE FROM " + tb.name
		if tb.filter != "" {
			q += " WHERE " + tb.filter
		}
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("store: copy: empty %s in the target: %w", tb.name, err)
		}
	}
	return nil
}

// copyRows streams one table's rows from the source into the target's
// transaction, one row in memory at a time.
func copyRows(ctx context.Context, from *Store, tx *txn, tb copyTable) (int64, error) {
	names := make([]string, len(tb.cols))
	marks := make([]string, len(tb.cols))
	for k, c := range tb.cols {
		names[k] = c.name
		marks[k] = "?"
	}
	sel := "SELECT " + strings.Join(names, ", ") + " FROM " + tb.name
	if tb.filter != "" {
		sel += " WHERE " + tb.filter
	}
	sel += " ORDER BY " + tb.orderBy
	ins, err := tx.Prepare(ctx, "INSERT INTO "+tb.name+" ("+strings.Join(names, ", ")+") VALUES ("+strings.Join(marks, ", ")+")")
	if err != nil {
		return 0, fmt.Errorf("prepare insert: %w", err)
	}
	defer ins.Close()
	rows, err := from.query(ctx, sel)
	if err != nil {
		return 0, fmt.Errorf("read the source: %w", err)
	}
	defer rows.Close()
	vals := make([]any, len(tb.cols))
	ptrs := make([]any, len(tb.cols))
	var n int64
	for rows.Next() {
		for k, c := range tb.cols {
			switch c.kind {
			case colText:
				ptrs[k] = new(sql.NullString)
			case colInt:
				ptrs[k] = new(sql.NullInt64)
			default:
				ptrs[k] = new([]byte)
			}
		}
		if err := rows.Scan(ptrs...); err != nil {
			return n, fmt.Errorf("read the source: %w", err)
		}
		for k, p := range ptrs {
			switch v := p.(type) {
			case *sql.NullString:
				vals[k] = *v
			case *sql.NullInt64:
				vals[k] = *v
			case *[]byte:
				vals[k] = *v // nil stays NULL
			}
		}
		if _, err := ins.ExecContext(ctx, vals...); err != nil {
			return n, fmt.Errorf("write the target: %w", err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("read the source: %w", err)
	}
	return n, nil
}

// resetSequence moves a PostgreSQL BIGSERIAL past the ids copied in, so
// that the next message or outbox entry gets a new id.
func resetSequence(ctx context.Context, tx *txn, table string) error {
	_, err := tx.Exec(ctx, "SELECT setval(pg_get_serial_sequence('"+table+"', 'id'), COALESCE((SELECT MAX(id) FROM "+table+"), 0) + 1, false)")
	if err != nil {
		return fmt.Errorf("reset the id sequence: %w", err)
	}
	return nil
}
