package sasl

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestVectors(t *testing.T) {
	// Microsoft's documented XOAUTH2 example and RFC 7628 §4.1's OAUTHBEARER
	// example, base64-encoded as they go on the wire.
	tests := []struct {
		name string
		c    Client
		mech string
		want string
	}{
		{"xoauth2", NewXOAuth2Client("test@contoso.onmicrosoft.com", "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA"), XOAuth2,
			"dXNlcj10ZXN0QGNvbnRvc28ub25taWNyb3NvZnQuY29tAWF1dGg9QmVhcmVyIEV3QkFBbDNCQUFVRkZwVUFvN0ozVmUwYmpMQldaV0NjbFJDM0VvQUEBAQ=="},
		{"oauthbearer", NewOAuthBearerClient("user@example.com", "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", "server.example.com", 143), OAuthBearer,
			"bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"},
	}
	for _, tt := range tests {
		mech, ir, err := tt.c.Start()
		if err != nil || mech != tt.mech {
			t.Fatalf("%s: Start %s %v", tt.name, mech, err)
		}
		if got := base64.StdEncoding.EncodeToString(ir); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}

func TestFailurePath(t *testing.T) {
	challenge := []byte(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`)
	tests := []struct {
		c      Client
		answer []byte
	}{
		{NewXOAuth2Client("u", "t"), []byte{}},
		{NewOAuthBearerClient("u", "t", "", 0), []byte{1}},
	}
	for _, tt := range tests {
		_, _, _ = tt.c.Start()
		if tt.c.AuthError() != nil {
			t.Fatal("error before any challenge")
		}
		resp, err := tt.c.Next(challenge)
		if err != nil || resp == nil || string(resp) != string(tt.answer) {
			t.Fatalf("answer to the error challenge: %q %v (must be non-nil %q)", resp, err, tt.answer)
		}
		var ae *AuthError
		if !errors.As(tt.c.AuthError(), &ae) || ae.Status != "401" || ae.Schemes != "bearer" || ae.Scope != "https://mail.google.com/" {
			t.Errorf("AuthError %+v", ae)
		}
	}
}

func TestExplainGoogleChallenge(t *testing.T) {
	tests := []struct {
		challenge string
		want      []string // in the error's text
		explained bool
	}{
		{`{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`,
			[]string{"status 400", "scope https://mail.google.com/", "lack https://mail.google.com/", "gmail.modify"}, true},
		{`{"status":"401","schemes":"bearer","scope":"https://outlook.office365.com/.default"}`,
			[]string{"status 401", "scope https://outlook.office365.com/.default"}, false},
		{`not json`, []string{"XOAUTH2 refused the token"}, false},
	}
	for _, tt := range tests {
		c := NewXOAuth2Client("u@example.com", "t")
		_, _, _ = c.Start()
		if resp, err := c.Next([]byte(tt.challenge)); err != nil || len(resp) != 0 || resp == nil {
			t.Fatalf("%s: answer %q %v, want an empty response", tt.challenge, resp, err)
		}
		err := c.AuthError()
		var ae *AuthError
		if !errors.As(err, &ae) {
			t.Fatalf("%s: no AuthError", tt.challenge)
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", tt.challenge, err, w)
			}
		}
		if got := ae.Explain() != ""; got != tt.explained {
			t.Errorf("%s: explained %v, want %v", tt.challenge, got, tt.explained)
		}
	}
}

func TestNoInitialResponse(t *testing.T) {
	c := NewXOAuth2ClientNoIR("u", "t")
	mech, ir, _ := c.Start()
	if mech != XOAuth2 || ir != nil {
		t.Fatalf("Start %s %q", mech, ir)
	}
	resp, _ := c.Next(nil) // the server's empty continuation
	if string(resp) != "user=u\x01auth=Bearer t\x01\x01" {
		t.Errorf("response %q", resp)
	}
	b := NewOAuthBearerClientNoIR("a,b=c", "t", "", 0)
	_, _, _ = b.Start()
	if resp, _ := b.Next([]byte{}); string(resp) != "n,a=a=2Cb=3Dc,\x01auth=Bearer t\x01\x01" {
		t.Errorf("gs2 escaping: %q", resp)
	}
}

func TestNew(t *testing.T) {
	for _, m := range []string{"xoauth2", "XOAUTH2", "oauthbearer"} {
		if _, err := New(m, "u", "t", "h", 1); err != nil {
			t.Error(m, err)
		}
	}
	if _, err := New("plain", "u", "t", "", 0); err == nil {
		t.Error("plain accepted")
	}
}

func FuzzParseChallenge(f *testing.F) {
	f.Add([]byte(`{"status":"invalid_token","scope":"example_scope","openid-configuration":"https://example.com/.well-known/openid-configuration"}`))
	f.Add([]byte(`{"status":401,"schemes":["bearer"]}`))
	f.Add([]byte(`not json`))
	f.Add([]byte(`{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`)) // Gmail's
	f.Fuzz(func(t *testing.T, b []byte) {
		e := ParseChallenge(XOAuth2, b)
		if e == nil || e.Raw != string(b) {
			t.Fatal("challenge lost")
		}
		msg := e.Error()
		if !strings.HasPrefix(msg, "sasl: XOAUTH2 refused the token") {
			t.Fatalf("error text %q", msg)
		}
		if e.Explain() != "" && !strings.Contains(msg, e.Explain()) {
			t.Fatal("explanation missing from the error")
		}
	})
}
