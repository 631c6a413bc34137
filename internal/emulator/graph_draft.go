package emulator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Drafts and large attachments, as Microsoft documents them for Outlook
// mail in Graph ("Create message", "Add attachment", "Attach large files to
// Outlook messages", "message: send"):
//
//   - POST /users/{id}/messages (or .../mailFolders/{id}/messages) creates a
//     draft from JSON or from base64 MIME (Content-Type: text/plain); it
//     needs Mail.ReadWrite and answers 201 with the draft.
//   - POST .../messages/{id}/attachments adds a fileAttachment of at most
//     3 MB (contentBytes in base64).
//   - POST .../messages/{id}/attachments/createUploadSession starts an upload
//     for a file of 3 MB to 150 MB: 201 {uploadUrl, expirationDateTime,
//     nextExpectedRanges:["0-"]}. The upload URL is pre-authenticated (on
//     outlook.office.com in the cloud, on the emulator here) and is PUT to
//     without an Authorization header, in order, with Content-Range, each
//     request under 4 MB: 200 {nextExpectedRanges} until the last, which
//     answers 201 with a Location.
//   - POST .../messages/{id}/send sends the draft (Mail.Send): 202, the
//     message goes to Sent Items.
//
// Where Microsoft documents a limit but not the exact error, the codes used
// here are marked as inferred.

const (
	maxInlineAttachment = 3 << 20   // POST .../attachments; upload sessions from here on
	maxUploadAttachment = 150 << 20 // createUploadSession's upper bound
	maxUploadChunk      = 4 << 20   // each PUT to an upload URL stays under this
	maxMIMERequest      = 4 << 20   // a base64 MIME request body (sendMail, create)
)

type gattachment struct {
	name, contentType, contentID string
	inline                       bool
	data                         []byte
}

type uploadSession struct {
	mailbox, msgID string
	att            gattachment
	size           int64
	next           int64
	expires        time.Time
}

// handleCreateDraft serves POST /users/{id}/messages and
// /users/{id}/mailFolders/{folder}/messages.
func (s *Server) handleCreateDraft(w http.ResponseWriter, r *http.Request, b *gmailbox, _ *Claims) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxMIMERequest))
	if err != nil {
		// Microsoft documents 413 for MIME payloads over 4 MB (code inferred)
		s.graphError(w, r, 413, "ErrorRequestEntityTooLarge", "The request body exceeds the maximum size of 4 MB; attach large files with an upload session.")
		return
	}
	var raw []byte
	var atts []gattachment
	if strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		raw, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(body)), ""))
		if err != nil {
			s.graphError(w, r, 400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.")
			return
		}
		if _, err := mail.ReadMessage(bytes.NewReader(raw)); err != nil {
			s.graphError(w, r, 400, "ErrorMimeContentInvalid", "The MIME content is not valid.")
			return
		}
	} else {
		var v jsonMessage
		if err := json.Unmarshal(body, &v); err != nil {
			s.graphError(w, r, 400, "RequestBodyRead", "Invalid JSON in the request body.")
			return
		}
		for _, a := range v.Attachments {
			ga, code, msg := a.decode()
			if code != "" {
				s.graphError(w, r, 400, code, msg)
				return
			}
			atts = append(atts, ga)
		}
		raw = v.mime(r.PathValue("user"))
	}
	g := s.graph()
	g.mu.Lock()
	folder := "drafts"
	if f := r.PathValue("folder"); f != "" {
		folder = f
	}
	fid, ok := b.folderID(folder)
	var out map[string]any
	if ok {
		m := g.addLocked(b, &gmessage{raw: raw, isRead: true, isDraft: true, attachments: atts, folder: fid}, s.now())
		out = messageJSON(m, wantsImmutable(r))
	}
	g.mu.Unlock()
	if !ok {
		s.itemNotFound(w, r)
		return
	}
	writeJSON(w, 201, out)
}

// jsonMessage is the part of Graph's message resource the emulator reads.
type jsonMessage struct {
	Subject string `json:"subject"`
	Body    struct {
		ContentType string `json:"contentType"`
		Content     string `json:"content"`
	} `json:"body"`
	ToRecipients  []jsonRecipient  `json:"toRecipients"`
	CcRecipients  []jsonRecipient  `json:"ccRecipients"`
	BccRecipients []jsonRecipient  `json:"bccRecipients"`
	Attachments   []jsonAttachment `json:"attachments"`
}

