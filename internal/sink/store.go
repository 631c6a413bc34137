package sink

import (
	"context"
	"errors"
	"io"
	"time"
)

// MessageStore keeps messages (implemented by internal/store, chunked so
// that a 50 MB message never sits in memory). Its arguments are plain
// values (Message's Mailbox, Key and ReceivedAt), so the store implements it
// without importing sink.
type MessageStore interface {
	PutMessage(ctx context.Context, mailbox, key string, receivedAt time.Time, r io.Reader) (id string, duplicate bool, err error)
}

// Store keeps messages in mailgate's own store (sink type "store"), for
// applications that fetch them from the console or the REST API.
type Store struct{ ms MessageStore }

// NewStore returns a store sink.
func NewStore(ms MessageStore) (*Store, error) {
	if ms == nil {
		return nil, errors.New("sink: store: no message store")
	}
	return &Store{ms: ms}, nil
}

// Begin spools the message to a temporary file (so no database
// transaction stays open while the network delivers it).
func (s *Store) Begin(ctx context.Context, m Message) (Delivery, error) {
	sp, err := newSpool()
	if err != nil {
		return nil, &Error{Sink: "store", Err: err}
	}
	return &storeDelivery{spool: sp, s: s, m: m}, nil
}

// Sync returns at once: PutMessage commits durably.
func (s *Store) Sync(context.Context) error { return nil }

// Close does nothing; the store is closed by its owner.
func (s *Store) Close() error { return nil }

type storeDelivery struct {
	*spool
	s *Store
	m Message
}

func (d *storeDelivery) Commit(ctx context.Context) (Receipt, error) {
	defer d.Abort()
	if d.err != nil {
		return Receipt{}, &Error{Sink: "store", Err: d.err}
	}
	if err := d.rewind(); err != nil {
		return Receipt{}, &Error{Sink: "store", Err: err}
	}
	id, dup, err := d.s.ms.PutMessage(ctx, d.m.Mailbox, d.m.Key, d.m.ReceivedAt, d.f)
	if err != nil {
		return Receipt{}, &Error{Sink: "store", Err: err}
	}
	return Receipt{Duplicate: dup, Ref: "message " + id}, nil
}
