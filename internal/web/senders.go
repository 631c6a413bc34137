package web

import (
	"context"
	"net/http"
)

// SenderQueueView is one sender's queue as the outbox works it: how many
// messages wait, whether the sender is paced, throttled or over its daily
// recipient budget and until when, and when its queue should be drained.
type SenderQueueView struct {
	Name string `json:"name"`
	// State is idle, sending, paced, throttled or over_budget.
	State string `json:"state"`
	// Until ends a throttled or over_budget pause (RFC 3339).
	Until  string `json:"until,omitempty"`
	Queued int    `json:"queued"`
	// Rate is messages a minute (0: unpaced).
	Rate int `json:"rate"`
	// RecipientsLeft is what the daily recipient budget still allows
	// (absent: no budget).
	RecipientsLeft *int `json:"recipients_left,omitempty"`
	// DrainSeconds is the expected time until the queue is empty: the
	// queue at the rate plus the pause in force (0: as fast as the server
	// takes them).
	DrainSeconds float64 `json:"drain_seconds"`
	// Drain is DrainSeconds for people ("30s", "2h0m0s").
	Drain string `json:"drain"`
}

// OutboxRuntime is what a Runtime adds when an outbox runs: each sender's
// queue (serve implements it; a Runtime without it shows none).
type OutboxRuntime interface {
	OutboxStatus(ctx context.Context) []SenderQueueView
}

// senderViews are the senders' queues (empty when no outbox runs).
func (s *Server) senderViews(r *http.Request) []SenderQueueView {
	if or, ok := s.o.Runtime.(OutboxRuntime); ok {
		if v := or.OutboxStatus(r.Context()); v != nil {
			return v
		}
	}
	return []SenderQueueView{}
}
