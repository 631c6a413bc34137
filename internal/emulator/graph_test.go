package emulator

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func graphToken(t *testing.T, srv *Server) string {
	t.Helper()
	return post(t, srv, tokenURL(srv, false), ccForm("https://graph.microsoft.com/.default")).str("access_token")
}

func gcall(t *testing.T, srv *Server, method, u, tok, body string, hdr ...string) (int, map[string]any, string) {
	t.Helper()
	if !strings.HasPrefix(u, "http") {
		u = srv.URL() + u
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, u, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, string(b)
}

func graphErrCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func TestGraphMail(t *testing.T) {
	srv := start(t)
	tok := graphToken(t, srv)
	mb := DemoSharedMailbox
	for i := range 25 {
		if _, err := srv.GraphDeliver(mb, []byte(fmt.Sprintf("Message-ID: <g%d@x>\r\nSubject: s%d\r\nFrom: a@example.com\r\n\r\nbody %d\r\n", i, i, i))); err != nil {
			t.Fatal(err)
		}
	}
	base := "/v1.0/users/" + mb

	// paging: default 10, nextLink
	var ids []string
	next := base + "/mailFolders/inbox/messages"
	for next != "" {
		st, m, raw := gcall(t, srv, "GET", next, tok, "")
		if st != 200 {
			t.Fatalf("%d %s", st, raw)
		}
		for _, v := range m["value"].([]any) {
			ids = append(ids, v.(map[string]any)["id"].(string))
		}
		next, _ = m["@odata.nextLink"].(string)
	}
	if len(ids) != 25 {
		t.Fatalf("%d messages listed", len(ids))
	}
	st, _, raw := gcall(t, srv, "GET", base+"/messages/"+ids[3]+"/$value", tok, "")
	if st != 200 || raw != "Message-ID: <g3@x>\r\nSubject: s3\r\nFrom: a@example.com\r\n\r\nbody 3\r\n" {
		t.Fatalf("$value %d %q", st, raw)
	}
	if st, _, _ := gcall(t, srv, "PATCH", base+"/messages/"+ids[0], tok, `{"isRead":true}`); st != 200 {
		t.Fatalf("patch %d", st)
	}
	if read, ok := srv.GraphRead(mb, "<g0@x>"); !ok || !read {
		t.Error("isRead not applied")
	}
	_, m, _ := gcall(t, srv, "GET", base+"/mailFolders/inbox/messages?$filter=isRead%20eq%20false&$top=100", tok, "")
	if n := len(m["value"].([]any)); n != 24 {
		t.Errorf("%d unread", n)
	}

	// delta: first sync, then changes
	syncAll := func(link string) (msgs, removed int, delta string) {
		for link != "" {
			st, m, raw := gcall(t, srv, "GET", link, tok, "", "Prefer", "odata.maxpagesize=7", "Prefer", `IdType="ImmutableId"`)
			if st != 200 {
				t.Fatalf("delta %d %s", st, raw)
			}
			for _, v := range m["value"].([]any) {
				if _, gone := v.(map[string]any)["@removed"]; gone {
					removed++
				} else {
					msgs++
				}
			}
			link, _ = m["@odata.nextLink"].(string)
			delta, _ = m["@odata.deltaLink"].(string)
		}
		return
	}
	n, _, delta := syncAll(base + "/mailFolders/inbox/messages/delta")
	if n != 25 || delta == "" {
		t.Fatalf("first sync %d, delta %q", n, delta)
	}
	st, m, _ = gcall(t, srv, "POST", base+"/messages/"+ids[1]+"/move", tok, `{"destinationId":"archive"}`)
	if st != 201 || m["id"] == ids[1] {
		t.Fatalf("move %d %v", st, m)
	}
	if st, _, _ := gcall(t, srv, "DELETE", base+"/messages/"+ids[2], tok, ""); st != 204 {
		t.Fatalf("delete %d", st)
	}
	srv.GraphDeliver(mb, []byte("Message-ID: <late@x>\r\n\r\nlate\r\n"))
	n, removed, delta2 := syncAll(delta)
	if n != 1 || removed != 2 {
		t.Errorf("second sync: %d new, %d removed", n, removed)
	}
	if got := len(srv.GraphMessages(mb, "archive")); got != 1 {
		t.Errorf("%d in archive", got)
	}
	srv.ExpireDeltaTokens()
	st, m, _ = gcall(t, srv, "GET", delta2, tok, "")
	if st != 410 || graphErrCode(m) != "SyncStateNotFound" {
		t.Errorf("stale token: %d %v", st, m)
	}
}

func TestGraphAuth(t *testing.T) {
	srv := start(t)
	graphTok := graphToken(t, srv)
	exoTok := post(t, srv, tokenURL(srv, false), ccForm("https://outlook.office365.com/.default")).str("access_token")
	list := "/v1.0/users/" + DemoSharedMailbox + "/mailFolders/inbox/messages"
	tests := []struct {
		name, path, tok string
		status          int
		code, text      string
	}{
		{"no token", list, "", 401, "InvalidAuthenticationToken", ""},
		{"exchange token", list, exoTok, 401, "InvalidAuthenticationToken", "Invalid audience"},
		{"not a JWT", list, "not-a-token", 401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed."},
		{"unknown user", "/v1.0/users/ghost@contoso.example/mailFolders/inbox/messages", graphTok, 404, "ErrorInvalidUser", ""},
		{"me with app token", "/v1.0/me/messages", graphTok, 400, "BadRequest", "delegated"},
	}
	for _, tt := range tests {
		st, m, raw := gcall(t, srv, "GET", tt.path, tt.tok, "")
		if st != tt.status || graphErrCode(m) != tt.code || !strings.Contains(raw, tt.text) {
			t.Errorf("%s: %d %s", tt.name, st, raw)
		}
		if e, _ := m["error"].(map[string]any); e["innerError"] == nil {
			t.Errorf("%s: no innerError: %s", tt.name, raw)
		}
	}
	{ // a token past its expiry: the clock moved on three hours
		srv.SetClock(func() time.Time { return time.Now().Add(3 * time.Hour) })
		st, m, raw := gcall(t, srv, "GET", list, graphTok, "")
		srv.SetClock(time.Now)
		if st != 401 || graphErrCode(m) != "InvalidAuthenticationToken" || !strings.Contains(raw, "Lifetime validation failed, the token is expired.") {
			t.Errorf("expired token: %d %s", st, raw)
		}
	}
	srv.Tenant().DenyGraphAccess(DemoAppID, DemoSharedMailbox)
	st, m, raw := gcall(t, srv, "GET", list, graphTok, "")
	if st != 403 || graphErrCode(m) != "ErrorAccessDenied" || !strings.Contains(raw, "AccessPolicy") {
		t.Errorf("access policy: %d %s", st, raw)
	}
	if err := srv.Tenant().RevokeAppRoles(DemoAppID, "https://graph.microsoft.com", "Mail.ReadWrite", "Mail.Send"); err != nil {
		t.Fatal(err)
	}
	noRole := graphToken(t, srv)
	st, m, _ = gcall(t, srv, "GET", "/v1.0/users/"+DemoInvoicesMailbox+"/mailFolders/inbox/messages", noRole, "")
	if st != 403 || graphErrCode(m) != "ErrorAccessDenied" {
		t.Errorf("no role: %d %v", st, m)
	}
	srv.graph().limit = 0
	st, m, _ = gcall(t, srv, "GET", "/v1.0/users/"+DemoUser+"/mailFolders/inbox/messages", graphTok, "")
	if st != 429 || graphErrCode(m) != "ApplicationThrottled" {
		t.Errorf("concurrency: %d %v", st, m)
	}
}
