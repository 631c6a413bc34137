package e2e

import (
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/oauth"
)

// TestServiceAccountTokens: the emulator's service-account profile gets
// tokens for two users through the binary, one request per user however
// often asked (each cached in the store), each token for its own user; a
// user outside the delegation fails with the Admin console path, the
// client ID and the scope in the message.
func TestServiceAccountTokens(t *testing.T) {
	srv, dir := emulatorConfig(t, "")
	alice, bob := "alice@"+emulator.GoogleDomain, "bob@"+emulator.GoogleDomain
	for range 2 {
		for _, user := range []string{alice, bob} {
			r := mailgate(t, t.Context(), dir, "token", "google-workspace", "--subject", user)
			if r.code != 0 {
				t.Fatalf("token --subject %s: exit %d\n%s", user, r.code, r.stderr)
			}
			c, err := srv.VerifyGoogleToken(strings.TrimSuffix(r.stdout, "\n"))
			if err != nil || c.Email != user || !c.HasScope(emulator.GoogleMailScope) {
				t.Fatalf("token for %s: %+v %v", user, c, err)
			}
		}
	}
	for _, user := range []string{alice, bob} {
		if n := srv.GoogleTokenRequests(user); n != 1 {
			t.Errorf("%d token requests for %s, want 1 (cached)", n, user)
		}
	}
	r := mailgate(t, t.Context(), dir, "token", "google-workspace", "--subject", emulator.GoogleOutsideUser)
	if r.code != 1 {
		t.Fatalf("outside the delegation: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{oauth.DomainWideDelegationPath, "Client ID " + emulator.GoogleServiceAccountClientID,
		"OAuth scopes " + emulator.GoogleMailScope, emulator.GoogleOutsideUser, "unauthorized_client"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if r := mailgate(t, t.Context(), dir, "token", "emulator-secret", "--subject", alice); r.code != 2 || !strings.Contains(r.stderr, "service_account") {
		t.Errorf("--subject on a client_credentials profile: exit %d\n%s", r.code, r.stderr)
	}
}
