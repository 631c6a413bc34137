package graph

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/emulator"
)

// b64 wraps data's base64 at 76 columns, as mail agents write it.
func b64(data []byte) string {
	s := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	b.WriteString(s)
	return b.String()
}

func blob(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)*31 + seed
	}
	return b
}

func TestSplitAttachments(t *testing.T) {
	pdf := blob(300_000, 1)
	img := blob(120_000, 2)
	small := []byte("tiny file\r\n")
	head := "From: a@example.com\r\nTo: b@example.com\r\nSubject: s\r\nMessage-ID: <m@x>\r\nMIME-Version: 1.0\r\n"
	mixed := head + "Content-Type: multipart/mixed; boundary=\"B1\"\r\n\r\nThis is a multi-part message.\r\n" +
		"--B1\r\nContent-Type: multipart/alternative; boundary=B2\r\n\r\n" +
		"--B2\r\nContent-Type: text/plain\r\n\r\nhello\r\n--B2\r\nContent-Type: text/html\r\n\r\n<p>hello</p>\r\n--B2--\r\n" +
		"\r\n--B1\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(pdf) +
		"\r\n--B1\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\nContent-Disposition: inline\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(img) +
		"\r\n--B1\r\nContent-Type: text/plain; name*=utf-8''%C3%BCbersicht.txt\r\nContent-Disposition: attachment\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ntiny file=0D=0A" +
		"\r\n--B1--\r\nepilogue\r\n"
	onlyFile := head + "Content-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(pdf) + "\r\n--X--\r\n"
	single := head + "Content-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(pdf) + "\r\n"
	bigText := head + "Content-Type: text/plain\r\n\r\n" + strings.Repeat("x", 500_000) + "\r\n"

	tests := []struct {
		name      string
		raw       string
		budget    int
		wantNames []string
		wantData  [][]byte
		keep      []string // substrings the remainder must keep
		err       string
	}{
		{"fits", mixed, len(mixed), nil, nil, []string{"report.pdf"}, ""},
		{"largest first", mixed, len(mixed) - 300_000, []string{"report.pdf"}, [][]byte{pdf}, []string{"<p>hello</p>", "Content-ID: <logo@x>", "epilogue"}, ""},
		{"until it fits", mixed, 2000, []string{"report.pdf", "attachment-2"}, [][]byte{pdf, img}, []string{"hello\r\n--B2", "tiny file=0D=0A\r\n--B1--\r\nepilogue"}, ""},
		{"all files", mixed, 400, []string{"report.pdf", "attachment-2", "übersicht.txt"}, [][]byte{pdf, img, small}, []string{"hello\r\n--B2", "--B1--\r\nepilogue"}, ""},
		{"a multipart keeps one part", onlyFile, 1000, []string{"a.pdf"}, [][]byte{pdf}, []string{"--X\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\r\n--X--"}, ""},
		{"single-part file", single, 1000, []string{"a.pdf"}, [][]byte{pdf}, []string{"Subject: s\r\n", "Content-Type: text/plain"}, ""},
		{"text too big", bigText, 1000, nil, nil, nil, "no attachment"},
		{"no separator", strings.Repeat("x", 2000), 1000, nil, nil, nil, "no header/body separator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rest, atts, err := SplitAttachments([]byte(tt.raw), tt.budget)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(rest) > tt.budget {
				t.Errorf("remainder %d bytes > budget %d", len(rest), tt.budget)
			}
			if len(atts) != len(tt.wantNames) {
				t.Fatalf("%d attachments, want %v", len(atts), tt.wantNames)
			}
			for i, a := range atts {
				if a.Name != tt.wantNames[i] || !bytes.Equal(a.Data, tt.wantData[i]) {
					t.Errorf("attachment %d: %q %d bytes", i, a.Name, len(a.Data))
				}
			}
			for _, k := range tt.keep {
				if !bytes.Contains(rest, []byte(k)) {
					t.Errorf("remainder lost %q:\n%.600s", k, rest)
				}
			}
			// the remainder is still a well-formed message whose parts parse
			msg, err := mail.ReadMessage(bytes.NewReader(rest))
			if err != nil {
				t.Fatal(err)
			}
			if ct, p, _ := mime.ParseMediaType(msg.Header.Get("Content-Type")); strings.HasPrefix(ct, "multipart/") {
				mr := multipart.NewReader(msg.Body, p["boundary"])
				n := 0
				for {
					_, err := mr.NextPart()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("remainder's parts: %v", err)
					}
					n++
				}
				if n == 0 {
					t.Error("remainder multipart has no parts")
				}
			}
		})
	}
	// inline part: content id and inline flag survive
	_, atts, _ := SplitAttachments([]byte(mixed), 2000)
	if atts[1].ContentID != "logo@x" || !atts[1].Inline || atts[1].ContentType != "image/png" {
		t.Errorf("inline attachment: %+v", atts[1].Name)
	}
}

func FuzzSplitAttachments(f *testing.F) {
	f.Add([]byte("Subject: a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Disposition: attachment; filename=x\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\n--b--\r\n"), 10)
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-ID: <i>\r\n\r\nzz\r\n--c--\r\n--b"), 5)
	f.Add([]byte("Content-Type: application/pdf; name=a\r\n\r\n%PDF"), 3)
	f.Fuzz(func(t *testing.T, raw []byte, budget int) {
		rest, atts, err := SplitAttachments(raw, budget)
		if err != nil {
			return
		}
		if len(atts) > 0 && len(rest) > budget {
			t.Fatalf("remainder %d bytes over budget %d", len(rest), budget)
		}
		for _, a := range atts {
			if a.Name == "" || a.ContentType == "" {
				t.Fatalf("attachment without name or type: %+v", a)
			}
		}
	})
}

