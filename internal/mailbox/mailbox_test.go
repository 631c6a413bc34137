package mailbox

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestParseAfter(t *testing.T) {
	tests := []struct {
		in      string
		want    After
		wantErr bool
	}{
		{"seen", After{Kind: "seen"}, false},
		{"", After{Kind: "seen"}, false},
		{"delete", After{Kind: "delete"}, false},
		{"keep", After{Kind: "keep"}, false},
		{"move:Processed", After{Kind: "move", Folder: "Processed"}, false},
		{"move: Archive/2026 ", After{Kind: "move", Folder: "Archive/2026"}, false},
		{"move:", After{}, true},
		{"Seen", After{}, true},
		{"flag", After{}, true},
	}
	for _, tt := range tests {
		got, err := ParseAfter(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseAfter(%q) = %+v, %v", tt.in, got, err)
		}
		if err == nil {
			if back, _ := ParseAfter(got.String()); back != got {
				t.Errorf("%q does not round-trip: %q", tt.in, got.String())
			}
		}
	}
}

func TestErrorWrapping(t *testing.T) {
	e := &Error{Mailbox: "forms", Step: StepTLS, Hint: "add tls_ca", Err: io.ErrUnexpectedEOF}
	var err error = e
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Error("Unwrap lost the cause")
	}
	if got, ok := AsError(err); !ok || got.Step != StepTLS {
		t.Error("AsError")
	}
	if s := e.Error(); !strings.Contains(s, "forms tls:") || !strings.Contains(s, "add tls_ca") {
		t.Errorf("message %q", s)
	}
}

func FuzzParseAfter(f *testing.F) {
	for _, s := range []string{"seen", "delete", "keep", "move:Processed", "move:", "", "move:a:b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAfter(s)
		if err != nil {
			return
		}
		if back, err := ParseAfter(a.String()); err != nil || back != a {
			t.Fatalf("%q → %+v does not round-trip", s, a)
		}
	})
}

// TestCursorStored: a cursor persists as two strings and reads back the
// same; a Graph cursor's delta link goes where older versions kept it (the
// position), so an old row reads back as a delta link.
func TestCursorStored(t *testing.T) {
	for _, tc := range []struct {
		name               string
		cur                Cursor
		validity, position string
	}{
		{"never ran", Cursor{}, "", ""},
		{"imap", Cursor{Validity: "1234", Last: "17"}, "1234", "17"},
		{"pop3", Cursor{}, "", ""},
		{"graph", Cursor{Validity: GraphValidity, DeltaLink: "https://graph/delta?token=1"}, "graph", "https://graph/delta?token=1"},
		{"graph before its first link", Cursor{Validity: GraphValidity}, "graph", ""},
	} {
		v, p := tc.cur.Stored()
		if v != tc.validity || p != tc.position {
			t.Errorf("%s: stored as (%q, %q), want (%q, %q)", tc.name, v, p, tc.validity, tc.position)
		}
		if got := StoredCursor(v, p); got != tc.cur {
			t.Errorf("%s: read back %+v, want %+v", tc.name, got, tc.cur)
		}
	}
}

// TestSASLClient: the token and the mechanism of a mailbox session, each
// failure at its step; OAUTHBEARER carries the server's host and port.
func TestSASLClient(t *testing.T) {
	tok := func(context.Context) (string, error) { return "tok", nil }
	noTok := func(context.Context) (string, error) { return "", errors.New("oauth: invalid_client") }
	for _, tc := range []struct {
		name, mech string
		token      func(context.Context) (string, error)
		step       string // "" = success
		first      string // the initial response, on success
	}{
		{"xoauth2", "xoauth2", tok, "", "user=u@example.com\x01auth=Bearer tok\x01\x01"},
		{"oauthbearer", "oauthbearer", tok, "", "n,a=u@example.com,\x01host=mail.example.com\x01port=993\x01auth=Bearer tok\x01\x01"},
		{"no token", "xoauth2", noTok, StepToken, ""},
		{"unknown mechanism", "plain", tok, StepAuth, ""},
	} {
		sc, err := saslClient(t.Context(), "mb", "mail.example.com:993", tc.mech, "u@example.com", tc.token)
		if tc.step != "" {
			e, ok := AsError(err)
			if !ok || e.Step != tc.step || e.Mailbox != "mb" {
				t.Errorf("%s: %v, want an *Error at step %s", tc.name, err, tc.step)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if _, ir, err := sc.Start(); err != nil || string(ir) != tc.first {
			t.Errorf("%s: initial response %q %v, want %q", tc.name, ir, err, tc.first)
		}
	}
}
