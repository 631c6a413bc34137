package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/mailgate/mailgate/internal/store"
)

// HeldView is a message a sink refused, set aside so the messages after it
// flow (see the agent package): held (refused permanently, waiting for an
// administrator), deferred (refused temporarily too often, retried
// automatically at next_attempt), failing (refused temporarily, retried
// with the mailbox's next run) or retry (asked for; the next run tries it).
type HeldView struct {
	Mailbox    string `json:"mailbox"`
	Key        string `json:"key"`
	UID        string `json:"uid"`
	MessageID  string `json:"message_id,omitempty"`
	Subject    string `json:"subject,omitempty"`
	From       string `json:"from,omitempty"`
	Size       int64  `json:"size"`
	State      string `json:"state"`
	Permanent  bool   `json:"permanent"`
	Reason     string `json:"reason"`
	Attempts   int    `json:"attempts"`
	FirstAt    string `json:"first_attempt"`
	LastAt     string `json:"last_attempt"`
	NextAt     string `json:"next_attempt,omitempty"`
	ReceivedAt string `json:"received_at,omitempty"`
	RetryPath  string `json:"-"` // the console's form actions
	DropPath   string `json:"-"`
}

// NewHeldView shows a refused message (also for `mailgate messages held
// --json`, so the CLI and the API print the same fields).
func NewHeldView(h store.HeldMessage) HeldView {
	v := HeldView{Mailbox: h.Mailbox, Key: h.Key, UID: h.UID, MessageID: h.MessageID, Subject: h.Subject, From: h.From, Size: h.Size,
		State: string(h.State), Permanent: h.Permanent, Reason: h.Reason, Attempts: h.Attempts,
		FirstAt: h.FirstAt.UTC().Format(time.RFC3339), LastAt: h.LastAt.UTC().Format(time.RFC3339)}
	if !h.NextAt.IsZero() {
		v.NextAt = h.NextAt.UTC().Format(time.RFC3339)
	}
	if !h.Date.IsZero() {
		v.ReceivedAt = h.Date.UTC().Format(time.RFC3339)
	}
	base := "/held/" + url.PathEscape(h.Mailbox) + "/" + url.PathEscape(h.Key)
	v.RetryPath, v.DropPath = base+"/retry", base+"/drop"
	return v
}

func (s *Server) held(r *http.Request) ([]HeldView, error) {
	hs, err := s.o.Store.Held(r.Context(), r.URL.Query().Get("mailbox"))
	if err != nil {
		return nil, err
	}
	out := []HeldView{}
	for _, h := range hs {
		out = append(out, NewHeldView(h))
	}
	return out, nil
}

// heldCounts is how many messages each mailbox has set aside (dropped
// ones left out), for the dashboard.
func (s *Server) heldCounts(ctx context.Context) map[string]int {
	counts, err := s.o.Store.HeldCounts(ctx)
	if err != nil {
		s.o.Log.Warn("web: held message counts", "err", err)
		return nil
	}
	out := map[string]int{}
	for mb, byState := range counts {
		for _, n := range byState {
			out[mb] += n
		}
	}
	return out
}

// heldAction is a retry or a drop of the message {mailbox}/{key} (the key
// path-escaped: it holds slashes); key "" with retry is every message of
// the mailbox.
func (s *Server) heldAction(r *http.Request, drop bool) (int, error) {
	mb, key := r.PathValue("mailbox"), r.PathValue("key")
	if drop {
		return 1, s.o.Store.DropHeld(r.Context(), mb, key)
	}
	n, err := s.o.Store.RetryHeld(r.Context(), mb, key)
	if err == nil && n > 0 && s.o.Runtime != nil {
		s.o.Runtime.Wake(mb)
	}
	return n, err
}

func (s *Server) apiHeld(drop bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n, err := s.heldAction(r, drop)
		if errors.Is(err, store.ErrNotFound) {
			writeJSON(w, http.StatusNotFound, apiError{"not_found", "no held message " + r.PathValue("key") + " in mailbox " + r.PathValue("mailbox")})
			return
		}
		if err != nil {
			s.storeError(w, err)
			return
		}
		s.o.Log.Info("web: held message", "mailbox", r.PathValue("mailbox"), "key", r.PathValue("key"), "dropped", drop, "n", n, "admin", s.admin(r))
		if drop {
			writeJSON(w, http.StatusOK, map[string]any{"dropped": n})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"retry": n})
	}
}

func (s *Server) heldPage(w http.ResponseWriter, r *http.Request) {
	v, err := s.held(r)
	if err != nil {
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	s.render(w, "held.html", map[string]any{"Admin": s.admin(r), "Held": v, "Mailbox": r.URL.Query().Get("mailbox"), "Done": r.URL.Query().Get("done")})
}

// heldForm is the console's Retry or Drop button.
func (s *Server) heldForm(drop bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, err := s.heldAction(r, drop)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			http.Error(w, "store unavailable", http.StatusServiceUnavailable)
			return
		}
		done := "retry"
		if drop {
			done = "dropped"
		}
		if err != nil {
			done = "gone"
		}
		s.o.Log.Info("web: held message", "mailbox", r.PathValue("mailbox"), "key", r.PathValue("key"), "action", done, "admin", s.admin(r))
		http.Redirect(w, r, "/held?done="+done, http.StatusSeeOther)
	}
}
