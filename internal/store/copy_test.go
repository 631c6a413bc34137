package store

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestCopyCoversEveryTable fails when a migration adds a table or a
// column that Copy neither copies nor skips on purpose.
func TestCopyCoversEveryTable(t *testing.T) {
	s := mustOpen(t, "sqlite:"+filepath.Join(t.TempDir(), "src.db"), newKey(t))
	rows, err := s.db.QueryContext(t.Context(),
		"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	known := map[string][]string{}
	for _, tb := range copyTables {
		for _, c := range tb.cols {
			known[tb.name] = append(known[tb.name], c.name)
		}
	}
	for _, name := range tables {
		if _, ok := copySkipped[name]; ok {
			continue
		}
		want, ok := known[name]
		if !ok {
			t.Errorf("table %s is created by the migrations but neither copied (copyTables) nor skipped (copySkipped)", name)
			continue
		}
		var got []string
		cr, err := s.db.QueryContext(t.Context(), "SELECT name FROM pragma_table_info(?)", name)
		if err != nil {
			t.Fatal(err)
		}
		for cr.Next() {
			var c string
			if err := cr.Scan(&c); err != nil {
				t.Fatal(err)
			}
			got = append(got, c)
		}
		cr.Close()
		sort.Strings(got)
		w := slices.Clone(want)
		sort.Strings(w)
		if !slices.Equal(got, w) {
			t.Errorf("table %s has columns %v, Copy copies %v", name, got, w)
		}
		delete(known, name)
	}
	for name := range known {
		t.Errorf("copyTables names %s, which the migrations do not create", name)
	}
}

// fillForCopy puts at least one row into every copied table of s and
// returns the secrets needed to check them after the copy.
func fillForCopy(t *testing.T, s *Store) (apiToken, session string, sentID, queuedID int64, msgID string) {
	t.Helper()
	ctx := t.Context()
	now := time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.SaveToken(ctx, "p1", "scope-a", fullToken("access-1")))
	must(s.SaveRefreshToken(ctx, "p1", "refresh-1"))
	must(s.SetMailboxCursor(ctx, "mb1", Cursor{Validity: "7", Last: "42"}))
	must(s.MarkDelivered(ctx, "mb1", []LedgerEntry{
		{Key: "k1", UID: "41", MessageID: "<a@x>", Size: 10, Date: now, SinkRef: "ref1", State: LedgerDelivered, DeliveredAt: now},
		{Key: "k2", UID: "42", MessageID: "<b@x>", Size: 20, State: LedgerDelivered, DeliveredAt: now},
	}))
	must(s.MarkAcked(ctx, "mb1", []string{"k1"}))
	var err error
	msgID, _, err = s.PutMessage(ctx, "mb1", "k1", now, bytes.NewReader(bytes.Repeat([]byte("body "), 100000)))
	must(err)
	sentID, err = s.Enqueue(ctx, "smtp1", "a@x", []string{"b@x", "c@x"}, []byte("sent message"))
	must(err)
	must(s.MarkSent(ctx, sentID))
	queuedID, err = s.Enqueue(ctx, "smtp1", "a@x", []string{"d@x"}, []byte("queued message"))
	must(err)
	must(s.SetAdmin(ctx, "root", "correct horse battery"))
	session, err = s.NewSession(ctx, "root", time.Hour)
	must(err)
	apiToken, err = s.NewAPITokenUntil(ctx, "root", now.Add(24*time.Hour))
	must(err)
	must(s.PutRecord(ctx, "profiles", "p1", []byte("name: p1\nclient_secret: s3cret\n")))
	must(s.PutHeld(ctx, "mb1", []HeldMessage{{Key: "k9", UID: "49", Subject: "held", State: "held",
		Permanent: true, Reason: "550 no", Attempts: 1, FirstAt: now, LastAt: now}}))
	must(s.BeginLogin(ctx, "root", "192.0.2.1", now))
	_, err = s.exec(ctx, "INSERT INTO store_meta (name, value) VALUES (?, ?)", "later_fact", []byte{1, 2, 3})
	must(err)
	must(s.InstanceBeat(ctx, "instance-1"))
	return apiToken, session, sentID, queuedID, msgID
}

