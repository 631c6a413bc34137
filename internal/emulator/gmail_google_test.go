package emulator

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// googleIssued asks the emulator's Google token endpoint, as a service
// account acting for subject, for a token with scope.
func googleIssued(t *testing.T, srv *Server, subject, scope string) string {
	t.Helper()
	k, key := readGoogleKey(t, srv.GoogleKey())
	now := time.Now().Unix()
	a := post(t, srv, srv.GoogleTokenURL(), url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
		"assertion": {signRS256(t, key, map[string]any{"alg": "RS256", "typ": "JWT", "kid": k.PrivateKeyID},
			map[string]any{"iss": k.ClientEmail, "sub": subject, "scope": scope, "aud": k.TokenURI, "iat": now, "exp": now + 3600})}})
	if a.status != 200 || !strings.HasPrefix(a.str("access_token"), "ya29.") {
		t.Fatalf("token for %s (%s): %d %s", subject, scope, a.status, a.raw)
	}
	return a.str("access_token")
}

// TestGmailAcceptsGoogleTokens: the Gmail services take the tokens of the
// emulator's own Google token endpoint (a service account's, acting for
// a user) for that user only, and only with https://mail.google.com/; on
// the wire, the IMAP login of alice with alice's token succeeds and bob's
// with it gets the error challenge.
func TestGmailAcceptsGoogleTokens(t *testing.T) {
	srv, err := Start(t.Context(), Options{HTTPListen: "-", GmailIMAPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	alice, bob := "alice@"+GoogleDomain, "bob@"+GoogleDomain
	const modify = "https://www.googleapis.com/auth/gmail.modify"
	srv.SetGoogleDelegation(GoogleServiceAccountClientID, GoogleMailScope, modify)
	full := googleIssued(t, srv, alice, GoogleMailScope)
	both := googleIssued(t, srv, alice, GoogleMailScope+" "+modify)
	narrow := googleIssued(t, srv, alice, modify)
	// a token of the Microsoft side, signed by the same emulator, naming
	// the Gmail scope: Gmail does not take it
	now := time.Now()
	microsoft, err := srv.sign.signJWT(map[string]any{"aud": GoogleMailScope, "iss": "https://login.microsoftonline.com/" + srv.tenant.id + "/v2.0",
		"tid": srv.tenant.id, "sub": alice, "upn": alice, "idtyp": "user", "ver": "2.0", "scp": GoogleMailScope,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	made, err := srv.GoogleMailToken(alice, GoogleMailScope)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token, user, wantErr string
	}{
		{"full scope, its user", full, alice, ""},
		{"full scope, its user in capitals", full, strings.ToUpper(alice), ""},
		{"full scope among others", both, alice, ""},
		{"another user", full, bob, "is for " + alice + ", not " + bob},
		{"gmail.modify only", narrow, alice, "lack " + GoogleMailScope},
		{"signature broken", full[:len(full)-4] + "AAAA", alice, "bad signature"},
		{"not a token", "ya29.nonsense", alice, "not a valid Google access token"},
		{"a Microsoft token naming the Gmail scope", microsoft, alice, "not a valid Google access token"},
		{"GoogleMailToken's, its user", made, alice, ""},
		{"GoogleMailToken's, another user", made, bob, "is for " + alice + ", not " + bob},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := srv.CheckGoogleMailAccess(tt.token, tt.user)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}

	// expired: an hour and a minute later
	srv.SetClock(func() time.Time { return time.Now().Add(61 * time.Minute) })
	if err := srv.CheckGoogleMailAccess(full, alice); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("an expired token: %v", err)
	}
	srv.SetClock(nil)

	w := dialGmail(t, srv.GmailIMAPAddr(), srv)
	w.line()
	w.send("a1 AUTHENTICATE XOAUTH2 " + xoauth2(alice, full))
	if l := w.line(); !strings.HasPrefix(l, "a1 OK") {
		t.Fatalf("alice with her token: %q", l)
	}
	w = dialGmail(t, srv.GmailIMAPAddr(), srv)
	w.line()
	w.refusedXOAUTH2("bob with alice's token", bob, full)
}
