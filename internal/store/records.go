package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

const recordsTable = "config_records"

// Record is a console-made config record: kind (profiles, mailboxes,
// sinks, senders), name and the YAML of the item.
type Record struct {
	Kind, Name string
	YAML       []byte
	UpdatedAt  time.Time
}

// PutRecord creates or replaces a record; its YAML is sealed.
func (s *Store) PutRecord(ctx context.Context, kind, name string, yaml []byte) error {
	sealed, err := s.seal.seal(yaml, sealAD(recordsTable, "sealed", kind, name))
	if err != nil {
		return fmt.Errorf("store: record %s/%s: %w", kind, name, err)
	}
	_, err = s.exec(ctx, `INSERT INTO config_records (kind, name, sealed, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (kind, name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at`,
		kind, name, sealed, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("store: record %s/%s: %w", kind, name, err)
	}
	return nil
}

// DeleteRecord removes a record; ErrNotFound when there is none.
func (s *Store) DeleteRecord(ctx context.Context, kind, name string) error {
	res, err := s.exec(ctx, "DELETE FROM config_records WHERE kind = ? AND name = ?", kind, name)
	if err != nil {
		return fmt.Errorf("store: record %s/%s: %w", kind, name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: record %s/%s: %w", kind, name, ErrNotFound)
	}
	return nil
}

// Records returns every record, by kind and name.
func (s *Store) Records(ctx context.Context) ([]Record, error) {
	rows, err := s.query(ctx, "SELECT kind, name, sealed, updated_at FROM config_records ORDER BY kind, name")
	if err != nil {
		return nil, fmt.Errorf("store: records: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var r Record
		var sealed []byte
		var updated int64
		if err := rows.Scan(&r.Kind, &r.Name, &sealed, &updated); err != nil {
			return nil, err
		}
		if r.YAML, err = s.seal.open(sealed, sealAD(recordsTable, "sealed", r.Kind, r.Name)); err != nil {
			return nil, errors.Join(fmt.Errorf("store: record %s/%s", r.Kind, r.Name), err)
		}
		r.UpdatedAt = time.Unix(0, updated)
		out = append(out, r)
	}
	return out, rows.Err()
}
