package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Leases: when several serve instances share one store, each mailbox is
// served by the instance holding its lease (mailbox_leases). A lease has
// an owner (the instance id), an expiry and an epoch that grows at every
// takeover and stays the same while its owner renews it. Expiry is
// reckoned by the database's clock (clock_timestamp() on PostgreSQL, the
// SQLite process's own clock), so instances' clocks do not matter.
//
// Fencing: the ledger and cursor writes of an agent carry its lease's
// owner and epoch (WithFence); each such write first updates the lease row
// conditioned on both, in the same transaction, and fails with
// ErrLeaseLost when the lease moved on. The row update also locks the
// lease row until the write commits, so a takeover waits for a write in
// progress and a write after a takeover fails: a paused instance whose
// lease expired cannot write once another took over.

// ErrLeaseLost is a fenced write refused because the mailbox's lease has
// another owner or epoch now.
var ErrLeaseLost = errors.New("store: lease lost")

// Fence is the lease a write is made under.
type Fence struct {
	Owner string
	Epoch int64
}

type fenceKey struct{}

// WithFence returns ctx carrying f: the ledger and cursor writes made with
// it (MarkDelivered, MarkAcked, SetMailboxCursor, Rekey, PutHeld,
// RekeyHeld, ForgetHeld) fail with ErrLeaseLost unless the mailbox's
// lease is still f. Writes without a fence are not checked (`run --once`
// on a store no serve uses, tests).
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// ledgerTx runs fn in a transaction that first checks the fence ctx
// carries, if any, for mailbox mb.
func (s *Store) ledgerTx(ctx context.Context, mb string, fn func(*txn) error) error {
	f, fenced := ctx.Value(fenceKey{}).(Fence)
	return s.inTx(ctx, func(tx *txn) error {
		if fenced {
			res, err := tx.Exec(ctx, "UPDATE mailbox_leases SET epoch = epoch WHERE mailbox = ? AND owner = ? AND epoch = ?", mb, f.Owner, f.Epoch)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return errors.Join(fmt.Errorf("%w: mailbox %q is no longer %s's at epoch %d", ErrLeaseLost, mb, f.Owner, f.Epoch), err)
			}
		}
		return fn(tx)
	})
}

// nowMS is the database's clock in Unix milliseconds, as SQL.
func (s *Store) nowMS() string {
	if s.d.name == "postgres" {
		return "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"
	}
	return "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
}

// AcquireLease takes mailbox mb's lease for owner for ttl when it is free
// (never taken, released, or expired by the database's clock): the epoch
// grows by one. ok is false, with no error, when another owner holds it
// (an expired lease of owner itself is taken anew, with a new epoch).
func (s *Store) AcquireLease(ctx context.Context, mb, owner string, ttl time.Duration) (epoch int64, ok bool, err error) {
	now := s.nowMS()
	rows, err := s.query(ctx, `INSERT INTO mailbox_leases (mailbox, owner, epoch, expires_ms, acquired_ms) VALUES (?, ?, 1, `+now+` + ?, `+now+`)
		ON CONFLICT (mailbox) DO UPDATE SET owner = excluded.owner, epoch = mailbox_leases.epoch + 1,
			expires_ms = excluded.expires_ms, acquired_ms = excluded.acquired_ms
		WHERE mailbox_leases.owner = '' OR mailbox_leases.expires_ms <= `+now+`
		RETURNING epoch`, mb, owner, ttl.Milliseconds())
	if err != nil {
		return 0, false, fmt.Errorf("store: acquire lease of mailbox %q: %w", mb, err)
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&epoch); err != nil {
			return 0, false, fmt.Errorf("store: acquire lease of mailbox %q: %w", mb, err)
		}
		ok = true
	}
	if err := rows.Err(); err != nil {
		return 0, false, fmt.Errorf("store: acquire lease of mailbox %q: %w", mb, err)
	}
	return epoch, ok, nil
}

