package store

import (
	"errors"
	"testing"
	"time"
)

func TestHeldMessages(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn, newKey(t))
		ctx := t.Context()
		first := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		date := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
		hs := []HeldMessage{
			{Key: "forms/imap/7/3", UID: "3", MessageID: "<m3@x>", Subject: "Invoice", From: "a@example.com", Size: 120, Date: date,
				State: HeldRefused, Permanent: true, Reason: "exit status 1", Attempts: 1, FirstAt: first, LastAt: first},
			{Key: "forms/imap/7/5", UID: "5", Size: 80, State: HeldDeferred, Reason: "503", Attempts: 3,
				FirstAt: first.Add(time.Minute), LastAt: first.Add(time.Minute), NextAt: first.Add(time.Hour)},
		}
		if err := s.PutHeld(ctx, "forms", hs); err != nil {
			t.Fatal(err)
		}
		if err := s.PutHeld(ctx, "other", []HeldMessage{{Key: "other/pop3/x", UID: "x", State: HeldFailing, Attempts: 1}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Held(ctx, "forms")
		if err != nil || len(got) != 2 {
			t.Fatalf("held: %+v %v", got, err)
		}
		h := got[0]
		if h.Mailbox != "forms" || h.Key != hs[0].Key || h.UID != "3" || h.MessageID != "<m3@x>" || h.Subject != "Invoice" || h.From != "a@example.com" ||
			h.Size != 120 || !h.Date.Equal(date) || h.State != HeldRefused || !h.Permanent || h.Reason != "exit status 1" || h.Attempts != 1 ||
			!h.FirstAt.Equal(first) || !h.LastAt.Equal(first) || !h.NextAt.IsZero() {
			t.Errorf("round trip: %+v", h)
		}
		if !got[1].NextAt.Equal(first.Add(time.Hour)) || got[1].Permanent {
			t.Errorf("deferred: %+v", got[1])
		}
		if all, _ := s.Held(ctx, ""); len(all) != 3 {
			t.Errorf("all mailboxes: %d", len(all))
		}
		// a second refusal keeps the first attempt's time
		again := hs[0]
		again.Attempts, again.FirstAt, again.LastAt = 2, first.Add(time.Hour), first.Add(time.Hour)
		if err := s.PutHeld(ctx, "forms", []HeldMessage{again}); err != nil {
			t.Fatal(err)
		}
		byKey, err := s.HeldKeys(ctx, "forms")
		if err != nil || len(byKey) != 2 {
			t.Fatalf("HeldKeys %v %v", byKey, err)
		}
		if h := byKey[hs[0].Key]; h.Attempts != 2 || !h.FirstAt.Equal(first) || !h.LastAt.Equal(first.Add(time.Hour)) {
			t.Errorf("second refusal: %+v", h)
		}
		counts, err := s.HeldCounts(ctx)
		if err != nil || counts["forms"][HeldRefused] != 1 || counts["forms"][HeldDeferred] != 1 || counts["other"][HeldFailing] != 1 {
			t.Fatalf("counts %v %v", counts, err)
		}

		// retry one, then all; unknown keys are ErrNotFound
		if n, err := s.RetryHeld(ctx, "forms", hs[0].Key); err != nil || n != 1 {
			t.Fatalf("retry: %d %v", n, err)
		}
		if _, err := s.RetryHeld(ctx, "forms", "forms/imap/7/99"); !errors.Is(err, ErrNotFound) {
			t.Errorf("retry of an unknown key: %v", err)
		}
		if n, err := s.RetryHeld(ctx, "forms", ""); err != nil || n != 2 {
			t.Fatalf("retry all: %d %v", n, err)
		}
		byKey, _ = s.HeldKeys(ctx, "forms")
		if h := byKey[hs[1].Key]; h.State != HeldRetry || !h.NextAt.IsZero() {
			t.Errorf("retried: %+v", h)
		}

		// dropped: left out of the list, kept for the agent, not retried
		if err := s.DropHeld(ctx, "forms", hs[1].Key); err != nil {
			t.Fatal(err)
		}
		if err := s.DropHeld(ctx, "forms", hs[1].Key); !errors.Is(err, ErrNotFound) {
			t.Errorf("second drop: %v", err)
		}
		if _, err := s.RetryHeld(ctx, "forms", hs[1].Key); !errors.Is(err, ErrNotFound) {
			t.Errorf("retry of a dropped message: %v", err)
		}
		if got, _ := s.Held(ctx, "forms"); len(got) != 1 || got[0].Key != hs[0].Key {
			t.Errorf("list after drop: %+v", got)
		}
		if byKey, _ := s.HeldKeys(ctx, "forms"); byKey[hs[1].Key].State != HeldDropped {
			t.Errorf("dropped row: %+v", byKey[hs[1].Key])
		}

		// delivered at last: no longer held
		if err := s.MarkDelivered(ctx, "forms", []LedgerEntry{{Key: hs[0].Key, UID: "3", Size: 120}}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Held(ctx, "forms"); len(got) != 0 {
			t.Errorf("delivered message still held: %+v", got)
		}
	})
}
