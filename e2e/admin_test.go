package e2e

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAdminUnlockThroughServe: wrong passwords from 127.0.0.1 make a
// running serve delay the next sign-in, even with the right password
// (429, Retry-After); `mailgate admin unlock ops`, another process, lifts
// it at once; `admin list` showed the delay.
func TestAdminUnlockThroughServe(t *testing.T) {
	_, dir := emulatorConfig(t, "")
	appendConfig(t, dir, "listen: 127.0.0.1:0\n")
	const pw = "a long enough password"
	adminAdd(t, dir, pw)
	serve := startServe(t, dir)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	login := func(password string) *http.Response {
		resp, err := c.PostForm(serve.base+"/login", url.Values{"name": {"ops"}, "password": {password}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	// the delays double (1 s, 2 s, 4 s …); wait each out until one is long
	// enough that the next request surely falls inside it, however slow
	// this machine is
	for i := 0; ; i++ {
		resp := login("wrong password!!")
		if resp.StatusCode == http.StatusTooManyRequests {
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			if wait >= 16 {
				break
			}
			time.Sleep(time.Duration(wait)*time.Second + 100*time.Millisecond)
		} else if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d\n%s", resp.StatusCode, serve.logs.String())
		}
		if i == 50 {
			t.Fatalf("no 16-s delay after 50 wrong passwords\n%s", serve.logs.String())
		}
	}
	if resp := login(pw); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the right password during the delay: %d", resp.StatusCode)
	}
	if r := mailgateStdin(t, dir, "", "admin", "list"); r.code != 0 || !strings.Contains(r.stdout, "mailgate admin unlock ops") {
		t.Errorf("admin list: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := mailgateStdin(t, dir, "", "admin", "unlock", "ops"); r.code != 0 {
		t.Fatalf("admin unlock: %d %s", r.code, r.stderr)
	}
	if resp := login(pw); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after admin unlock: %d", resp.StatusCode)
	}
}
