package web

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestStatusShowsInstances: /api/v1/status names the instance holding
// each mailbox's lease and lists the live serve instances with their
// heartbeat and lease count; the dashboard shows both.
func TestStatusShowsInstances(t *testing.T) {
	f := newFixture(t)
	f.web.o.Instance = "host-1-aaaaaa"
	ctx := t.Context()
	for _, id := range []string{"host-1-aaaaaa", "host-2-bbbbbb"} {
		if err := f.st.InstanceBeat(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := f.st.AcquireLease(ctx, "forms", "host-2-bbbbbb", time.Minute); err != nil || !ok {
		t.Fatal(ok, err)
	}
	code, _, body := bearer(t, f.srv.URL, f.token, "GET", "/api/v1/status", "")
	if code != 200 {
		t.Fatalf("status: %d %s", code, body)
	}
	var st struct {
		Instance  string `json:"instance"`
		Mailboxes []struct {
			Name     string `json:"name"`
			ServedBy string `json:"served_by"`
		} `json:"mailboxes"`
		Instances []InstanceView `json:"instances"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	served := map[string]string{}
	for _, m := range st.Mailboxes {
		served[m.Name] = m.ServedBy
	}
	if st.Instance != "host-1-aaaaaa" || served["forms"] != "host-2-bbbbbb" || served["invoices"] != "" {
		t.Errorf("status: instance %q, served by %v", st.Instance, served)
	}
	counts := map[string]int{}
	for _, in := range st.Instances {
		counts[in.ID] = in.Mailboxes
		if in.LastHeartbeat == "" || in.HeartbeatAge < 0 || in.This != (in.ID == "host-1-aaaaaa") {
			t.Errorf("instance %+v", in)
		}
	}
	if len(counts) != 2 || counts["host-1-aaaaaa"] != 0 || counts["host-2-bbbbbb"] != 1 {
		t.Errorf("instances %+v", st.Instances)
	}
	code, _, page := bearer(t, f.srv.URL, f.token, "GET", "/", "")
	if code != 200 {
		t.Fatalf("dashboard: %d", code)
	}
	for _, want := range []string{`<table id="instances">`, `host-1-aaaaaa <span class="tag">this one</span>`, `<td class="instance">host-2-bbbbbb</td>`, `<td class="mailboxes">1</td>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the dashboard lacks %q", want)
		}
	}
}
