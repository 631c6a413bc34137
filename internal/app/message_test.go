package app

import (
	"bytes"
	"net/mail"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/config"
)

func TestPrepare(t *testing.T) {
	snd := &config.Sender{Name: "noreply", Username: "noreply@contoso.com", AllowedFrom: []string{"noreply@contoso.com", "alerts@contoso.com"}}
	tests := []struct {
		name, msg, from string
		to              []string
		wantFrom        string
		wantRcpts       string
		wantErr         string
		bccGone         bool
	}{
		{name: "headers", msg: "From: Alerts <alerts@contoso.com>\r\nTo: a@x.com, B <b@x.com>\r\nCc: c@x.com\r\nBcc: d@x.com,\r\n e@x.com\r\nSubject: s\r\n\r\nBcc: stays in the body\r\n",
			wantFrom: "alerts@contoso.com", wantRcpts: "a@x.com b@x.com c@x.com d@x.com e@x.com", bccGone: true},
		{name: "--to wins", msg: "From: noreply@contoso.com\r\nTo: a@x.com\r\n\r\nx\r\n", to: []string{"z@x.com"}, wantFrom: "noreply@contoso.com", wantRcpts: "z@x.com"},
		{name: "no From uses the account", msg: "To: a@x.com\r\n\r\nx\r\n", wantFrom: "noreply@contoso.com", wantRcpts: "a@x.com"},
		{name: "From not allowed", msg: "From: ceo@contoso.com\r\nTo: a@x.com\r\n\r\nx\r\n", wantErr: "allowed_from"},
		{name: "--from not allowed", msg: "From: noreply@contoso.com\r\nTo: a@x.com\r\n\r\nx\r\n", from: "ceo@contoso.com", wantErr: "allowed_from"},
		{name: "no recipients", msg: "From: noreply@contoso.com\r\n\r\nx\r\n", wantErr: "no recipients"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Prepare([]byte(tt.msg), tt.from, tt.to, snd)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || p.From != tt.wantFrom || strings.Join(p.Rcpts, " ") != tt.wantRcpts {
				t.Fatalf("%+v %v", p, err)
			}
			head, body, _ := strings.Cut(string(p.Raw), "\r\n\r\n")
			if tt.bccGone && (strings.Contains(head, "Bcc") || strings.Contains(head, "e@x.com") || !strings.Contains(body, "Bcc: stays")) {
				t.Errorf("Bcc handling:\n%s", p.Raw)
			}
		})
	}
}

// TestPrepareAllowedFromDefault: without allowed_from a sender may use its
// username only (as documented), and "@domain" allows a whole domain.
func TestPrepareAllowedFromDefault(t *testing.T) {
	bare := &config.Sender{Name: "bare", Username: "noreply@contoso.com"}
	domain := &config.Sender{Name: "dom", Username: "noreply@contoso.com", AllowedFrom: []string{"@contoso.com"}}
	for _, tt := range []struct {
		name, from string
		snd        *config.Sender
		ok         bool
	}{
		{"username", "NoReply@contoso.com", bare, true},
		{"another address", "ceo@contoso.com", bare, false},
		{"domain", "ceo@CONTOSO.com", domain, true},
		{"other domain", "ceo@contoso.com.evil.example", domain, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Prepare([]byte("From: "+tt.from+"\r\nTo: a@x.com\r\n\r\nx\r\n"), "", nil, tt.snd)
			if (err == nil) != tt.ok {
				t.Fatalf("From %s through %s: %v, want allowed %v", tt.from, tt.snd.Name, err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), tt.snd.Name) {
				t.Errorf("the refusal does not name the sender: %v", err)
			}
		})
	}
}

func FuzzStripHeader(f *testing.F) {
	f.Add("Bcc: a\r\n b\r\nTo: c\r\n\r\nBcc: body\r\n")
	f.Add("Bcc:x")
	f.Fuzz(func(t *testing.T, s string) {
		out := string(stripHeader([]byte(s), "Bcc"))
		if len(out) > len(s) {
			t.Fatal("grew")
		}
		if !strings.Contains(s, "\n") && !strings.HasPrefix(strings.ToLower(strings.TrimSpace(s)), "bcc") && out != s {
			t.Fatalf("changed a header-free line: %q → %q", s, out)
		}
	})
}

func TestGraphRecipients(t *testing.T) {
	tests := []struct {
		msg     string
		to      []string
		want    string
		wantErr bool
	}{
		{"Subject: x\r\n\r\nb\r\n", []string{"a@x.com", "b@x.com"}, "To: a@x.com, b@x.com\r\nSubject: x\r\n\r\nb\r\n", false},
		{"To: A@x.com\r\n\r\nb\r\n", []string{"a@x.com"}, "To: A@x.com\r\n\r\nb\r\n", false},
		{"To: c@x.com\r\n\r\nb\r\n", []string{"a@x.com"}, "", true},
		{"To: c@x.com\r\n\r\nb\r\n", nil, "To: c@x.com\r\n\r\nb\r\n", false},
	}
	for _, tt := range tests {
		got, err := GraphRecipients([]byte(tt.msg), tt.to)
		if (err != nil) != tt.wantErr || err == nil && string(got) != tt.want {
			t.Errorf("%q %v: %q %v", tt.msg, tt.to, got, err)
		}
	}
}

// TestPrepareGraphMessageID: a message sent through Graph gets a
// Message-ID when it has none (the Sent Items lookup after a crash needs
// it), whether its recipients come from the headers or from --to; one it
// has is kept.
func TestPrepareGraphMessageID(t *testing.T) {
	snd := &config.Sender{Name: "g", Protocol: "graph", Username: "noreply@contoso.com"}
	tests := []struct {
		name, msg string
		to        []string
		want      string // a Message-ID the result must carry; "" for any new one
	}{
		{name: "headers", msg: "To: a@x.com\r\nSubject: s\r\n\r\nx\r\n"},
		{name: "--to", msg: "Subject: s\r\n\r\nx\r\n", to: []string{"a@x.com"}},
		{name: "--to and To", msg: "To: a@x.com\r\n\r\nx\r\n", to: []string{"a@x.com"}},
		{name: "kept", msg: "Message-ID: <m@x.com>\r\nTo: a@x.com\r\n\r\nx\r\n", to: []string{"a@x.com"}, want: "<m@x.com>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Prepare([]byte(tt.msg), "", tt.to, snd)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := mail.ReadMessage(bytes.NewReader(p.Raw))
			if err != nil {
				t.Fatal(err)
			}
			id := msg.Header.Get("Message-Id")
			if tt.want != "" && id != tt.want || tt.want == "" && !strings.HasSuffix(id, "@contoso.com>") {
				t.Errorf("Message-ID %q in\n%s", id, p.Raw)
			}
			if n := strings.Count(strings.ToLower(string(p.Raw)), "message-id:"); n != 1 {
				t.Errorf("%d Message-ID headers", n)
			}
		})
	}
}
