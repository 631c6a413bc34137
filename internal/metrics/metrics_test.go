package metrics

import (
	"strings"
	"testing"
)

func TestExposition(t *testing.T) {
	var r Registry
	c := r.Counter("mailgate_messages_delivered_total", "Messages handed to a sink.", "mailbox")
	g := r.Gauge("mailgate_outbox_depth", "Messages waiting in the outbox.")
	h := r.Histogram("mailgate_poll_duration_seconds", "How long a poll took.", []float64{1, 0.1}, "mailbox")
	c.Add(3, "forms")
	c.Add(2, "forms")
	c.Add(1, `we"ird\name`)
	c.Add(-5, "forms") // ignored: counters only go up
	g.Set(7)
	h.Observe(0.05, "forms")
	h.Observe(0.5, "forms")
	h.Observe(5, "forms")
	var b strings.Builder
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	want := `# HELP mailgate_messages_delivered_total Messages handed to a sink.
# TYPE mailgate_messages_delivered_total counter
mailgate_messages_delivered_total{mailbox="forms"} 5
mailgate_messages_delivered_total{mailbox="we\"ird\\name"} 1
# HELP mailgate_outbox_depth Messages waiting in the outbox.
# TYPE mailgate_outbox_depth gauge
mailgate_outbox_depth 7
# HELP mailgate_poll_duration_seconds How long a poll took.
# TYPE mailgate_poll_duration_seconds histogram
mailgate_poll_duration_seconds_bucket{mailbox="forms",le="0.1"} 1
mailgate_poll_duration_seconds_bucket{mailbox="forms",le="1"} 2
mailgate_poll_duration_seconds_bucket{mailbox="forms",le="+Inf"} 3
mailgate_poll_duration_seconds_sum{mailbox="forms"} 5.55
mailgate_poll_duration_seconds_count{mailbox="forms"} 3
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestGaugeDelete: a deleted series is gone from the exposition, the
// others stay.
func TestGaugeDelete(t *testing.T) {
	var r Registry
	g := r.Gauge("mailgate_instance_mailboxes", "Mailboxes per instance.", "instance")
	g.Set(3, "a")
	g.Set(4, "b")
	g.Delete("a")
	g.Delete("never-set")
	var b strings.Builder
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), `instance="a"`) || !strings.Contains(b.String(), `mailgate_instance_mailboxes{instance="b"} 4`) {
		t.Fatalf("after Delete:\n%s", b.String())
	}
}
