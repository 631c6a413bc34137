package emulator

import (
	"strings"
	"testing"
)

// TestDemoAppToken: the demo app's token for a resource's .default is the
// endpoint's own (it verifies, app-only, for that audience, counted as a
// token request); a scope the endpoint refuses is an error with its answer.
func TestDemoAppToken(t *testing.T) {
	srv := start(t)
	for scope, aud := range map[string]string{
		"https://outlook.office365.com/.default": "https://outlook.office365.com",
		"https://graph.microsoft.com/.default":   "https://graph.microsoft.com",
	} {
		before := srv.TokenRequests()
		tok, err := srv.DemoAppToken(t.Context(), scope)
		if err != nil {
			t.Fatalf("%s: %v", scope, err)
		}
		c, err := srv.VerifyAccessToken(tok)
		if err != nil || c.Aud != aud || c.Idtyp != "app" || c.AppID != DemoAppID {
			t.Errorf("%s: claims %+v, %v", scope, c, err)
		}
		if srv.TokenRequests() != before+1 {
			t.Errorf("%s: %d token requests, want 1: not through the endpoint", scope, srv.TokenRequests()-before)
		}
	}
	if tok, err := srv.DemoAppToken(t.Context(), "Mail.Read"); err == nil || tok != "" || !strings.Contains(err.Error(), "HTTP 400") || !strings.Contains(err.Error(), "AADSTS") {
		t.Errorf("refused scope: %q, %v", tok, err)
	}
}
