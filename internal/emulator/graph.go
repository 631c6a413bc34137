package emulator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The Graph mail part of the emulator: /v1.0/users/{id}/mailFolders/...
// with Microsoft Graph's paging, delta, MIME download, isRead, move and
// delete, its token checks and error shape. Mailboxes are the tenant's
// (users and shared mailboxes); GraphDeliver puts mail into them.

var wellKnownFolders = []string{"inbox", "archive", "deleteditems", "sentitems", "drafts", "junkemail"}

type gmessage struct {
	id, immutableID string
	folder          string
	isRead          bool
	raw             []byte
	subject, from   string
	messageID       string
	received        time.Time
	seq             int64 // change sequence, for delta
	removed         bool
	isDraft         bool
	attachments     []gattachment // added to a draft, rendered at send
}

type gmailbox struct {
	msgs    map[string]*gmessage // by current id
	byImm   map[string]*gmessage
	folders map[string]string // lower display name / well-known name → folder id
}

type graphState struct {
	mu         sync.Mutex
	boxes      map[string]*gmailbox
	seq        int64
	generation int // bumped by ExpireDeltaTokens: older tokens answer 410
	inflight   map[string]int
	limit      int
	uploads    map[string]*uploadSession // by the upload URL's token
}

func (s *Server) graph() *graphState {
	s.graphOnce.Do(func() {
		s.graphSt = &graphState{boxes: map[string]*gmailbox{}, inflight: map[string]int{}, limit: 4}
	})
	return s.graphSt
}

func (g *graphState) box(addr string) *gmailbox {
	key := strings.ToLower(addr)
	b, ok := g.boxes[key]
	if !ok {
		b = &gmailbox{msgs: map[string]*gmessage{}, byImm: map[string]*gmessage{}, folders: map[string]string{}}
		for _, f := range wellKnownFolders {
			b.folders[f] = "AAMk" + base64.RawURLEncoding.EncodeToString([]byte(key+"/"+f))
		}
		g.boxes[key] = b
	}
	return b
}

// folderID resolves a well-known name or a folder id.
func (b *gmailbox) folderID(name string) (string, bool) {
	if id, ok := b.folders[strings.ToLower(name)]; ok {
		return id, true
	}
	for _, id := range b.folders {
		if id == name {
			return id, true
		}
	}
	return "", false
}

// GraphDeliver puts a raw MIME message into a mailbox's inbox and returns
// its id.
func (s *Server) GraphDeliver(mailbox string, raw []byte) (string, error) {
	if !s.tenant.HasMailbox(mailbox) {
		return "", fmt.Errorf("emulator: no mailbox %q", mailbox)
	}
	g := s.graph()
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.box(mailbox)
	fid, _ := b.folderID("inbox")
	m := g.addLocked(b, &gmessage{raw: bytes.Clone(raw), folder: fid}, s.now())
	return m.id, nil
}

// addLocked stores a new message in b (g.mu held): fresh ids, the next
// change sequence, the received time and the header fields Graph shows.
func (g *graphState) addLocked(b *gmailbox, m *gmessage, now time.Time) *gmessage {
	g.seq++
	m.id, m.immutableID, m.seq = "AAMkAG"+randomToken(24), "AAkALg"+randomToken(24), g.seq
	m.received = now.UTC().Truncate(time.Second)
	if msg, err := mail.ReadMessage(bytes.NewReader(m.raw)); err == nil {
		m.subject, m.from, m.messageID = msg.Header.Get("Subject"), msg.Header.Get("From"), msg.Header.Get("Message-Id")
	}
	b.msgs[m.id], b.byImm[m.immutableID] = m, m
	return m
}

// itemNotFound is Graph's answer for an id a mailbox does not have.
func (s *Server) itemNotFound(w http.ResponseWriter, r *http.Request) {
	s.graphError(w, r, 404, "ErrorItemNotFound", "The specified object was not found in the store.")
}

// GraphMessages returns the raw messages in a mailbox folder (for tests).
func (s *Server) GraphMessages(mailbox, folder string) [][]byte {
	g := s.graph()
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.box(mailbox)
	fid, _ := b.folderID(folder)
	var out [][]byte
	for _, m := range sortedMsgs(b) {
		if m.folder == fid && !m.removed {
			out = append(out, bytes.Clone(m.raw))
		}
	}
	return out
}