func countRows(t *testing.T, s *Store, tb copyTable) int64 {
	t.Helper()
	q := "SELECT COUNT(*) FROM " + tb.name
	if tb.filter != "" {
		q += " WHERE " + tb.filter
	}
	var n int64
	if err := s.queryRow(t.Context(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCopy(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		key := newKey(t)
		src := mustOpen(t, "sqlite:"+filepath.Join(t.TempDir(), "src.db"), key)
		apiToken, session, sentID, queuedID, msgID := fillForCopy(t, src)
		dst := mustOpen(t, dsn, key)
		counts, err := Copy(ctx, src, dst, CopyOptions{})
		if err != nil {
			t.Fatalf("Copy: %v", err)
		}
		if len(counts) != len(copyTables) {
			t.Fatalf("Copy reported %d tables, want %d", len(counts), len(copyTables))
		}
		for k, tb := range copyTables {
			want := countRows(t, src, tb)
			if want == 0 {
				t.Errorf("the fixture leaves %s empty: fill it in fillForCopy", tb.name)
			}
			if got := countRows(t, dst, tb); got != want || counts[k].Rows != want {
				t.Errorf("%s: %d rows in the target, Copy reported %d, want %d", tb.name, got, counts[k].Rows, want)
			}
		}
		if running, err := dst.ServeRunning(ctx, time.Hour); err != nil || running {
			t.Errorf("ServeRunning on the target = %v, %v; want false (heartbeats are not copied)", running, err)
		}
		// Sealed values open in the target.
		if tok, err := dst.LoadToken(ctx, "p1", "scope-a"); err != nil || tok.AccessToken != "access-1" {
			t.Errorf("LoadToken = %v, %v", tok, err)
		}
		if rt, err := dst.LoadRefreshToken(ctx, "p1"); err != nil || rt != "refresh-1" {
			t.Errorf("LoadRefreshToken = %q, %v", rt, err)
		}
		recs, err := dst.Records(ctx)
		if err != nil || len(recs) != 1 || !strings.Contains(string(recs[0].YAML), "s3cret") {
			t.Errorf("Records = %+v, %v", recs, err)
		}
		var body bytes.Buffer
		if err := dst.OpenMessage(ctx, msgID, &body); err != nil || body.Len() != 500000 {
			t.Errorf("OpenMessage = %d bytes, %v", body.Len(), err)
		}
		// The ledger and the cursor: nothing would be delivered again.
		if c, err := dst.MailboxCursor(ctx, "mb1"); err != nil || c != (Cursor{Validity: "7", Last: "42"}) {
			t.Errorf("MailboxCursor = %+v, %v", c, err)
		}
		st, err := dst.Delivered(ctx, "mb1", []string{"k1", "k2"})
		if err != nil || st["k1"] != LedgerAcked || st["k2"] != LedgerDelivered {
			t.Errorf("Delivered = %v, %v", st, err)
		}
		// Console access.
		if err := dst.CheckAdmin(ctx, "root", "correct horse battery"); err != nil {
			t.Errorf("CheckAdmin: %v", err)
		}
		if a, err := dst.APITokenAdmin(ctx, apiToken); err != nil || a != "root" {
			t.Errorf("APITokenAdmin = %q, %v", a, err)
		}
		if a, err := dst.SessionAdmin(ctx, session); err != nil || a != "root" {
			t.Errorf("SessionAdmin = %q, %v", a, err)
		}
		// The outbox: the sent message stays sent, the queued one is due,
		// and new messages get new ids.
		due, _, err := dst.ClaimDue(ctx, "smtp1", 10, OutboxClaim{By: "t", Until: time.Now().Add(time.Minute)})
		if err != nil || len(due) != 1 || due[0].ID != queuedID || string(due[0].Raw) != "queued message" {
			t.Errorf("ClaimDue = %+v, %v; want only message %d", due, err, queuedID)
		}
		if m, err := dst.OutboxMessageStatus(ctx, sentID); err != nil || m.State != "sent" {
			t.Errorf("OutboxMessageStatus(%d) = %+v, %v", sentID, m, err)
		}
		next, err := dst.Enqueue(ctx, "smtp1", "a@x", []string{"e@x"}, []byte("new"))
		if err != nil || next <= queuedID {
			t.Errorf("Enqueue after the copy = %d, %v; want an id above %d", next, err, queuedID)
		}
		if _, _, err := dst.PutMessage(ctx, "mb2", "k5", time.Now(), strings.NewReader("new")); err != nil {
			t.Errorf("PutMessage after the copy: %v", err)
		}
	})
}

func TestCopyRefusesNonEmptyTarget(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		key := newKey(t)
		src := mustOpen(t, "sqlite:"+filepath.Join(t.TempDir(), "src.db"), key)
		if err := src.SetAdmin(ctx, "root", "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		dst := mustOpen(t, dsn, key)
		// A freshly opened target (key check only) is empty.
		if err := dst.InstanceBeat(ctx, "other"); err != nil {
			t.Fatal(err)
		}
		_, err := Copy(ctx, src, dst, CopyOptions{})
		var ne *TargetNotEmptyError
		if !errors.As(err, &ne) || !errors.Is(err, ErrTargetNotEmpty) || ne.Table != "serve_instances" {
			t.Fatalf("Copy into a target with a heartbeat = %v, want a TargetNotEmptyError naming serve_instances", err)
		}
		if err := dst.SetAdmin(ctx, "old", "another password"); err != nil {
			t.Fatal(err)
		}
		if _, err := Copy(ctx, src, dst, CopyOptions{}); !errors.Is(err, ErrTargetNotEmpty) {
			t.Fatalf("Copy into a target with an admin = %v, want ErrTargetNotEmpty", err)
		}
		if n, err := dst.CountAdmins(ctx); err != nil || n != 1 {
			t.Fatalf("the refused copy changed the target: %d admins, %v", n, err)
		}
		if _, err := Copy(ctx, src, dst, CopyOptions{Force: true}); err != nil {
			t.Fatalf("Copy with Force: %v", err)
		}
		if err := dst.CheckAdmin(ctx, "old", "another password"); err == nil {
			t.Error("Force kept the target's old admin")
		}
		if err := dst.CheckAdmin(ctx, "root", "correct horse battery"); err != nil {
			t.Errorf("CheckAdmin after Force: %v", err)
		}
		if running, err := dst.ServeRunning(ctx, time.Hour); err != nil || running {
			t.Errorf("Force kept the target's heartbeat: %v, %v", running, err)
		}
	})
}

func TestCopyRefusesOtherKey(t *testing.T) {
	ctx := t.Context()
	src := mustOpen(t, "sqlite:"+filepath.Join(t.TempDir(), "src.db"), newKey(t))
	if err := src.SaveRefreshToken(ctx, "p1", "refresh-1"); err != nil {
		t.Fatal(err)
	}
	dst := mustOpen(t, "sqlite:"+filepath.Join(t.TempDir(), "dst.db"), newKey(t))
	if _, err := Copy(ctx, src, dst, CopyOptions{}); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("Copy to a store with another key = %v, want ErrKeyMismatch", err)
	}
	if _, err := dst.LoadRefreshToken(ctx, "p1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the refused copy wrote the target: LoadRefreshToken = %v", err)
	}
}
