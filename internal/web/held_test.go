package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/store"
)

// TestHeldMessages: the API lists the refused messages, retries and drops
// them by mailbox and path-escaped key (404 for an unknown one); the
// dashboard counts them per mailbox and the console's page has Retry and
// Drop buttons that do the same.
func TestHeldMessages(t *testing.T) {
	f := newFixture(t)
	req := func(method, path string) (int, string) {
		code, _, body := bearer(t, f.srv.URL, f.token, method, path, "")
		return code, body
	}
	esc := url.PathEscape(heldKey)
	if code, body := req("GET", "/api/v1/held"); code != 200 || !strings.Contains(body, `"key": "forms/imap/7/3"`) || !strings.Contains(body, `"state": "held"`) ||
		!strings.Contains(body, `"reason": "sink command (permanent): exited 1"`) || !strings.Contains(body, `"subject": "Refused <b>invoice</b>"`) {
		t.Fatalf("list: %d %s", code, body)
	}
	if code, body := req("GET", "/api/v1/held?mailbox=invoices"); code != 200 || !strings.Contains(body, `"held": []`) {
		t.Errorf("list of another mailbox: %d %s", code, body)
	}
	if code, body := req("GET", "/api/v1/mailboxes/forms"); code != 200 || !strings.Contains(body, `"held": 1`) {
		t.Errorf("mailbox count: %d %s", code, body)
	}
	code, body := req("GET", "/")
	if code != 200 || !strings.Contains(body, `<td class="held"><a href="/held?mailbox=forms">1</a></td>`) {
		t.Errorf("dashboard: %d, no held count for forms", code)
	}
	code, body = req("GET", "/held")
	if code != 200 || !strings.Contains(body, `action="/held/forms/`+esc+`/retry"`) || !strings.Contains(body, `action="/held/forms/`+esc+`/drop"`) ||
		!strings.Contains(body, "Refused &lt;b&gt;invoice&lt;/b&gt;") {
		t.Fatalf("held page: %d %s", code, body)
	}
	if code, _ := req("POST", "/api/v1/held/forms/"+url.PathEscape("forms/imap/7/99")+"/retry"); code != 404 {
		t.Errorf("retry of an unknown key: %d", code)
	}
	if code, body := req("POST", "/api/v1/held/forms/"+esc+"/retry"); code != 200 || !strings.Contains(body, `"retry": 1`) {
		t.Fatalf("retry: %d %s", code, body)
	}
	if hs, _ := f.st.Held(t.Context(), "forms"); len(hs) != 1 || hs[0].State != store.HeldRetry {
		t.Fatalf("after retry: %+v", hs)
	}
	select {
	case mb := <-f.retried:
		if mb != "forms" {
			t.Errorf("woke %q, want forms", mb)
		}
	default:
		t.Error("a retry did not wake the mailbox's agent")
	}
	if code, body := req("POST", "/api/v1/held/forms/retry"); code != 200 || !strings.Contains(body, `"retry": 1`) {
		t.Errorf("retry all: %d %s", code, body)
	}
	if code, body := req("DELETE", "/api/v1/held/forms/"+esc); code != 200 || !strings.Contains(body, `"dropped": 1`) {
		t.Fatalf("drop: %d %s", code, body)
	}
	if code, _ := req("POST", "/api/v1/held/forms/"+esc+"/drop"); code != 404 {
		t.Errorf("second drop: %d", code)
	}
	if code, body := req("GET", "/api/v1/held"); code != 200 || !strings.Contains(body, `"held": []`) {
		t.Errorf("list after drop: %d %s", code, body)
	}

	// the console's buttons: a same-origin form POST, then back to the list
	if err := f.st.PutHeld(t.Context(), "forms", []store.HeldMessage{{Key: "forms/imap/7/4", UID: "4", State: store.HeldRefused, Permanent: true}}); err != nil {
		t.Fatal(err)
	}
	sid, err := f.st.NewSession(t.Context(), "ops", 3600e9)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{CheckRedirect: noRedirect}
	for _, action := range []string{"retry", "drop"} {
		r, _ := http.NewRequest("POST", f.srv.URL+"/held/forms/"+url.PathEscape("forms/imap/7/4")+"/"+action, nil)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: sid})
		resp, err := c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/held?done=") {
			t.Errorf("%s button: %d %s", action, resp.StatusCode, resp.Header.Get("Location"))
		}
		hs, _ := f.st.HeldKeys(t.Context(), "forms")
		if want := map[string]store.HeldState{"retry": store.HeldRetry, "drop": store.HeldDropped}[action]; hs["forms/imap/7/4"].State != want {
			t.Errorf("after the %s button: %s", action, hs["forms/imap/7/4"].State)
		}
	}
}
