package app

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/agent"
	"github.com/mailgate/mailgate/internal/store"
)

// TestTelemetryHeld: refusals are counted by kind, and the held gauge
// follows the store, going back to 0 once a message is no longer held.
func TestTelemetryHeld(t *testing.T) {
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "db"), &store.Options{Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tel := newTelemetry()
	tel.onRun(agent.Status{Mailbox: "forms", Last: agent.Stats{RefusedPermanent: 1, RefusedTemporary: 2}})
	if err := st.PutHeld(t.Context(), "forms", []store.HeldMessage{{Key: "forms/imap/1/3", UID: "3", State: store.HeldRefused}}); err != nil {
		t.Fatal(err)
	}
	tel.refreshHeld(t.Context(), st)
	out := metricsText(t, tel)
	for _, want := range []string{`mailgate_messages_refused_total{mailbox="forms",kind="permanent"} 1`, `mailgate_messages_refused_total{mailbox="forms",kind="temporary"} 2`,
		`mailgate_messages_held{mailbox="forms",state="held"} 1`} {
		if !strings.Contains(out, want) {
			t.Errorf("no %s in\n%s", want, out)
		}
	}
	if err := st.DropHeld(t.Context(), "forms", "forms/imap/1/3"); err != nil {
		t.Fatal(err)
	}
	tel.refreshHeld(t.Context(), st)
	if out := metricsText(t, tel); !strings.Contains(out, `mailgate_messages_held{mailbox="forms",state="held"} 0`) {
		t.Errorf("after drop:\n%s", out)
	}
}

// TestTelemetryOutbox: messages sent and throttling answers are counted
// by sender, and the oldest queued message's age is a gauge (0 with
// nothing queued).
func TestTelemetryOutbox(t *testing.T) {
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "db"), &store.Options{Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tel := newTelemetry()
	tel.refreshOutbox(t.Context(), st)
	if out := metricsText(t, tel); !strings.Contains(out, "\nmailgate_outbox_oldest_age_seconds 0\n") {
		t.Errorf("empty outbox:\n%s", out)
	}
	if _, err := st.Enqueue(t.Context(), "noreply", "a@example.com", []string{"b@example.com"}, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // a queue age above 0 (a lower bound only)
	tel.refreshOutbox(t.Context(), st)
	tel.onOutboxSent("noreply")
	tel.onOutboxSent("noreply")
	tel.onThrottled("reports")
	out := metricsText(t, tel)
	for _, want := range []string{`mailgate_outbox_sent_total{sender="noreply"} 2`, `mailgate_outbox_throttled_total{sender="reports"} 1`, `mailgate_outbox_messages{state="queued"} 1`} {
		if !strings.Contains(out, want) {
			t.Errorf("no %s in\n%s", want, out)
		}
	}
	if strings.Contains(out, "\nmailgate_outbox_oldest_age_seconds 0\n") || !strings.Contains(out, "\nmailgate_outbox_oldest_age_seconds ") {
		t.Errorf("a queued message, its age still 0 or missing:\n%s", out)
	}
}

func metricsText(t *testing.T, tel *telemetry) string {
	t.Helper()
	var b strings.Builder
	if _, err := tel.reg.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestTelemetryBuildAndProcess: /metrics names the build (value 1) and
// carries the Go runtime and process metrics.
func TestTelemetryBuildAndProcess(t *testing.T) {
	out := metricsText(t, newTelemetry())
	for _, want := range []string{`mailgate_build_info{version="` + Version + `",commit="` + BuildCommit() + `"} 1`, "\ngo_goroutines ", "\ngo_memstats_sys_bytes "} {
		if !strings.Contains(out, want) {
			t.Errorf("no %s in\n%s", want, out)
		}
	}
}
