package emulator

import (
	"context"
	"errors"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// TestGoogleJWTBearerCrossCheck has Google's own Go client
// (golang.org/x/oauth2/google, test only) get a token from the emulated
// Google with the emulator's key file, so the emulator agrees with
// Google's client and not only with mailgate's.
func TestGoogleJWTBearerCrossCheck(t *testing.T) {
	srv := start(t)
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, srv.Client())
	cfg, err := google.JWTConfigFromJSON(srv.GoogleKey(), GoogleMailScope)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TokenURL != srv.GoogleTokenURL() {
		t.Fatalf("x/oauth2 token URL %q", cfg.TokenURL)
	}
	cfg.Subject = "bob@" + GoogleDomain
	tok, err := cfg.TokenSource(ctx).Token()
	if err != nil {
		t.Fatal(err)
	}
	c, err := srv.VerifyGoogleToken(tok.AccessToken)
	if err != nil || c.Email != cfg.Subject || !c.HasScope(GoogleMailScope) {
		t.Fatalf("token of x/oauth2: %+v %v", c, err)
	}
	if srv.GoogleTokenRequests(cfg.Subject) != 1 {
		t.Errorf("requests for %s = %d", cfg.Subject, srv.GoogleTokenRequests(cfg.Subject))
	}
	cfg.Subject = GoogleOutsideUser
	_, err = cfg.TokenSource(ctx).Token()
	var re *oauth2.RetrieveError
	// x/oauth2's jwt package leaves ErrorCode empty and keeps the body.
	if !errors.As(err, &re) || !strings.Contains(string(re.Body), `"unauthorized_client"`) || !strings.Contains(string(re.Body), gNotDelegated) {
		t.Fatalf("outside the delegation: %v", err)
	}
}