// GraphRead reports whether the message with this Message-ID is read.
func (s *Server) GraphRead(mailbox, messageID string) (read, found bool) {
	g := s.graph()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range g.box(mailbox).msgs {
		if m.messageID == messageID && !m.removed {
			return m.isRead, true
		}
	}
	return false, false
}

// ExpireDeltaTokens makes every delta and skip token stale (410).
func (s *Server) ExpireDeltaTokens() {
	g := s.graph()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.generation++
}

func sortedMsgs(b *gmailbox) []*gmessage {
	out := make([]*gmessage, 0, len(b.msgs))
	for _, m := range b.msgs {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, c *gmessage) int { return int(a.seq - c.seq) })
	return out
}

// graphError answers in Graph's error shape.
func (s *Server) graphError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	body := map[string]any{"error": map[string]any{"code": code, "message": msg, "innerError": map[string]any{
		"date": s.now().UTC().Format("2006-01-02T15:04:05"), "request-id": newGUID(), "client-request-id": r.Header.Get("client-request-id")}}}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
	}
	w.Header().Set("request-id", newGUID())
	writeJSON(w, status, body)
}

// graphAuth checks the bearer token as Graph does and returns the claims.
func (s *Server) graphAuth(w http.ResponseWriter, r *http.Request, mailbox string, write bool) (*Claims, bool) {
	auth := r.Header.Get("Authorization")
	raw, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || raw == "" {
		s.graphError(w, r, 401, "InvalidAuthenticationToken", "Access token is empty.")
		return nil, false
	}
	c, err := s.VerifyAccessToken(raw)
	if err != nil {
		// (VerifyAccessToken does not check the audience: that is below)
		msg := "IDX14100: JWT is not well formed."
		if errors.Is(err, ErrTokenExpired) {
			msg = "Lifetime validation failed, the token is expired."
		}
		s.graphError(w, r, 401, "InvalidAuthenticationToken", msg)
		return nil, false
	}
	if c.Aud != "https://graph.microsoft.com" && c.Aud != GraphAppID {
		s.graphError(w, r, 401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
		return nil, false
	}
	if !s.tenant.HasMailbox(mailbox) {
		s.graphError(w, r, 404, "ErrorInvalidUser", fmt.Sprintf("The requested user '%s' is invalid.", mailbox))
		return nil, false
	}
	need := []string{"Mail.Read", "Mail.ReadWrite"}
	if write {
		need = []string{"Mail.ReadWrite"}
	}
	if c.Idtyp == "app" {
		if !slices.ContainsFunc(need, func(p string) bool { return slices.Contains(c.Roles, p) }) {
			s.graphError(w, r, 403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
			return nil, false
		}
		s.tenant.mu.Lock()
		denied := s.tenant.graphDenied[strings.ToLower(mailbox)+"|"+strings.ToLower(c.AppID)]
		s.tenant.mu.Unlock()
		if denied {
			s.graphError(w, r, 403, "ErrorAccessDenied", "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.")
			return nil, false
		}
		return c, true
	}
	if !strings.EqualFold(c.Upn, mailbox) {
		shared := []string{"Mail.Read.Shared", "Mail.ReadWrite.Shared"}
		s.tenant.mu.Lock()
		full := s.tenant.hasPerm(mailbox, c.Upn, "FullAccess")
		s.tenant.mu.Unlock()
		if !full || !slices.ContainsFunc(shared, func(p string) bool { return slices.Contains(c.Scopes(), p) }) {
			s.graphError(w, r, 403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
			return nil, false
		}
		return c, true
	}
	if !slices.ContainsFunc(need, func(p string) bool { return slices.Contains(c.Scopes(), p) }) {
		s.graphError(w, r, 403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
		return nil, false
	}
	return c, true
}

// DenyGraphAccess applies an application access policy that blocks app
// from mailbox (New-ApplicationAccessPolicy -AccessRight DenyAccess).
func (t *Tenant) DenyGraphAccess(appID, mailbox string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.graphDenied == nil {
		t.graphDenied = map[string]bool{}
	}
	t.graphDenied[strings.ToLower(mailbox)+"|"+strings.ToLower(appID)] = true
}

// graphHandler wraps a Graph route: faults, the per-mailbox concurrency
// limit (429 ApplicationThrottled), /me for app tokens.
func (s *Server) graphHandler(write bool, h func(w http.ResponseWriter, r *http.Request, b *gmailbox, c *Claims)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.applyFault(w, r, "graph") {
			return
		}
		user := r.PathValue("user")
		c, ok := s.graphAuth(w, r, user, write)
		if !ok {
			return
		}
		g := s.graph()
		key := strings.ToLower(user)
		g.mu.Lock()
		if g.inflight[key] >= g.limit {
			g.mu.Unlock()
			w.Header().Set("Retry-After", "1")
			s.graphError(w, r, 429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.")
			return
		}
		g.inflight[key]++
		b := g.box(user)
		g.mu.Unlock()
		defer func() {
			g.mu.Lock()
			g.inflight[key]--
			g.mu.Unlock()
		}()
		h(w, r, b, c)
	}
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	s.graphError(w, r, 400, "BadRequest", "/me request is only valid with delegated authentication flow.")
}

func messageJSON(m *gmessage, immutable bool) map[string]any {
	id := m.id
	if immutable {
		id = m.immutableID
	}
	return map[string]any{"id": id, "subject": m.subject, "isRead": m.isRead, "isDraft": m.isDraft, "internetMessageId": m.messageID,
		"receivedDateTime": m.received.Format(time.RFC3339), "parentFolderId": m.folder,
		"from": map[string]any{"emailAddress": map[string]any{"address": m.from}}}
}

// prefer joins every Prefer header (clients send one per preference).
func prefer(r *http.Request) string { return strings.Join(r.Header.Values("Prefer"), ",") }

func wantsImmutable(r *http.Request) bool {
	return strings.Contains(prefer(r), `IdType="ImmutableId"`)
}

// findMessage looks an id up (current or immutable).
func findMessage(b *gmailbox, id string) (*gmessage, bool) {
	if m, ok := b.msgs[id]; ok && !m.removed {
		return m, true
	}
	if m, ok := b.byImm[id]; ok && !m.removed {
		return m, true
	}
	return nil, false
}

// handleList serves GET .../mailFolders/{folder}/messages.
func (s *Server) handleList(w http.ResponseWriter, r *http.Request, b *gmailbox, _ *Claims) {
	g := s.graph()
	q := r.URL.Query()
	top := 10
	if v := q.Get("$top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.graphError(w, r, 400, "BadRequest", "Invalid value for $top: must be between 1 and 1000.")
			return
		}
		top = n
	}
	skip, _ := strconv.Atoi(q.Get("$skip"))
	unreadOnly, msgID := false, ""
	if f := q.Get("$filter"); f != "" {
		if v, ok := strings.CutPrefix(f, "internetMessageId eq '"); ok && strings.HasSuffix(v, "'") {
			msgID = strings.ReplaceAll(strings.TrimSuffix(v, "'"), "''", "'")
		} else if strings.ReplaceAll(f, " ", "") == "isReadeqfalse" {
			unreadOnly = true
		} else {
			s.graphError(w, r, 400, "BadRequest", "Invalid filter clause")
			return
		}
	}
	g.mu.Lock()
	fid, ok := b.folderID(r.PathValue("folder"))
	var page []any
	more := false
	if ok {
		var all []*gmessage
		for _, m := range sortedMsgs(b) {
			if m.folder == fid && !m.removed && (!unreadOnly || !m.isRead) && (msgID == "" || m.messageID == msgID) {
				all = append(all, m)
			}
		}
		for i := skip; i < len(all) && i < skip+top; i++ {
			page = append(page, messageJSON(all[i], wantsImmutable(r)))
		}
		more = skip+top < len(all)
	}
	g.mu.Unlock()
	if !ok {
		s.itemNotFound(w, r)
		return
	}
	body := map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('x')/mailFolders('inbox')/messages", "value": orEmpty(page)}
	if more {
		q.Set("$skip", strconv.Itoa(skip+top))
		q.Set("$top", strconv.Itoa(top))
		body["@odata.nextLink"] = s.base(r) + r.URL.Path + "?" + q.Encode()
	}
	writeJSON(w, 200, body)
}

func orEmpty(v []any) []any {
	if v == nil {
		return []any{}
	}
	return v
}

// handleDelta serves GET .../mailFolders/{folder}/messages/delta.
func (s *Server) handleDelta(w http.ResponseWriter, r *http.Request, b *gmailbox, _ *Claims) {
	g := s.graph()
	q := r.URL.Query()
	page := 10
	if p := prefer(r); strings.Contains(p, "odata.maxpagesize=") {
		v := p[strings.Index(p, "odata.maxpagesize=")+len("odata.maxpagesize="):]
		if i := strings.IndexAny(v, ", "); i >= 0 {
			v = v[:i]
		}
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			page = min(n, 1000)
		}
	}
	var since int64
	offset := 0
	gen := 0
	tok := q.Get("$deltatoken")
	if tok == "" {
		tok = q.Get("$skiptoken")
	}
	if tok != "" {
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			s.graphError(w, r, 400, "BadRequest", "Invalid delta token.")
			return
		}
		gen, _ = strconv.Atoi(parts[0])
		since, _ = strconv.ParseInt(parts[1], 10, 64)
		offset, _ = strconv.Atoi(parts[2])
	}
	g.mu.Lock()
	if tok != "" && gen != g.generation {
		g.mu.Unlock()
		s.graphError(w, r, 410, "SyncStateNotFound", "The sync state generation is not found. Please restart the synchronization from the beginning.")
		return
	}
	fid, ok := b.folderID(r.PathValue("folder"))
	if !ok {
		g.mu.Unlock()
		s.itemNotFound(w, r)
		return
	}
	var changes []*gmessage
	for _, m := range sortedMsgs(b) {
		if m.seq > since && (m.folder == fid || m.removed) {
			if m.removed && tok == "" {
				continue // a first sync lists what is there
			}
			changes = append(changes, m)
		}
	}
	watermark := g.seq
	generation := g.generation
	var out []any
	end := min(offset+page, len(changes))
	for _, m := range changes[min(offset, len(changes)):end] {
		if m.removed {
			out = append(out, map[string]any{"id": m.immutableID, "@removed": map[string]any{"reason": "deleted"}})
			continue
		}
		out = append(out, messageJSON(m, wantsImmutable(r)))
	}
	g.mu.Unlock()
	base := s.base(r) + r.URL.Path + "?"
	body := map[string]any{"value": orEmpty(out)}
	if end < len(changes) {
		body["@odata.nextLink"] = base + url1("$skiptoken", fmt.Sprintf("%d.%d.%d", generation, since, end))
	} else {
		body["@odata.deltaLink"] = base + url1("$deltatoken", fmt.Sprintf("%d.%d.0", generation, watermark))
	}
	writeJSON(w, 200, body)
}

func url1(k, v string) string { return k + "=" + v }

// handleValue serves GET .../messages/{id}/$value (the MIME).
func (s *Server) handleValue(w http.ResponseWriter, r *http.Request, b *gmailbox, _ *Claims) {
	g := s.graph()
	g.mu.Lock()
	m, ok := findMessage(b, r.PathValue("id"))
	var raw []byte
	if ok {
		raw = m.raw
	}
	g.mu.Unlock()
	if !ok {
		s.itemNotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(200)
	_, _ = w.Write(raw)
}

// handlePatch serves PATCH .../messages/{id} (isRead).
func (s *Server) handlePatch(w http.ResponseWriter, r *http.Request, b *gmailbox, _ *Claims) {
	var body struct {
		IsRead *bool `json:"isRead"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil || body.IsRead == nil {
		s.graphError(w, r, 400, "BadRequest", "Empty Payload. JSON content expected.")
		return
	}
	g := s.graph()
	g.mu.Lock()
	m, ok := findMessage(b, r.PathValue("id"))
	if ok && m.isRead != *body.IsRead {
		m.isRead = *body.IsRead
		g.seq++
		m.seq = g.seq
	}
	var out map[string]any
	if ok {
		out = messageJSON(m, wantsImmutable(r))
	}
	g.mu.Unlock()
	if !ok {
		s.itemNotFound(w, r)
		return
	}
	writeJSON(w, 200, out)
}

// handleMove serves POST .../messages/{id}/move: 201 with the moved
// message, under a new id unless Prefer: IdType="ImmutableId".
func (s *Server) handleMove(w http.ResponseWriter, r *http.Request, b *gmailbox, _ *Claims) {
	var body struct {
		DestinationID string `json:"destinationId"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil || body.DestinationID == "" {
		s.graphError(w, r, 400, "ErrorInvalidRequest", "The destinationId is missing.")
		return
	}
	g := s.graph()
	g.mu.Lock()
	m, ok := findMessage(b, r.PathValue("id"))
	dest, dok := b.folderID(body.DestinationID)
	if ok && dok {
		// the old id disappears from the source folder (delta: @removed)
		old := *m
		old.removed = true
		g.seq++
		old.seq = g.seq
		delete(b.msgs, m.id)
		b.msgs[old.id+"~moved"+strconv.FormatInt(old.seq, 10)] = &old
		m.id = "AAMkAG" + randomToken(24)
		m.folder = dest
		g.seq++
		m.seq = g.seq
		b.msgs[m.id] = m
		b.byImm[m.immutableID] = m
	}
	var out map[string]any
	if ok && dok {
		out = messageJSON(m, wantsImmutable(r))
	}
	g.mu.Unlock()
	switch {
	case !ok:
		s.itemNotFound(w, r)
	case !dok:
		s.graphError(w, r, 400, "ErrorInvalidIdMalformed", "Id is malformed.")
	default:
		writeJSON(w, 201, out)
	}
}

// handleDelete serves DELETE .../messages/{id}.
func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request, b *gmailbox, _ *Claims) {
	g := s.graph()
	g.mu.Lock()
	m, ok := findMessage(b, r.PathValue("id"))
	if ok {
		m.removed = true
		g.seq++
		m.seq = g.seq
	}
	g.mu.Unlock()
	if !ok {
		s.itemNotFound(w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleSendMail serves POST /users/{id}/sendMail with a base64 MIME body
// (Content-Type text/plain) or Graph's JSON message: 202, the message is
// put into the tenant's recipients' inboxes and, unless saveToSentItems is
// false, into the sender's Sent Items.
func (s *Server) handleSendMail(w http.ResponseWriter, r *http.Request) {
	if s.applyFault(w, r, "graph") {
		return
	}
	user := r.PathValue("user")
	c, ok := s.graphAuthSend(w, r, user)
	if !ok {
		return
	}
	_ = c
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxMIMERequest))
	if err != nil {
		// Microsoft: big mail goes through a draft and upload sessions; the
		// 4 MB request limit and this code are inferred
		s.graphError(w, r, 413, "ErrorRequestEntityTooLarge", "The request body exceeds the maximum size of 4 MB; attach large files with an upload session.")
		return
	}
	var raw []byte
	save := true
	if strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		raw, err = base64.StdEncoding.DecodeString(strings.TrimSpace(string(body)))
		if err != nil {
			s.graphError(w, r, 400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.")
			return
		}
	} else {
		var v struct {
			Message struct {
				Subject string `json:"subject"`
				Body    struct {
					Content string `json:"content"`
				} `json:"body"`
				ToRecipients []struct {
					EmailAddress struct {
						Address string `json:"address"`
					} `json:"emailAddress"`
				} `json:"toRecipients"`
			} `json:"message"`
			SaveToSentItems *bool `json:"saveToSentItems"`
		}
		if err := json.Unmarshal(body, &v); err != nil || len(v.Message.ToRecipients) == 0 {
			s.graphError(w, r, 400, "ErrorInvalidRecipients", "At least one recipient is not valid., A message can't be sent because it contains no recipients.")
			return
		}
		var to []string
		for _, t := range v.Message.ToRecipients {
			to = append(to, t.EmailAddress.Address)
		}
		raw = []byte("From: " + user + "\r\nTo: " + strings.Join(to, ", ") + "\r\nSubject: " + v.Message.Subject + "\r\n\r\n" + v.Message.Body.Content + "\r\n")
		if v.SaveToSentItems != nil {
			save = *v.SaveToSentItems
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		s.graphError(w, r, 400, "ErrorMimeContentInvalid", "The MIME content is not valid.")
		return
	}
	var rcpts []string
	for _, h := range []string{"To", "Cc", "Bcc"} {
		l, _ := msg.Header.AddressList(h)
		for _, a := range l {
			rcpts = append(rcpts, a.Address)
		}
	}
	if len(rcpts) == 0 {
		s.graphError(w, r, 400, "ErrorInvalidRecipients", "A message can't be sent because it contains no recipients.")
		return
	}
	for _, rc := range rcpts {
		if s.tenant.HasMailbox(rc) {
			s.deliverInbound(rc, raw)
		}
	}
	if save {
		g := s.graph()
		g.mu.Lock()
		b := g.box(user)
		fid, _ := b.folderID("sentitems")
		g.addLocked(b, &gmessage{raw: raw, isRead: true, folder: fid}, s.now())
		g.mu.Unlock()
	}
	w.WriteHeader(http.StatusAccepted)
}

// graphAuthSend checks a token for sendMail as user: Mail.Send (app) or
// Mail.Send / Mail.Send.Shared (delegated).
func (s *Server) graphAuthSend(w http.ResponseWriter, r *http.Request, user string) (*Claims, bool) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	c, err := s.VerifyAccessToken(raw)
	if !ok || err != nil || (c.Aud != "https://graph.microsoft.com" && c.Aud != GraphAppID) {
		s.graphError(w, r, 401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
		return nil, false
	}
	if !s.tenant.HasMailbox(user) {
		s.graphError(w, r, 404, "ErrorInvalidUser", fmt.Sprintf("The requested user '%s' is invalid.", user))
		return nil, false
	}
	if c.Idtyp == "app" {
		if !slices.Contains(c.Roles, "Mail.Send") {
			s.graphError(w, r, 403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
			return nil, false
		}
		s.tenant.mu.Lock()
		denied := s.tenant.graphDenied[strings.ToLower(user)+"|"+strings.ToLower(c.AppID)]
		s.tenant.mu.Unlock()
		if denied {
			s.graphError(w, r, 403, "ErrorAccessDenied", "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.")
			return nil, false
		}
		return c, true
	}
	if strings.EqualFold(c.Upn, user) && slices.Contains(c.Scopes(), "Mail.Send") {
		return c, true
	}
	s.tenant.mu.Lock()
	sendAs := s.tenant.hasPerm(user, c.Upn, "SendAs")
	s.tenant.mu.Unlock()
	if sendAs && slices.Contains(c.Scopes(), "Mail.Send.Shared") {
		return c, true
	}
	s.graphError(w, r, 403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
	return nil, false
}

func (s *Server) graphRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /v1.0/users/{user}/sendMail", s.handleSendMail)
	const base = "/v1.0/users/{user}"
	m.HandleFunc("GET "+base+"/mailFolders/{folder}/messages", s.graphHandler(false, s.handleList))
	m.HandleFunc("GET "+base+"/mailFolders/{folder}/messages/delta", s.graphHandler(false, s.handleDelta))
	m.HandleFunc("GET "+base+"/messages/{id}/$value", s.graphHandler(false, s.handleValue))
	m.HandleFunc("PATCH "+base+"/messages/{id}", s.graphHandler(true, s.handlePatch))
	m.HandleFunc("POST "+base+"/messages/{id}/move", s.graphHandler(true, s.handleMove))
	m.HandleFunc("DELETE "+base+"/messages/{id}", s.graphHandler(true, s.handleDelete))
	m.HandleFunc("POST "+base+"/messages", s.graphHandler(true, s.handleCreateDraft))
	m.HandleFunc("POST "+base+"/mailFolders/{folder}/messages", s.graphHandler(true, s.handleCreateDraft))
	m.HandleFunc("POST "+base+"/messages/{id}/attachments", s.graphHandler(true, s.handleAddAttachment))
	m.HandleFunc("POST "+base+"/messages/{id}/attachments/createUploadSession", s.graphHandler(true, s.handleCreateUploadSession))
	m.HandleFunc("POST "+base+"/messages/{id}/send", s.handleSendDraft)
	m.HandleFunc("PUT /api/v2.0/", s.handleUpload)
	m.HandleFunc("/v1.0/me/", s.handleMe)
}
