package store

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// fill puts one value of every sealed kind and some clear state into s.
func fill(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	if err := s.SaveToken(ctx, "p1", "scope-a", fullToken("access-1")); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRefreshToken(ctx, "p1", "refresh-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRecord(ctx, "sink", "s1", []byte("name: s1\nsecret: hush\n")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutMessage(ctx, "mb", "k1", time.Unix(1700000000, 0), strings.NewReader("Subject: hi\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDelivered(ctx, "mb", []LedgerEntry{{Key: "mb/1", UID: "1", MessageID: "<a@b>", Size: 10, SinkRef: "ref"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdmin(ctx, "admin", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
}

// checkFilled reads back everything fill wrote.
func checkFilled(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	tok, err := s.LoadToken(ctx, "p1", "scope-a")
	if err != nil || !sameToken(tok, fullToken("access-1")) {
		t.Fatalf("LoadToken = %v, %v", tok, err)
	}
	if rt, err := s.LoadRefreshToken(ctx, "p1"); err != nil || rt != "refresh-1" {
		t.Fatalf("LoadRefreshToken = %q, %v", rt, err)
	}
	recs, err := s.Records(ctx)
	if err != nil || len(recs) != 1 || string(recs[0].YAML) != "name: s1\nsecret: hush\n" {
		t.Fatalf("Records = %+v, %v", recs, err)
	}
	msgs, err := s.Messages(ctx, 10)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Messages = %+v, %v", msgs, err)
	}
	var body bytes.Buffer
	if err := s.OpenMessage(ctx, msgs[0].ID, &body); err != nil || body.String() != "Subject: hi\r\n\r\nbody\r\n" {
		t.Fatalf("OpenMessage = %q, %v", body.String(), err)
	}
	got, err := s.Delivered(ctx, "mb", []string{"mb/1"})
	if err != nil || len(got) != 1 {
		t.Fatalf("Delivered = %v, %v", got, err)
	}
	if err := s.CheckAdmin(ctx, "admin", "correct horse battery"); err != nil {
		t.Fatalf("CheckAdmin: %v", err)
	}
}

func TestBackupRestore(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		key := newKey(t)
		src := mustOpen(t, dsn, key)
		fill(t, src)
		var file bytes.Buffer
		bst, err := src.Backup(ctx, &file)
		if err != nil {
			t.Fatalf("Backup: %v", err)
		}
		for _, secret := range []string{"access-1", "refresh-1", "hush", "body"} {
			if bytes.Contains(file.Bytes(), []byte(secret)) {
				t.Errorf("the backup holds %q in clear", secret)
			}
		}
		if bytes.Contains(file.Bytes(), key) {
			t.Error("the backup holds the key")
		}

		// Into a fresh store of each dialect: the backup is portable.
		for _, b := range backends() {
			dst := mustOpen(t, b.dsn(t), key)
			rst, err := dst.Restore(ctx, bytes.NewReader(file.Bytes()), false)
			if err != nil {
				t.Fatalf("Restore into %s: %v", b.name, err)
			}
			if rst.Rows != bst.Rows || rst.Tables != bst.Tables {
				t.Errorf("restored %+v, backed up %+v", rst, bst)
			}
			checkFilled(t, dst)
			// New rows get new ids after the restored ones.
			if _, dup, err := dst.PutMessage(ctx, "mb", "k2", time.Time{}, strings.NewReader("x")); err != nil || dup {
				t.Fatalf("PutMessage after restore into %s: dup %v, %v", b.name, dup, err)
			}
		}

		// A store with data is refused, unless forced.
		if _, err := src.Restore(ctx, bytes.NewReader(file.Bytes()), false); !errors.Is(err, ErrNotEmpty) {
			t.Fatalf("Restore into a full store: %v, want ErrNotEmpty", err)
		}
		if err := src.SaveRefreshToken(ctx, "p2", "other"); err != nil {
			t.Fatal(err)
		}
		if _, err := src.Restore(ctx, bytes.NewReader(file.Bytes()), true); err != nil {
			t.Fatalf("Restore --force: %v", err)
		}
		checkFilled(t, src)
		if _, err := src.LoadRefreshToken(ctx, "p2"); !errors.Is(err, ErrNotFound) {
			t.Errorf("after a forced restore p2's token is still there: %v", err)
		}
	})
}

func TestRestoreRefused(t *testing.T) {
	ctx := t.Context()
	key := newKey(t)
	src := mustOpen(t, "sqlite::memory:", key)
	fill(t, src)
	var file bytes.Buffer
	if _, err := src.Backup(ctx, &file); err != nil {
		t.Fatal(err)
	}
	full := file.String()
	lines := strings.SplitAfter(full, "\n")
	tests := []struct {
		name string
		file string
		key  []byte
		want error
	}{
		{"another key", full, newKey(t), ErrWrongKey},
		{"cut short", strings.Join(lines[:len(lines)-3], ""), key, ErrBadBackup},
		{"no trailer", strings.Join(lines[:len(lines)-2], ""), key, ErrBadBackup},
		{"not a backup", "hello\n", key, ErrBadBackup},
		{"empty", "", key, ErrBadBackup},
		{"unknown table", lines[0] + `{"table":"evil; DROP TABLE admins","columns":["a"]}` + "\n", key, ErrBadBackup},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := mustOpen(t, "sqlite::memory:", tt.key)
			if _, err := dst.Restore(ctx, strings.NewReader(tt.file), false); !errors.Is(err, tt.want) {
				t.Fatalf("Restore = %v, want %v", err, tt.want)
			}
			// Nothing was restored.
			if _, err := dst.LoadRefreshToken(ctx, "p1"); !errors.Is(err, ErrNotFound) {
				t.Errorf("a refused restore left data: %v", err)
			}
		})
	}
}