type jsonRecipient struct {
	EmailAddress struct {
		Name    string `json:"name"`
		Address string `json:"address"`
	} `json:"emailAddress"`
}

type jsonAttachment struct {
	Type         string `json:"@odata.type"`
	Name         string `json:"name"`
	ContentType  string `json:"contentType"`
	ContentBytes string `json:"contentBytes"`
	ContentID    string `json:"contentId"`
	IsInline     bool   `json:"isInline"`
}

// decode checks a fileAttachment; a non-empty code is Graph's refusal.
func (a jsonAttachment) decode() (gattachment, string, string) {
	if a.Type != "#microsoft.graph.fileAttachment" {
		return gattachment{}, "ErrorInvalidRequest", "Only #microsoft.graph.fileAttachment is supported here."
	}
	data, err := base64.StdEncoding.DecodeString(a.ContentBytes)
	if err != nil {
		return gattachment{}, "ErrorInvalidRequest", "Invalid base64 in contentBytes."
	}
	if len(data) > maxInlineAttachment {
		// documented limit; the code is inferred
		return gattachment{}, "ErrorAttachmentSizeExceeded", "Attachments over 3 MB must be uploaded with an upload session."
	}
	ct := a.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	return gattachment{name: a.Name, contentType: ct, contentID: a.ContentID, inline: a.IsInline, data: data}, "", ""
}

func addresses(rs []jsonRecipient) string {
	var out []string
	for _, r := range rs {
		out = append(out, (&mail.Address{Name: r.EmailAddress.Name, Address: r.EmailAddress.Address}).String())
	}
	return strings.Join(out, ", ")
}

// mime renders a JSON message as Exchange would hand it out.
func (v jsonMessage) mime(from string) []byte {
	var b strings.Builder
	b.WriteString("From: " + from + "\r\n")
	for _, h := range []struct {
		name string
		rs   []jsonRecipient
	}{{"To", v.ToRecipients}, {"Cc", v.CcRecipients}, {"Bcc", v.BccRecipients}} {
		if len(h.rs) > 0 {
			b.WriteString(h.name + ": " + addresses(h.rs) + "\r\n")
		}
	}
	b.WriteString("Subject: " + mime.QEncoding.Encode("utf-8", v.Subject) + "\r\n")
	b.WriteString("Message-ID: <" + randomToken(16) + "@emulator.mailgate.test>\r\nMIME-Version: 1.0\r\n")
	ct := "text/plain"
	if strings.EqualFold(v.Body.ContentType, "html") {
		ct = "text/html"
	}
	b.WriteString("Content-Type: " + ct + "; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	b.WriteString(v.Body.Content + "\r\n")
	return []byte(b.String())
}

// handleAddAttachment serves POST .../messages/{id}/attachments.
func (s *Server) handleAddAttachment(w http.ResponseWriter, r *http.Request, b *gmailbox, _ *Claims) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxMIMERequest+1<<20))
	if err != nil {
		s.graphError(w, r, 413, "ErrorRequestEntityTooLarge", "The request body exceeds the maximum size of 4 MB; attach large files with an upload session.")
		return
	}
	var a jsonAttachment
	if err := json.Unmarshal(body, &a); err != nil {
		s.graphError(w, r, 400, "RequestBodyRead", "Invalid JSON in the request body.")
		return
	}
	ga, code, msg := a.decode()
	if code != "" {
		s.graphError(w, r, 400, code, msg)
		return
	}
	g := s.graph()
	g.mu.Lock()
	m, ok := findMessage(b, r.PathValue("id"))
	draft := ok && m.isDraft
	if draft {
		m.attachments = append(m.attachments, ga)
	}
	g.mu.Unlock()
	switch {
	case !ok:
		s.itemNotFound(w, r)
	case !draft:
		s.graphError(w, r, 403, "ErrorAccessDenied", "Access is denied. Attachments can be added to drafts only.")
	default:
		writeJSON(w, 201, map[string]any{"@odata.type": "#microsoft.graph.fileAttachment", "id": "AAMkAG" + randomToken(16),
			"name": ga.name, "contentType": ga.contentType, "size": len(ga.data), "isInline": ga.inline})
	}
}

