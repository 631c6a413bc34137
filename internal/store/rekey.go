package store

import (
	"context"
	"fmt"
	"strings"
)

// sealedColumn names one sealed column and the columns that make up its
// rows' identity in the additional data (see sealAD).
type sealedColumn struct {
	table, column string
	ids           []string
	where         string // optional condition selecting the sealed rows
}

// sealedColumns lists every sealed value in the store: Rekey re-seals
// exactly these, and TestRekeyCoversEverySealedValue fails when a sealed
// column is added without being listed here. Message chunks kept before
// sealing (no marker chunk at sequence -1) are clear and left as they are.
var sealedColumns = []sealedColumn{
	{table: "store_meta", column: "value", ids: []string{"name"}, where: "name = 'key_check'"},
	{table: tokensTable, column: "access_token", ids: []string{"profile", "scope_key"}},
	{table: tokensTable, column: "refresh_token", ids: []string{"profile", "scope_key"}},
	{table: tokensTable, column: "id_token", ids: []string{"profile", "scope_key"}},
	{table: refreshTable, column: "refresh_token", ids: []string{"profile"}},
	{table: recordsTable, column: "sealed", ids: []string{"kind", "name"}},
	{table: chunksTable, column: "data", ids: []string{"message_id", "seq"},
		where: fmt.Sprintf("message_id IN (SELECT message_id FROM %s WHERE seq = %d)", chunksTable, markerSeq)},
}

// RekeyStats counts the values Reseal re-sealed.
type RekeyStats struct {
	Values int
}

// Reseal re-seals every sealed value under newKey in one transaction: it
// opens each with the store's current key and seals it again for the same
// place with the new one, the key check included, so that afterwards only
// newKey opens the store. Any value that does not open with the current
// key aborts the whole reseal (nothing changes). The Store keeps sealing
// with the old key afterwards: close it and open the store again with
// newKey. A serve running on the same store while the rekey commits would
// go on writing values sealed with the old key, so serve must be stopped
// (the CLI refuses while a serve heartbeat is fresh).
func (s *Store) Reseal(ctx context.Context, newKey []byte) (RekeyStats, error) {
	next, err := newSealer(newKey)
	if err != nil {
		return RekeyStats{}, err
	}
	var st RekeyStats
	err = s.inTx(ctx, func(tx *txn) error {
		for _, c := range sealedColumns {
			n, err := s.rekeyColumn(ctx, tx, next, c)
			if err != nil {
				return fmt.Errorf("%s.%s: %w", c.table, c.column, err)
			}
			st.Values += n
		}
		return nil
	})
	if err != nil {
		return RekeyStats{}, fmt.Errorf("store: rekey: %w", err)
	}
	return st, nil
}

// rekeyColumn re-seals one column: the row identities are read first (a
// connection cannot run statements while it streams rows), then each
// value is read, opened, sealed anew and written back.
func (s *Store) rekeyColumn(ctx context.Context, tx *txn, next *sealer, c sealedColumn) (int, error) {
	where := c.column + " IS NOT NULL"
	if c.where != "" {
		where += " AND " + c.where
	}
	idList := strings.Join(c.ids, ", ")
	rows, err := tx.Query(ctx, "SELECT "+idList+" FROM "+c.table+" WHERE "+where)
	if err != nil {
		return 0, err
	}
	var keys [][]any
	for rows.Next() {
		k := make([]any, len(c.ids))
		ptrs := make([]any, len(k))
		for i := range k {
			ptrs[i] = &k[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			rows.Close()
			return 0, err
		}
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	match := strings.Join(c.ids, " = ? AND ") + " = ?"
	for _, k := range keys {
		row := make([]string, len(k))
		for i, v := range k {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			row[i] = fmt.Sprint(v)
		}
		var sealed []byte
		if err := tx.QueryRow(ctx, "SELECT "+c.column+" FROM "+c.table+" WHERE "+match, k...).Scan(&sealed); err != nil {
			return 0, err
		}
		ad := sealAD(c.table, c.column, row...)
		plain, err := s.seal.open(sealed, ad)
		if err != nil {
			return 0, &DecryptError{Table: c.table, Column: c.column, Row: joinRow(row)}
		}
		resealed, err := next.seal(plain, ad)
		if err != nil {
			return 0, err
		}
		if _, err := tx.Exec(ctx, "UPDATE "+c.table+" SET "+c.column+" = ? WHERE "+match, append([]any{resealed}, k...)...); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}