func emulatorClient(t *testing.T) (*emulator.Server, *Client) {
	t.Helper()
	emu, err := emulator.Start(t.Context(), emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	tok := func(ctx context.Context) (string, error) {
		return emu.DemoAppToken(ctx, "https://graph.microsoft.com/.default")
	}
	return emu, New(Options{Endpoint: emu.URL(), HTTPClient: emu.Client(), Bearer: BearerFunc(tok)})
}

// TestSendLarge: a 20 MB message goes through a draft and an upload
// session; the recipient's copy has the same headers, text and attachment
// bytes; no draft is left behind.
func TestSendLarge(t *testing.T) {
	emu, c := emulatorClient(t)
	pdf := blob(20<<20, 9)
	small := blob(200_000, 3)
	raw := "From: " + emulator.DemoSenderMailbox + "\r\nTo: " + emulator.DemoInvoicesMailbox + "\r\nSubject: the big one\r\nMessage-ID: <big-1@mailgate.test>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlease find the report attached.\r\n" +
		"--XX\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(pdf) + "\r\n" +
		"--XX\r\nContent-Type: application/octet-stream; name=\"small.bin\"\r\nContent-Disposition: attachment; filename=\"small.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(small) + "\r\n--XX--\r\n"
	if err := c.Send(t.Context(), emulator.DemoSenderMailbox, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	got := emu.GraphMessages(emulator.DemoInvoicesMailbox, "inbox")
	if len(got) != 1 {
		t.Fatalf("%d messages arrived", len(got))
	}
	msg, err := mail.ReadMessage(bytes.NewReader(got[0]))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("Subject") != "the big one" || msg.Header.Get("Message-Id") != "<big-1@mailgate.test>" {
		t.Errorf("headers: %v", msg.Header)
	}
	_, p, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	mr := multipart.NewReader(msg.Body, p["boundary"])
	files := map[string][]byte{}
	var text string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(part)
		if part.FileName() == "" {
			text = string(b)
			continue
		}
		files[part.FileName()], _ = base64.StdEncoding.DecodeString(strings.ReplaceAll(string(b), "\r\n", ""))
	}
	if text != "Please find the report attached." || !bytes.Equal(files["report.pdf"], pdf) || !bytes.Equal(files["small.bin"], small) {
		t.Errorf("text %q, report %d bytes (equal %v), small %d bytes", text, len(files["report.pdf"]), bytes.Equal(files["report.pdf"], pdf), len(files["small.bin"]))
	}
	if n := len(emu.GraphMessages(emulator.DemoSenderMailbox, "drafts")); n != 0 {
		t.Errorf("%d drafts left", n)
	}
	ids, err := c.FindSent(t.Context(), emulator.DemoSenderMailbox, "<big-1@mailgate.test>")
	if err != nil || len(ids) != 1 {
		t.Errorf("FindSent: %v %v", ids, err)
	}
	if ids, err := c.FindSent(t.Context(), emulator.DemoSenderMailbox, "<never-sent@x>"); err != nil || len(ids) != 0 {
		t.Errorf("FindSent of an unsent message: %v %v", ids, err)
	}
}

// TestSendLargeNeedsReadWrite: without Mail.ReadWrite the large path fails
// with a hint that names the permission, and nothing is sent.
func TestSendLargeNeedsReadWrite(t *testing.T) {
	emu, c := emulatorClient(t)
	if err := emu.Tenant().RevokeAppRoles(emulator.DemoAppID, "https://graph.microsoft.com", "Mail.ReadWrite"); err != nil {
		t.Fatal(err)
	}
	raw := "To: " + emulator.DemoInvoicesMailbox + "\r\nSubject: big\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(blob(4<<20, 1)) + "\r\n"
	err := c.Send(t.Context(), emulator.DemoSenderMailbox, []byte(raw))
	var ge *Error
	if !errors.As(err, &ge) || ge.Status != http.StatusForbidden || !strings.Contains(ge.Hint(), "Mail.ReadWrite besides Mail.Send") {
		t.Fatalf("err %v", err)
	}
	if n := len(emu.GraphMessages(emulator.DemoInvoicesMailbox, "inbox")); n != 0 {
		t.Errorf("%d delivered", n)
	}
}

// TestSenderSaveToSentItems: with save_to_sent_items false the copy
// Exchange files in Sent Items is removed; with true it stays and Sent
// finds it.
func TestSenderSaveToSentItems(t *testing.T) {
	emu, c := emulatorClient(t)
	for _, keep := range []bool{true, false} {
		s := &Sender{Client: c, User: emulator.DemoSenderMailbox, SaveToSentItems: keep, SentPoll: 2 * time.Second}
		id := fmt.Sprintf("<keep-%v@mailgate.test>", keep)
		raw := "To: " + emulator.DemoInvoicesMailbox + "\r\nSubject: s\r\nMessage-ID: " + id + "\r\n\r\nx\r\n"
		if err := s.Send(t.Context(), []byte(raw)); err != nil {
			t.Fatal(err)
		}
		ids, err := c.FindSent(t.Context(), emulator.DemoSenderMailbox, id)
		if err != nil || (len(ids) == 1) != keep {
			t.Errorf("save_to_sent_items %v: %d copies in Sent Items (%v)", keep, len(ids), err)
		}
		if sent, known := s.Sent(t.Context(), id); known != keep || sent != keep {
			t.Errorf("save_to_sent_items %v: Sent() = %v, %v", keep, sent, known)
		}
	}
	if n := len(emu.GraphMessages(emulator.DemoInvoicesMailbox, "inbox")); n != 2 {
		t.Errorf("%d delivered, want 2", n)
	}
}