// StealLease takes mailbox mb's lease from owner from, live or not, with
// the next epoch (the caller knows from is dead: a process of this host
// that no longer runs). ok is false when from no longer holds it.
func (s *Store) StealLease(ctx context.Context, mb, from, owner string, ttl time.Duration) (epoch int64, ok bool, err error) {
	now := s.nowMS()
	rows, err := s.query(ctx, "UPDATE mailbox_leases SET owner = ?, epoch = epoch + 1, expires_ms = "+now+" + ?, acquired_ms = "+now+
		" WHERE mailbox = ? AND owner = ? RETURNING epoch", owner, ttl.Milliseconds(), mb, from)
	if err != nil {
		return 0, false, fmt.Errorf("store: take lease of mailbox %q from %s: %w", mb, from, err)
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&epoch); err != nil {
			return 0, false, err
		}
		ok = true
	}
	return epoch, ok, rows.Err()
}

// RenewLeases extends every lease owner holds by ttl from now (by the
// database's clock), expired ones included as long as nobody took them
// over, and returns them: mailbox → epoch. A lease missing from the
// answer was taken over.
func (s *Store) RenewLeases(ctx context.Context, owner string, ttl time.Duration) (map[string]int64, error) {
	rows, err := s.query(ctx, "UPDATE mailbox_leases SET expires_ms = "+s.nowMS()+" + ? WHERE owner = ? RETURNING mailbox, epoch", ttl.Milliseconds(), owner)
	if err != nil {
		return nil, fmt.Errorf("store: renew leases of %s: %w", owner, err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var mb string
		var epoch int64
		if err := rows.Scan(&mb, &epoch); err != nil {
			return nil, fmt.Errorf("store: renew leases of %s: %w", owner, err)
		}
		out[mb] = epoch
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: renew leases of %s: %w", owner, err)
	}
	return out, nil
}

// ReleaseLease gives mailbox mb's lease up at once if owner still holds
// it at epoch (the epoch is kept: the next owner's is one more).
func (s *Store) ReleaseLease(ctx context.Context, mb, owner string, epoch int64) error {
	_, err := s.exec(ctx, "UPDATE mailbox_leases SET owner = '', expires_ms = 0 WHERE mailbox = ? AND owner = ? AND epoch = ?", mb, owner, epoch)
	if err != nil {
		return fmt.Errorf("store: release lease of mailbox %q: %w", mb, err)
	}
	return nil
}

// ReleaseLeases gives every lease of owner up (a graceful stop).
func (s *Store) ReleaseLeases(ctx context.Context, owner string) error {
	_, err := s.exec(ctx, "UPDATE mailbox_leases SET owner = '', expires_ms = 0 WHERE owner = ?", owner)
	if err != nil {
		return fmt.Errorf("store: release leases of %s: %w", owner, err)
	}
	return nil
}

// Lease is a mailbox's lease as the store has it.
type Lease struct {
	Mailbox string
	Owner   string // "" when released
	Epoch   int64
	// Live: held and not expired by the database's clock.
	Live bool
	// Acquired is when the current owner took it (database clock).
	Acquired time.Time
}

// Leases returns every mailbox's lease, by mailbox.
func (s *Store) Leases(ctx context.Context) ([]Lease, error) {
	rows, err := s.query(ctx, "SELECT mailbox, owner, epoch, acquired_ms, CASE WHEN owner <> '' AND expires_ms > "+s.nowMS()+
		" THEN 1 ELSE 0 END FROM mailbox_leases ORDER BY mailbox")
	if err != nil {
		return nil, fmt.Errorf("store: leases: %w", err)
	}
	defer rows.Close()
	var out []Lease
	for rows.Next() {
		var l Lease
		var acquired, live int64
		if err := rows.Scan(&l.Mailbox, &l.Owner, &l.Epoch, &acquired, &live); err != nil {
			return nil, fmt.Errorf("store: leases: %w", err)
		}
		l.Acquired, l.Live = time.UnixMilli(acquired), live == 1
		out = append(out, l)
	}
	return out, rows.Err()
}

// LeaseHolder returns who holds mailbox mb's lease now; ok is false when
// nobody does (never taken, released or expired).
func (s *Store) LeaseHolder(ctx context.Context, mb string) (owner string, ok bool, err error) {
	rows, err := s.query(ctx, "SELECT owner FROM mailbox_leases WHERE mailbox = ? AND owner <> '' AND expires_ms > "+s.nowMS(), mb)
	if err != nil {
		return "", false, fmt.Errorf("store: lease of mailbox %q: %w", mb, err)
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&owner); err != nil {
			return "", false, err
		}
		ok = true
	}
	return owner, ok, rows.Err()
}

