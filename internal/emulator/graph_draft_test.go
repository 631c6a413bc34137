package emulator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"strings"
	"testing"
)

// put sends one upload chunk the way an upload URL takes it.
func put(t *testing.T, srv *Server, u string, data []byte, start, total int, auth string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "PUT", u, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+len(data)-1, total))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &m)
	if resp.StatusCode == 201 && resp.Header.Get("Location") == "" {
		t.Error("final chunk: 201 without Location")
	}
	return resp.StatusCode, m
}

// TestGraphDraftUploadSession walks Microsoft's large-attachment recipe: a
// draft from MIME, an upload session, ranges PUT in order without a token,
// then send; the recipient gets the attachment's bytes unchanged.
func TestGraphDraftUploadSession(t *testing.T) {
	srv := start(t)
	tok := graphToken(t, srv)
	from, to := DemoSenderMailbox, DemoInvoicesMailbox
	base := "/v1.0/users/" + from
	mimeMsg := "From: " + from + "\r\nTo: " + to + "\r\nSubject: big\r\nMessage-ID: <big@x>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
	st, m, raw := gcall(t, srv, "POST", base+"/messages", tok, base64.StdEncoding.EncodeToString([]byte(mimeMsg)), "Content-Type", "text/plain")
	if st != 201 || m["isDraft"] != true {
		t.Fatalf("create draft: %d %s", st, raw)
	}
	id := m["id"].(string)
	att := make([]byte, 5<<20+12345)
	for i := range att {
		att[i] = byte(i * 7 % 251)
	}

	// refusals first
	if st, m, _ := gcall(t, srv, "POST", base+"/messages/"+id+"/attachments/createUploadSession", tok,
		`{"AttachmentItem":{"attachmentType":"file","name":"small.bin","size":1000}}`); st != 400 || graphErrCode(m) != "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize" {
		t.Errorf("small upload session: %d %v", st, m)
	}
	big := base64.StdEncoding.EncodeToString(att[:3<<20+1])
	if st, m, _ := gcall(t, srv, "POST", base+"/messages/"+id+"/attachments", tok,
		`{"@odata.type":"#microsoft.graph.fileAttachment","name":"x.bin","contentBytes":"`+big+`"}`); st != 413 && (st != 400 || graphErrCode(m) != "ErrorAttachmentSizeExceeded") {
		t.Errorf("3 MB+1 inline attachment: %d %v", st, graphErrCode(m))
	}

	st, m, raw = gcall(t, srv, "POST", base+"/messages/"+id+"/attachments/createUploadSession", tok,
		fmt.Sprintf(`{"AttachmentItem":{"attachmentType":"file","name":"report.pdf","size":%d,"contentType":"application/pdf"}}`, len(att)))
	if st != 201 || fmt.Sprint(m["nextExpectedRanges"]) != "[0-]" {
		t.Fatalf("createUploadSession: %d %s", st, raw)
	}
	up := m["uploadUrl"].(string)
	if st, _ := put(t, srv, up, att[:1000], 0, len(att), "Bearer "+tok); st != 401 {
		t.Errorf("PUT with Authorization: %d, want 401", st)
	}
	if st, _ := put(t, srv, up, att[1000:2000], 1000, len(att), ""); st != 416 {
		t.Errorf("PUT out of order: %d, want 416", st)
	}
	if st, _ := put(t, srv, up, att[:4<<20+1], 0, len(att), ""); st != 413 {
		t.Errorf("PUT of 4 MB+1: %d, want 413", st)
	}
	const chunk = 3 << 20
	for off := 0; off < len(att); off += chunk {
		end := min(off+chunk, len(att))
		st, m := put(t, srv, up, att[off:end], off, len(att), "")
		switch {
		case end < len(att) && (st != 200 || fmt.Sprint(m["nextExpectedRanges"]) != fmt.Sprintf("[%d-]", end)):
			t.Fatalf("chunk at %d: %d %v", off, st, m)
		case end == len(att) && st != 201:
			t.Fatalf("last chunk: %d %v", st, m)
		}
	}
	if st, _, raw := gcall(t, srv, "POST", base+"/messages/"+id+"/send", tok, ""); st != 202 {
		t.Fatalf("send: %d %s", st, raw)
	}
	got := srv.GraphMessages(to, "inbox")
	if len(got) != 1 {
		t.Fatalf("%d messages delivered", len(got))
	}
	msg, err := mail.ReadMessage(bytes.NewReader(got[0]))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("Subject") != "big" || msg.Header.Get("Message-Id") != "<big@x>" {
		t.Errorf("headers: %v", msg.Header)
	}
	_, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var text string
	var file []byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		if p.FileName() == "report.pdf" {
			file, _ = base64.StdEncoding.DecodeString(strings.ReplaceAll(string(b), "\r\n", ""))
		} else {
			text = string(b)
		}
	}
	if text != "see attached\r\n" || !bytes.Equal(file, att) {
		t.Errorf("delivered: text %q, attachment %d bytes (equal %v)", text, len(file), bytes.Equal(file, att))
	}
	if n := len(srv.GraphMessages(from, "sentitems")); n != 1 {
		t.Errorf("%d in Sent Items", n)
	}
	if n := len(srv.GraphMessages(from, "drafts")); n != 0 {
		t.Errorf("%d left in Drafts", n)
	}
	// a sent message is no longer a draft
	if st, m, _ := gcall(t, srv, "POST", base+"/messages/"+id+"/send", tok, ""); st != 400 {
		t.Errorf("second send: %d %v", st, m)
	}
}

// TestGraphDraftPermissions: a draft needs Mail.ReadWrite; sending it needs
// Mail.Send; a MIME sendMail over 4 MB is refused.
func TestGraphDraftPermissions(t *testing.T) {
	srv := start(t)
	if err := srv.Tenant().RevokeAppRoles(DemoAppID, "https://graph.microsoft.com", "Mail.ReadWrite"); err != nil {
		t.Fatal(err)
	}
	tok := graphToken(t, srv)
	base := "/v1.0/users/" + DemoSenderMailbox
	mimeMsg := base64.StdEncoding.EncodeToString([]byte("To: " + DemoInvoicesMailbox + "\r\nSubject: x\r\n\r\nx\r\n"))
	if st, m, _ := gcall(t, srv, "POST", base+"/messages", tok, mimeMsg, "Content-Type", "text/plain"); st != 403 || graphErrCode(m) != "ErrorAccessDenied" {
		t.Errorf("draft with Mail.Send only: %d %v", st, m)
	}
	huge := base64.StdEncoding.EncodeToString(append([]byte("To: "+DemoInvoicesMailbox+"\r\nSubject: x\r\n\r\n"), make([]byte, 3<<20+100)...))
	if st, m, _ := gcall(t, srv, "POST", base+"/sendMail", tok, huge, "Content-Type", "text/plain"); st != 413 {
		t.Errorf("5 MB sendMail: %d %v", st, m)
	}
}
