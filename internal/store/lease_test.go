package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestLeases: acquiring a free lease, a held one refused, renewal keeping
// the epoch, a takeover of an expired lease growing it, release, and the
// instances with their lease counts.
func TestLeases(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn, newKey(t))
		ctx := t.Context()
		acquire := func(mb, owner string, ttl time.Duration, wantOK bool, wantEpoch int64) {
			t.Helper()
			epoch, ok, err := s.AcquireLease(ctx, mb, owner, ttl)
			if err != nil || ok != wantOK || (ok && epoch != wantEpoch) {
				t.Fatalf("AcquireLease(%s, %s) = %d, %v, %v; want %d, %v", mb, owner, epoch, ok, err, wantEpoch, wantOK)
			}
		}
		acquire("m1", "a", time.Minute, true, 1)
		acquire("m1", "b", time.Minute, false, 0)
		acquire("m1", "a", time.Minute, false, 0) // held: a renews, it does not acquire again
		if got, err := s.RenewLeases(ctx, "a", time.Minute); err != nil || len(got) != 1 || got["m1"] != 1 {
			t.Fatalf("RenewLeases(a) = %v, %v; want m1 at epoch 1", got, err)
		}
		if owner, ok, err := s.LeaseHolder(ctx, "m1"); err != nil || !ok || owner != "a" {
			t.Fatalf("LeaseHolder(m1) = %q, %v, %v", owner, ok, err)
		}
		// an expired lease (a negative ttl: already past by the
		// database's clock) is taken over with the next epoch
		acquire("m2", "a", -time.Second, true, 1)
		if _, ok, _ := s.LeaseHolder(ctx, "m2"); ok {
			t.Fatal("an expired lease has a holder")
		}
		acquire("m2", "b", time.Minute, true, 2)
		if got, err := s.RenewLeases(ctx, "a", time.Minute); err != nil || len(got) != 1 || got["m1"] != 1 {
			t.Fatalf("RenewLeases(a) after the takeover = %v, %v; want m1 only", got, err)
		}
		// released leases are free at once; the epoch goes on
		if err := s.ReleaseLease(ctx, "m2", "a", 1); err != nil { // not a's: nothing happens
			t.Fatal(err)
		}
		if owner, ok, _ := s.LeaseHolder(ctx, "m2"); !ok || owner != "b" {
			t.Fatalf("a stale release freed b's lease (%q, %v)", owner, ok)
		}
		if err := s.ReleaseLease(ctx, "m2", "b", 2); err != nil {
			t.Fatal(err)
		}
		acquire("m2", "a", time.Minute, true, 3)
		// a dead owner's live lease taken with the next epoch; not from
		// an owner who no longer holds it
		if e, ok, err := s.StealLease(ctx, "m2", "a", "c", time.Minute); err != nil || !ok || e != 4 {
			t.Fatalf("StealLease from a = %d, %v, %v; want epoch 4", e, ok, err)
		}
		if _, ok, err := s.StealLease(ctx, "m2", "a", "d", time.Minute); err != nil || ok {
			t.Fatalf("StealLease from a former owner = %v, %v; want refused", ok, err)
		}
		if err := s.ReleaseLease(ctx, "m2", "c", 4); err != nil {
			t.Fatal(err)
		}
		acquire("m2", "a", time.Minute, true, 5)

		for _, id := range []string{"a", "b", "c"} {
			if err := s.InstanceBeat(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.ForgetInstance(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		ins, err := s.Instances(ctx, time.Minute)
		if err != nil || len(ins) != 2 {
			t.Fatalf("Instances = %+v, %v; want a and b", ins, err)
		}
		counts := map[string]int{}
		for _, in := range ins {
			counts[in.ID] = in.Mailboxes
		}
		if counts["a"] != 2 || counts["b"] != 0 {
			t.Fatalf("lease counts %v, want a: 2, b: 0", counts)
		}
		ls, err := s.Leases(ctx)
		if err != nil || len(ls) != 2 || ls[0].Mailbox != "m1" || !ls[0].Live || ls[1].Owner != "a" || ls[1].Epoch != 5 {
			t.Fatalf("Leases = %+v, %v", ls, err)
		}
		if err := s.ReleaseLeases(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if got, err := s.RenewLeases(ctx, "a", time.Minute); err != nil || len(got) != 0 {
			t.Fatalf("RenewLeases after ReleaseLeases = %v, %v", got, err)
		}
		acquire("m1", "b", time.Minute, true, 2)
	})
}

// TestFencedWrites: every ledger and cursor write made under a lease's
// fence fails with ErrLeaseLost once the lease moved on, and writes
// nothing; the new owner's writes go through.
func TestFencedWrites(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn, newKey(t))
		ctx := t.Context()
		if _, ok, err := s.AcquireLease(ctx, "mb", "a", -time.Second); err != nil || !ok {
			t.Fatal(ok, err)
		}
		old := WithFence(ctx, Fence{Owner: "a", Epoch: 1})
		// a's writes go through while the lease is a's, expired or not
		entry := LedgerEntry{Key: "k1", UID: "1", MessageID: "<1@x>", Size: 10}
		if err := s.MarkDelivered(old, "mb", []LedgerEntry{entry}); err != nil {
			t.Fatalf("a write under the current lease: %v", err)
		}
		if _, ok, err := s.AcquireLease(ctx, "mb", "b", time.Minute); err != nil || !ok {
			t.Fatal("takeover", ok, err)
		}
		writes := []struct {
			name string
			do   func(ctx context.Context) error
		}{
			{"MarkDelivered", func(ctx context.Context) error {
				return s.MarkDelivered(ctx, "mb", []LedgerEntry{{Key: "k2", UID: "2", Size: 10}})
			}},
			{"MarkAcked", func(ctx context.Context) error { return s.MarkAcked(ctx, "mb", []string{"k1"}) }},
			{"SetMailboxCursor", func(ctx context.Context) error {
				return s.SetMailboxCursor(ctx, "mb", Cursor{Validity: "7", Last: "2"})
			}},
			{"Rekey", func(ctx context.Context) error { return s.Rekey(ctx, "mb", "k1", "k9", "9") }},
			{"PutHeld", func(ctx context.Context) error {
				return s.PutHeld(ctx, "mb", []HeldMessage{{Key: "k3", UID: "3", State: HeldRefused, Reason: "no"}})
			}},
			{"RekeyHeld", func(ctx context.Context) error { return s.RekeyHeld(ctx, "mb", "k3", "k8", "8") }},
			{"ForgetHeld", func(ctx context.Context) error { return s.ForgetHeld(ctx, "mb", []string{"k3"}) }},
		}
		for _, w := range writes {
			if err := w.do(old); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("%s with a stale epoch: %v, want ErrLeaseLost", w.name, err)
			}
		}
		// nothing of the refused writes is there
		if got, err := s.Delivered(ctx, "mb", []string{"k1", "k2", "k9"}); err != nil || len(got) != 1 || got["k1"] != LedgerDelivered {
			t.Errorf("ledger after refused writes = %v, %v; want k1 delivered only", got, err)
		}
		if c, err := s.MailboxCursor(ctx, "mb"); err != nil || c != (Cursor{}) {
			t.Errorf("cursor after a refused write = %+v, %v", c, err)
		}
		if held, err := s.HeldKeys(ctx, "mb"); err != nil || len(held) != 0 {
			t.Errorf("held after refused writes = %v, %v", held, err)
		}
		// the new owner writes; a fence naming the right owner with an
		// old epoch is refused too
		cur := WithFence(ctx, Fence{Owner: "b", Epoch: 2})
		for _, w := range writes {
			if err := w.do(cur); err != nil {
				t.Errorf("%s under the current lease: %v", w.name, err)
			}
			if err := w.do(WithFence(ctx, Fence{Owner: "b", Epoch: 1})); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("%s with b's old epoch: %v, want ErrLeaseLost", w.name, err)
			}
		}
		if c, err := s.MailboxCursor(ctx, "mb"); err != nil || c.Last != "2" {
			t.Errorf("cursor after the owner's write = %+v, %v", c, err)
		}
	})
}

// TestLeaseConcurrentAcquire: instances racing for the same free leases,
// each through its own connection pool: exactly one wins each lease.
func TestLeaseConcurrentAcquire(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		key := newKey(t)
		const instances, mailboxes = 8, 30
		stores := make([]*Store, instances)
		for i := range stores {
			stores[i] = mustOpen(t, dsn, key)
		}
		var mu sync.Mutex
		winners := map[string][]string{}
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Go(func() {
				for m := range mailboxes {
					mb := fmt.Sprintf("mb%d", m)
					_, ok, err := s.AcquireLease(t.Context(), mb, fmt.Sprintf("i%d", i), time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						mu.Lock()
						winners[mb] = append(winners[mb], fmt.Sprintf("i%d", i))
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		for m := range mailboxes {
			if w := winners[fmt.Sprintf("mb%d", m)]; len(w) != 1 {
				t.Errorf("mb%d won by %v, want exactly one", m, w)
			}
		}
	})
}