// Instance is a serve instance that holds (or may hold) leases.
type Instance struct {
	ID      string
	Started time.Time // by the database's clock
	// Age is how long ago its last heartbeat was, by the database's
	// clock.
	Age time.Duration
	// Mailboxes is how many live leases it holds.
	Mailboxes int
}

// InstanceBeat records that instance is alive (the database's clock) and
// forgets instances silent for more than a day (killed ones never say
// goodbye).
func (s *Store) InstanceBeat(ctx context.Context, instance string) error {
	now := s.nowMS()
	_, err := s.exec(ctx, `INSERT INTO serve_instances (instance, started_ms, seen_ms) VALUES (?, `+now+`, `+now+`)
		ON CONFLICT (instance) DO UPDATE SET seen_ms = excluded.seen_ms`, instance)
	if err == nil {
		_, err = s.exec(ctx, "DELETE FROM serve_instances WHERE seen_ms < "+now+" - ?", (24 * time.Hour).Milliseconds())
	}
	if err != nil {
		return fmt.Errorf("store: heartbeat of %s: %w", instance, err)
	}
	return nil
}

// Instances returns the instances whose last heartbeat is at most maxAge
// old (by the database's clock), oldest first, with how many live leases
// each holds.
func (s *Store) Instances(ctx context.Context, maxAge time.Duration) ([]Instance, error) {
	now := s.nowMS()
	rows, err := s.query(ctx, `SELECT i.instance, i.started_ms, `+now+` - i.seen_ms,
		(SELECT COUNT(*) FROM mailbox_leases l WHERE l.owner = i.instance AND l.expires_ms > `+now+`)
		FROM serve_instances i WHERE i.seen_ms >= `+now+` - ? ORDER BY i.started_ms, i.instance`, maxAge.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("store: instances: %w", err)
	}
	defer rows.Close()
	var out []Instance
	for rows.Next() {
		var in Instance
		var started, age int64
		if err := rows.Scan(&in.ID, &started, &age, &in.Mailboxes); err != nil {
			return nil, fmt.Errorf("store: instances: %w", err)
		}
		in.Started, in.Age = time.UnixMilli(started), time.Duration(max(age, 0))*time.Millisecond
		out = append(out, in)
	}
	return out, rows.Err()
}

// ServeRunning reports whether a serve instance beat (InstanceBeat)
// within maxAge, by the database's clock.
func (s *Store) ServeRunning(ctx context.Context, maxAge time.Duration) (bool, error) {
	var n int
	err := s.queryRow(ctx, "SELECT COUNT(*) FROM serve_instances WHERE seen_ms >= "+s.nowMS()+" - ?", maxAge.Milliseconds()).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: serve instances: %w", err)
	}
	return n > 0, nil
}

// ForgetInstance removes an instance's heartbeat (a graceful stop).
func (s *Store) ForgetInstance(ctx context.Context, instance string) error {
	_, err := s.exec(ctx, "DELETE FROM serve_instances WHERE instance = ?", instance)
	if err != nil {
		return fmt.Errorf("store: forget instance %s: %w", instance, err)
	}
	return nil
}
