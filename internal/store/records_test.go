package store

import (
	"bytes"
	"errors"
	"testing"
)

func TestRecords(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn, newKey(t))
		ctx := t.Context()
		y := []byte("{name: p, client_secret: very-secret-value}")
		if err := s.PutRecord(ctx, "profiles", "p", y); err != nil {
			t.Fatal(err)
		}
		if err := s.PutRecord(ctx, "mailboxes", "m", []byte("{name: m}")); err != nil {
			t.Fatal(err)
		}
		y2 := []byte("{name: p, client_secret: rotated}")
		if err := s.PutRecord(ctx, "profiles", "p", y2); err != nil {
			t.Fatal(err)
		}
		rs, err := s.Records(ctx)
		if err != nil || len(rs) != 2 || rs[0].Kind != "mailboxes" || !bytes.Equal(rs[1].YAML, y2) {
			t.Fatalf("%+v %v", rs, err)
		}
		// sealed at rest: the secret is not in the table's bytes
		var raw []byte
		if err := s.queryRow(ctx, "SELECT sealed FROM config_records WHERE kind = 'profiles'").Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte("rotated")) {
			t.Error("record stored in the clear")
		}
		if err := s.DeleteRecord(ctx, "mailboxes", "m"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteRecord(ctx, "mailboxes", "m"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second delete: %v", err)
		}
	})
}
