package web

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestSenderQueues: /api/v1/status and the outbox page show each sender's
// queue: its state, until when, the queue, its rate, the recipients left
// today and the expected drain time.
func TestSenderQueues(t *testing.T) {
	f := newFixture(t)
	code, _, body := bearer(t, f.srv.URL, f.token, "GET", "/api/v1/status", "")
	var st struct {
		Senders []SenderQueueView `json:"senders"`
	}
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || len(st.Senders) != 1 {
		t.Fatalf("status: %d %v %s", code, err, body)
	}
	s := st.Senders[0]
	if s.Name != "noreply" || s.State != "over_budget" || s.Until != "2026-11-24T09:00:00Z" || s.Queued != 1 || s.Rate != 30 ||
		s.RecipientsLeft == nil || *s.RecipientsLeft != 0 || s.DrainSeconds != 75600 || s.Drain != "21h0m0s" {
		t.Errorf("status senders: %+v", s)
	}
	code, _, page := bearer(t, f.srv.URL, f.token, "GET", "/outbox", "")
	if code != 200 {
		t.Fatalf("outbox page: %d", code)
	}
	for _, want := range []string{`id="senders"`, "over_budget", "2026-11-24T09:00:00Z", "21h0m0s"} {
		if !strings.Contains(page, want) {
			t.Errorf("outbox page lacks %q", want)
		}
	}
}
