package oauth

import (
	"errors"
	"net/http"
	"testing"
)

// FuzzParseTokenResponse feeds token-endpoint answers (status, content
// type, Retry-After, body) to the parser: it must never panic, and must
// return exactly one of a usable token or an error.
func FuzzParseTokenResponse(f *testing.F) {
	seeds := []struct {
		status    int
		ct, retry string
		body      string
	}{
		{200, "application/json", "", `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAiOiJKV1QiLCJub25jZSI6"}`},
		{200, "application/json", "", `{"access_token":"eyJ0eXAi","token_type":"Bearer","expires_in":3599,"scope":"https://outlook.office.com/IMAP.AccessAsUser.All","refresh_token":"AwABAAAAvPM1KaPlrEqdFSBzjqfTGAMxZGUTdM0t4B4","id_token":"eyJ0eXAi"}`},
		{200, "application/json", "", `{"access_token":"x","token_type":"Bearer","expires_in":"3599","expires_on":"1388452167","resource":"https://service.contoso.com/"}`},
		{200, "application/json", "", `{"access_token":"ya29","expires_in":3599,"token_type":"Bearer"}`},
		{200, "application/x-www-form-urlencoded", "", "access_token=a&expires_in=60"},
		{400, "application/json", "", msScopeError},
		{400, "application/json", "", `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`},
		{401, "application/json", "", `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}`},
		{429, "text/plain", "60", "Too Many Requests"},
		{503, "application/json", "Wed, 21 Oct 2015 07:28:00 GMT", `{"error":"temporarily_unavailable"}`},
		{200, "application/json", "", `{"access_token":"a","expires_in":1e400}`},
		{200, "application/json", "", `{"access_token":"a","expires_on":"11/23/2026 1:04:36 AM +00:00"}`},
		{200, "", "", `{"error_codes":[1,2,"x"],"error":{"code":"x"}}`},
	}
	for _, s := range seeds {
		f.Add(s.status, s.ct, s.retry, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, ct, retry string, body []byte) {
		h := http.Header{}
		h.Set("Content-Type", ct)
		h.Set("Retry-After", retry)
		tok, err := parseTokenResponse(status, h, body, parseNow)
		if (tok == nil) == (err == nil) {
			t.Fatalf("tok %v err %v: want exactly one", tok, err)
		}
		if tok != nil {
			if tok.AccessToken == "" || !tok.Expiry.After(parseNow) {
				t.Fatalf("unusable token accepted: %v", tok)
			}
			_ = tok.String()
			return
		}
		var oe *Error
		if errors.As(err, &oe) {
			if oe.Error() == "" || oe.AADSTS() < 0 || oe.RetryAfter < 0 || oe.RetryAfter > maxRetryAfter {
				t.Fatalf("bad error %#v", oe)
			}
			_ = oe.Summary()
			_ = Explain(oe)
		}
	})
}