// TestBackupCoversEveryTable fails when a table is added to the schema
// without being added to backupTables (or, deliberately, notBackedUp).
func TestBackupCoversEveryTable(t *testing.T) {
	s := mustOpen(t, "sqlite::memory:", newKey(t))
	rows, err := s.query(t.Context(), "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	listed := map[string]bool{}
	for _, n := range append(append([]string{}, backupTables...), notBackedUp...) {
		listed[n] = true
	}
	n := 0
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		n++
		if !listed[name] {
			t.Errorf("table %s is neither in backupTables nor in notBackedUp", name)
		}
	}
	if n != len(listed) {
		t.Errorf("the schema has %d tables, the lists name %d", n, len(listed))
	}
}

func TestResealEveryKind(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		oldKey, nextKey := newKey(t), newKey(t)
		s, err := Open(ctx, dsn, &Options{Key: oldKey})
		if err != nil {
			t.Fatal(err)
		}
		fill(t, s)
		st, err := s.Reseal(ctx, nextKey)
		if err != nil {
			t.Fatalf("Reseal: %v", err)
		}
		// key check, 3 token columns, refresh token, record, message
		// chunks (data and marker).
		if st.Values < 8 {
			t.Errorf("Reseal re-sealed %d values, want at least 8", st.Values)
		}
		// A sealed value no longer opens with the old key.
		var raw []byte
		if err := s.queryRow(ctx, "SELECT refresh_token FROM oauth_refresh_tokens WHERE profile = ?", "p1").Scan(&raw); err != nil {
			t.Fatal(err)
		}
		s.Close()
		old, _ := newSealer(oldKey)
		if _, err := old.open(raw, sealAD(refreshTable, "refresh_token", "p1")); !errors.Is(err, ErrDecrypt) {
			t.Errorf("the old key still opens the refresh token: %v", err)
		}
		next, _ := newSealer(nextKey)
		if pt, err := next.open(raw, sealAD(refreshTable, "refresh_token", "p1")); err != nil || string(pt) != "refresh-1" {
			t.Errorf("the new key opens %q, %v", pt, err)
		}
		if _, err := Open(ctx, dsn, &Options{Key: oldKey}); !errors.Is(err, ErrWrongKey) {
			t.Errorf("Open with the old key = %v, want ErrWrongKey", err)
		}
		checkFilled(t, mustOpen(t, dsn, nextKey))
	})
}

func TestResealWrongValueChangesNothing(t *testing.T) {
	ctx := t.Context()
	key := newKey(t)
	s := mustOpen(t, "sqlite::memory:", key)
	fill(t, s)
	// A value sealed with another key: the reseal must fail as a whole.
	other, _ := newSealer(newKey(t))
	bad, err := other.sealString("x", refreshTable, "refresh_token", "p9")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.exec(ctx, "INSERT INTO oauth_refresh_tokens (profile, refresh_token, saved_at) VALUES (?, ?, 0)", "p9", bad); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reseal(ctx, newKey(t)); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Reseal = %v, want ErrDecrypt", err)
	}
	checkFilled(t, s) // still under the old key
	if err := s.checkKey(context.Background()); err != nil {
		t.Fatalf("key check after a failed reseal: %v", err)
	}
}

// hookWriter runs hook once, at the first write that reaches it.
type hookWriter struct {
	w    bytes.Buffer
	hook func() error
	err  error
}

func (h *hookWriter) Write(p []byte) (int, error) {
	if h.hook != nil {
		h.err, h.hook = h.hook(), nil
	}
	return h.w.Write(p)
}

// TestBackupOnline: writes made while a backup runs go through (the backup
// holds no write lock) and are not in it (it is one snapshot): the hook
// runs while message_chunks is being written, before config_records is
// read.
func TestBackupOnline(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		key := newKey(t)
		s := mustOpen(t, dsn, key)
		fill(t, s)
		if _, _, err := s.PutMessage(ctx, "mb", "big", time.Time{}, strings.NewReader(strings.Repeat("x", 300<<10))); err != nil {
			t.Fatal(err)
		}
		hw := &hookWriter{hook: func() error {
			if err := s.PutRecord(ctx, "sink", "during", []byte("name: during\n")); err != nil {
				return err
			}
			return s.SaveRefreshToken(ctx, "p-during", "rt")
		}}
		if _, err := s.Backup(ctx, hw); err != nil {
			t.Fatalf("Backup: %v", err)
		}
		if hw.err != nil {
			t.Fatalf("a write during the backup failed: %v", hw.err)
		}
		if hw.hook != nil {
			t.Fatal("the hook did not run")
		}
		dst := mustOpen(t, backends()[0].dsn(t), key)
		if _, err := dst.Restore(ctx, &hw.w, false); err != nil {
			t.Fatal(err)
		}
		if msgs, err := dst.Messages(ctx, 10); err != nil || len(msgs) != 2 {
			t.Errorf("restored messages: %d, %v", len(msgs), err)
		}
		if _, err := dst.LoadRefreshToken(ctx, "p-during"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a token saved during the backup is in it: %v", err)
		}
		if recs, _ := dst.Records(ctx); len(recs) != 1 {
			t.Errorf("a record saved during the backup is in it: %d records", len(recs))
		}
	})
}