// handleCreateUploadSession serves POST
// .../messages/{id}/attachments/createUploadSession.
func (s *Server) handleCreateUploadSession(w http.ResponseWriter, r *http.Request, b *gmailbox, _ *Claims) {
	var v struct {
		AttachmentItem *struct {
			AttachmentType string `json:"attachmentType"`
			Name           string `json:"name"`
			Size           int64  `json:"size"`
			ContentType    string `json:"contentType"`
			ContentID      string `json:"contentId"`
			IsInline       bool   `json:"isInline"`
		} `json:"AttachmentItem"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&v); err != nil || v.AttachmentItem == nil {
		s.graphError(w, r, 400, "RequestBodyRead", "The AttachmentItem parameter is missing.")
		return
	}
	it := v.AttachmentItem
	switch {
	case it.AttachmentType != "file":
		s.graphError(w, r, 400, "ErrorInvalidRequest", "attachmentType must be file.")
		return
	case it.Name == "":
		s.graphError(w, r, 400, "ErrorInvalidRequest", "The attachment name is missing.")
		return
	case it.Size < maxInlineAttachment:
		// below 3 MB an upload session is refused (code inferred)
		s.graphError(w, r, 400, "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize", "Attachment size must be greater than the minimum size.")
		return
	case it.Size > maxUploadAttachment:
		s.graphError(w, r, 400, "ErrorAttachmentSizeExceeded", "Attachments over 150 MB are not supported.")
		return
	}
	ct := it.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	g := s.graph()
	g.mu.Lock()
	m, ok := findMessage(b, r.PathValue("id"))
	draft := ok && m.isDraft
	tok := randomToken(32)
	expires := s.now().UTC().Add(15 * time.Minute)
	if draft {
		if g.uploads == nil {
			g.uploads = map[string]*uploadSession{}
		}
		g.uploads[tok] = &uploadSession{mailbox: strings.ToLower(r.PathValue("user")), msgID: m.immutableID, size: it.Size, expires: expires,
			att: gattachment{name: it.Name, contentType: ct, contentID: it.ContentID, inline: it.IsInline}}
	}
	g.mu.Unlock()
	switch {
	case !ok:
		s.itemNotFound(w, r)
		return
	case !draft:
		s.graphError(w, r, 403, "ErrorAccessDenied", "Access is denied. Attachments can be added to drafts only.")
		return
	}
	upload := fmt.Sprintf("%s/api/v2.0/Users('%s')/Messages('%s')/AttachmentSessions('%s')?authtoken=%s",
		s.base(r), url.PathEscape(r.PathValue("user")), m.immutableID, randomToken(12), tok)
	writeJSON(w, 201, map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.uploadSession",
		"uploadUrl": upload, "expirationDateTime": expires.Format(time.RFC3339Nano), "nextExpectedRanges": []string{"0-"}})
}

var contentRange = regexp.MustCompile(`^bytes (\d+)-(\d+)/(\d+)$`)

// handleUpload serves PUT to an upload URL: one byte range of the
// attachment, in order, without an Authorization header.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	if s.applyFault(w, r, "graph") {
		return
	}
	if r.Header.Get("Authorization") != "" {
		// the URL carries its own token; Microsoft says not to send one
		// (the exact refusal is inferred)
		s.graphError(w, r, 401, "InvalidAuthenticationToken", "Do not send an Authorization header to an upload URL: it is pre-authenticated.")
		return
	}
	g := s.graph()
	tok := r.URL.Query().Get("authtoken")
	g.mu.Lock()
	u, ok := g.uploads[tok]
	g.mu.Unlock()
	if !ok || s.now().After(u.expires) {
		s.graphError(w, r, 404, "ErrorItemNotFound", "The upload session was not found or has expired.")
		return
	}
	cr := contentRange.FindStringSubmatch(r.Header.Get("Content-Range"))
	if cr == nil {
		s.graphError(w, r, 400, "InvalidContentRange", "The Content-Range header is missing or malformed (bytes start-end/total).")
		return
	}
	start, _ := strconv.ParseInt(cr[1], 10, 64)
	end, _ := strconv.ParseInt(cr[2], 10, 64)
	total, _ := strconv.ParseInt(cr[3], 10, 64)
	n := end - start + 1
	switch {
	case total != u.size:
		s.graphError(w, r, 400, "InvalidContentRange", fmt.Sprintf("The total size %d does not match the session's %d.", total, u.size))
		return
	case start != u.next || end < start || end >= total:
		s.graphError(w, r, 416, "InvalidContentRange", fmt.Sprintf("The range %d-%d is not the next expected range %d-.", start, end, u.next))
		return
	case n > maxUploadChunk:
		s.graphError(w, r, 413, "ErrorRequestEntityTooLarge", "Each upload request must be under 4 MB.")
		return
	case r.ContentLength >= 0 && r.ContentLength != n:
		s.graphError(w, r, 400, "InvalidContentRange", "Content-Length does not match Content-Range.")
		return
	}
	chunk, err := io.ReadAll(io.LimitReader(r.Body, n+1))
	if err != nil || int64(len(chunk)) != n {
		s.graphError(w, r, 400, "InvalidContentRange", "The body does not match Content-Range.")
		return
	}
	g.mu.Lock()
	if u.next != start { // a concurrent PUT won
		g.mu.Unlock()
		s.graphError(w, r, 416, "InvalidContentRange", "The range is not the next expected range.")
		return
	}
	u.att.data = append(u.att.data, chunk...)
	u.next = end + 1
	done := u.next == u.size
	attached := false
	if done {
		delete(g.uploads, tok)
		if m, ok := findMessage(g.box(u.mailbox), u.msgID); ok && m.isDraft {
			m.attachments = append(m.attachments, u.att)
			attached = true
		}
	}
	next := u.next
	g.mu.Unlock()
	switch {
	case done && !attached:
		s.graphError(w, r, 404, "ErrorItemNotFound", "The draft of this upload session no longer exists.")
	case done:
		w.Header().Set("Location", fmt.Sprintf("%s/api/v2.0/Users('%s')/Messages('%s')/Attachments('%s')", s.base(r), u.mailbox, u.msgID, randomToken(16)))
		w.WriteHeader(http.StatusCreated)
	default:
		writeJSON(w, 200, map[string]any{"expirationDateTime": u.expires.Format(time.RFC3339Nano), "nextExpectedRanges": []string{strconv.FormatInt(next, 10) + "-"}})
	}
}

// handleSendDraft serves POST /users/{id}/messages/{id}/send: the draft,
// with its attachments, goes to its recipients and into Sent Items.
func (s *Server) handleSendDraft(w http.ResponseWriter, r *http.Request) {
	if s.applyFault(w, r, "graph") {
		return
	}
	user := r.PathValue("user")
	if _, ok := s.graphAuthSend(w, r, user); !ok {
		return
	}
	g := s.graph()
	g.mu.Lock()
	b := g.box(user)
	m, ok := findMessage(b, r.PathValue("id"))
	draft := ok && m.isDraft
	var raw []byte
	if draft {
		raw = withAttachments(m.raw, m.attachments)
	}
	g.mu.Unlock()
	switch {
	case !ok:
		s.itemNotFound(w, r)
		return
	case !draft:
		s.graphError(w, r, 400, "ErrorInvalidRequest", "Only drafts can be sent.")
		return
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		s.graphError(w, r, 400, "ErrorMimeContentInvalid", "The MIME content is not valid.")
		return
	}
	rcpts := recipients(msg.Header)
	if len(rcpts) == 0 {
		s.graphError(w, r, 400, "ErrorInvalidRecipients", "A message can't be sent because it contains no recipients.")
		return
	}
	for _, rc := range rcpts {
		if s.tenant.HasMailbox(rc) {
			s.deliverInbound(rc, raw)
		}
	}
	g.mu.Lock()
	if m, ok := findMessage(b, r.PathValue("id")); ok {
		m.isDraft, m.attachments, m.raw = false, nil, raw
		m.folder, _ = b.folderID("sentitems")
		g.seq++
		m.seq = g.seq
	}
	g.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func recipients(h mail.Header) []string {
	var out []string
	for _, name := range []string{"To", "Cc", "Bcc"} {
		l, _ := h.AddressList(name)
		for _, a := range l {
			out = append(out, a.Address)
		}
	}
	return out
}

// withAttachments adds attachments to a MIME message: new parts at the end
// of a multipart/mixed, or the message wrapped in one.
func withAttachments(raw []byte, atts []gattachment) []byte {
	if len(atts) == 0 {
		return raw
	}
	var parts bytes.Buffer
	boundary := "=_emulator_" + randomToken(12)
	hdr, body := splitHeader(raw)
	ct, params, _ := mime.ParseMediaType(headerValue(hdr, "Content-Type"))
	if ct == "multipart/mixed" && params["boundary"] != "" {
		boundary = params["boundary"]
		closing := []byte("\r\n--" + boundary + "--")
		i := bytes.LastIndex(body, closing)
		if i < 0 && bytes.HasPrefix(body, closing[2:]) {
			i = 0
		}
		if i >= 0 {
			for _, a := range atts {
				writePart(&parts, boundary, a)
			}
			out := append(bytes.Clone(hdr), "\r\n"...)
			out = append(out, body[:i]...)
			out = append(out, parts.Bytes()...)
			return append(out, body[i:]...)
		}
	}
	// wrap: the original content becomes the first part
	var top, inner []byte
	for _, f := range headerFields(hdr) {
		name, _, _ := strings.Cut(string(f), ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-type", "content-transfer-encoding", "content-disposition", "content-id", "content-description":
			inner = append(inner, f...)
		case "mime-version":
		default:
			top = append(top, f...)
		}
	}
	if len(inner) == 0 {
		inner = []byte("Content-Type: text/plain; charset=us-ascii\r\n")
	}
	out := append(top, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\""+boundary+"\"\r\n\r\n"...)
	out = append(out, "--"+boundary+"\r\n"...)
	out = append(out, inner...)
	out = append(out, "\r\n"...)
	out = append(out, body...)
	for _, a := range atts {
		writePart(&parts, boundary, a)
	}
	out = append(out, parts.Bytes()...)
	return append(out, "\r\n--"+boundary+"--\r\n"...)
}

// writePart writes "\r\n--boundary" and one base64 attachment part.
func writePart(w *bytes.Buffer, boundary string, a gattachment) {
	disp := "attachment"
	if a.inline {
		disp = "inline"
	}
	w.WriteString("\r\n--" + boundary + "\r\n")
	w.WriteString("Content-Type: " + mime.FormatMediaType(a.contentType, map[string]string{"name": a.name}) + "\r\n")
	w.WriteString("Content-Disposition: " + mime.FormatMediaType(disp, map[string]string{"filename": a.name}) + "\r\n")
	if a.contentID != "" {
		w.WriteString("Content-ID: <" + a.contentID + ">\r\n")
	}
	w.WriteString("Content-Transfer-Encoding: base64\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(a.data)
	for len(enc) > 76 {
		w.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	w.WriteString(enc)
}

// splitHeader splits a message at its first empty line; the header keeps
// its final line break, the body starts after the empty line.
func splitHeader(raw []byte) (hdr, body []byte) {
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		return raw[:i+2], raw[i+4:]
	}
	if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
		return raw[:i+1], raw[i+2:]
	}
	return raw, nil
}

// headerFields splits a header block into fields, each with its folded
// continuation lines and line breaks.
func headerFields(hdr []byte) [][]byte {
	var out [][]byte
	for len(hdr) > 0 {
		end := 0
		for {
			j := bytes.IndexByte(hdr[end:], '\n')
			if j < 0 {
				end = len(hdr)
				break
			}
			end += j + 1
			if end >= len(hdr) || (hdr[end] != ' ' && hdr[end] != '\t') {
				break
			}
		}
		out = append(out, hdr[:end])
		hdr = hdr[end:]
	}
	return out
}

func headerValue(hdr []byte, name string) string {
	msg, err := mail.ReadMessage(bytes.NewReader(append(bytes.Clone(hdr), "\r\n"...)))
	if err != nil {
		return ""
	}
	return msg.Header.Get(name)
}
