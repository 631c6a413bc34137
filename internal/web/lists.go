package web

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/mailgate/mailgate/internal/store"
)

// OutboxView is a queued or sent message as shown (its bytes are not).
type OutboxView struct {
	ID         int64           `json:"id"`
	Sender     string          `json:"sender"`
	From       string          `json:"from"`
	State      string          `json:"state"`
	Attempts   int             `json:"attempts"`
	LastError  string          `json:"last_error,omitempty"`
	CreatedAt  string          `json:"created_at"`
	Recipients []RecipientView `json:"recipients"`
}

// RecipientView is one recipient's delivery state.
type RecipientView struct {
	Address string `json:"address"`
	State   string `json:"state"`
	Reply   string `json:"reply,omitempty"`
}

// MessageView is a message kept by a store sink.
type MessageView struct {
	ID         string `json:"id"`
	Mailbox    string `json:"mailbox"`
	Key        string `json:"key"`
	Size       int64  `json:"size"`
	ReceivedAt string `json:"received_at,omitempty"`
	StoredAt   string `json:"stored_at"`
}

const listLimit = 200

func (s *Server) outbox(r *http.Request) ([]OutboxView, error) {
	// ?state=queued&sender=noreply: the messages of one state and/or sender
	f := store.OutboxFilter{State: r.URL.Query().Get("state"), Sender: r.URL.Query().Get("sender")}
	msgs, err := s.o.Store.OutboxFind(r.Context(), f, listLimit)
	if err != nil {
		return nil, err
	}
	out := []OutboxView{}
	for _, m := range msgs {
		v := OutboxView{ID: m.ID, Sender: m.Sender, From: m.From, State: m.State, Attempts: m.Attempts, LastError: m.LastError,
			CreatedAt: m.CreatedAt.UTC().Format(time.RFC3339), Recipients: []RecipientView{}}
		for _, rc := range m.Rcpts {
			v.Recipients = append(v.Recipients, RecipientView{Address: rc.Addr, State: rc.State, Reply: rc.Reply})
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Server) messages(r *http.Request) ([]MessageView, error) {
	msgs, err := s.o.Store.Messages(r.Context(), listLimit)
	if err != nil {
		return nil, err
	}
	out := []MessageView{}
	for _, m := range msgs {
		v := MessageView{ID: m.ID, Mailbox: m.Mailbox, Key: m.Key, Size: m.Size, StoredAt: m.StoredAt.UTC().Format(time.RFC3339)}
		if !m.ReceivedAt.IsZero() {
			v.ReceivedAt = m.ReceivedAt.UTC().Format(time.RFC3339)
		}
		out = append(out, v)
	}
	return out, nil
}

// apiList serves what load reads from the store as {key: [...]}.
func apiList[T any](s *Server, key string, load func(*http.Request) ([]T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := load(r)
		if err != nil {
			s.storeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{key: v})
	}
}

func (s *Server) storeError(w http.ResponseWriter, err error) {
	s.o.Log.Error("web: store", "err", err)
	writeJSON(w, http.StatusServiceUnavailable, apiError{"store_unavailable", "the store did not answer; see the server log"})
}

// eml serves a kept message's raw bytes as a download.
func (s *Server) eml(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		writeJSON(w, http.StatusNotFound, apiError{"not_found", "no message " + id})
		return
	}
	// check first, so a missing message is a clean 404 before any byte
	if err := s.o.Store.OpenMessage(r.Context(), id, discard{}); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			writeJSON(w, http.StatusNotFound, apiError{"not_found", "no message " + id})
			return
		}
		s.storeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "message/rfc822")
	w.Header().Set("Content-Disposition", `attachment; filename="`+id+`.eml"`)
	w.Header().Set("Cache-Control", "no-store")
	if err := s.o.Store.OpenMessage(r.Context(), id, w); err != nil {
		s.o.Log.Error("web: message download", "id", id, "err", err)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func (s *Server) outboxPage(w http.ResponseWriter, r *http.Request) {
	v, err := s.outbox(r)
	if err != nil {
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	s.render(w, "outbox.html", map[string]any{"Admin": s.admin(r), "Outbox": v, "Senders": s.senderViews(r),
		"States": []string{store.OutboxQueued, store.OutboxSending, store.OutboxSent, store.OutboxFailed},
		"State":  r.URL.Query().Get("state"), "Sender": r.URL.Query().Get("sender")})
}

func (s *Server) messagesPage(w http.ResponseWriter, r *http.Request) {
	v, err := s.messages(r)
	if err != nil {
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	s.render(w, "messages.html", map[string]any{"Admin": s.admin(r), "Messages": v})
}

// DeliveryView is one line of the delivery log: a message handed to a
// sink, and whether the mail server was told (marked, moved or deleted).
type DeliveryView struct {
	Mailbox     string `json:"mailbox"`
	Key         string `json:"key"`
	MessageID   string `json:"message_id,omitempty"`
	Size        int64  `json:"size"`
	SinkRef     string `json:"sink_ref,omitempty"`
	State       string `json:"state"` // delivered, acknowledged
	DeliveredAt string `json:"delivered_at"`
	AckedAt     string `json:"acknowledged_at,omitempty"`
}

func (s *Server) deliveries(r *http.Request) ([]DeliveryView, error) {
	log, err := s.o.Store.DeliveryLog(r.Context(), r.URL.Query().Get("mailbox"), listLimit)
	if err != nil {
		return nil, err
	}
	out := []DeliveryView{}
	for _, d := range log {
		v := DeliveryView{Mailbox: d.Mailbox, Key: d.Key, MessageID: d.MessageID, Size: d.Size, SinkRef: d.SinkRef,
			State: "delivered", DeliveredAt: d.DeliveredAt.UTC().Format(time.RFC3339)}
		if d.State == store.LedgerAcked {
			v.State = "acknowledged"
		}
		if !d.AckedAt.IsZero() {
			v.AckedAt = d.AckedAt.UTC().Format(time.RFC3339)
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Server) deliveriesPage(w http.ResponseWriter, r *http.Request) {
	v, err := s.deliveries(r)
	if err != nil {
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	s.render(w, "deliveries.html", map[string]any{"Admin": s.admin(r), "Deliveries": v, "Mailbox": r.URL.Query().Get("mailbox")})
}
