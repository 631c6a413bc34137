package graph

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	// DirectLimit is the largest message sent in one sendMail request: its
	// base64 form stays under Graph's 4 MB request limit. Larger messages
	// go through a draft and attachment uploads.
	DirectLimit = 3_000_000
	// uploadThreshold: attachments from this size on go through an upload
	// session (Microsoft: 3 MB to 150 MB); smaller ones are POSTed whole.
	uploadThreshold = 3 << 20
	// uploadChunk is the size of each PUT to an upload URL: under 4 MB as
	// Microsoft asks, and a multiple of 320 KiB.
	uploadChunk = 10 * 320 << 10
)

// Send sends a MIME message as user. Up to DirectLimit bytes it is one
// sendMail with the original bytes. A larger message is sent the way
// Microsoft documents for large attachments: its attachments are cut out
// (largest first, until the rest fits in one request), the rest becomes a
// draft created from MIME, each attachment is added (POSTed under 3 MB,
// uploaded in ranges through an upload session from 3 MB on), and the
// draft is sent. That path needs Mail.ReadWrite besides Mail.Send, and
// Exchange always keeps the sent draft in Sent Items. If any step fails
// the draft is deleted, so a retry starts clean.
func (c *Client) Send(ctx context.Context, user string, raw []byte) error {
	if len(raw) <= DirectLimit {
		return c.SendMIME(ctx, user, raw)
	}
	rest, atts, err := SplitAttachments(raw, DirectLimit)
	if err != nil {
		return err
	}
	id, err := c.createDraft(ctx, user, rest)
	if err != nil {
		return err
	}
	if err := c.fillAndSend(ctx, user, id, atts); err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = c.Delete(dctx, user, id)
		return err
	}
	return nil
}

func (c *Client) fillAndSend(ctx context.Context, user, id string, atts []Attachment) error {
	for _, a := range atts {
		var err error
		if len(a.Data) < uploadThreshold {
			err = c.addAttachment(ctx, user, id, a)
		} else {
			err = c.upload(ctx, user, id, a)
		}
		if err != nil {
			return fmt.Errorf("graph: attachment %q (%d bytes): %w", a.Name, len(a.Data), err)
		}
	}
	resp, err := c.do(ctx, user, http.MethodPost, c.userURL(user)+"/messages/"+url.PathEscape(id)+"/send", []byte{}, nil)
	if err != nil {
		return withOp(err, "send")
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

func withOp(err error, op string) error {
	var ge *Error
	if errors.As(err, &ge) {
		ge.Op = op
	}
	return err
}

// createDraft makes a draft from MIME and returns its id.
func (c *Client) createDraft(ctx context.Context, user string, raw []byte) (string, error) {
	body := []byte(base64.StdEncoding.EncodeToString(raw))
	resp, err := c.doRaw(ctx, user, http.MethodPost, c.userURL(user)+"/messages", body, "text/plain")
	if err != nil {
		return "", withOp(err, "draft")
	}
	defer resp.Body.Close()
	var v struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&v); err != nil || v.ID == "" {
		return "", fmt.Errorf("graph: create draft: no id in the answer (%v)", err)
	}
	return v.ID, nil
}

func (c *Client) addAttachment(ctx context.Context, user, id string, a Attachment) error {
	b, err := json.Marshal(map[string]any{"@odata.type": "#microsoft.graph.fileAttachment", "name": a.Name,
		"contentType": a.ContentType, "contentBytes": a.Data, "isInline": a.Inline, "contentId": a.ContentID})
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, user, http.MethodPost, c.userURL(user)+"/messages/"+url.PathEscape(id)+"/attachments", b, nil)
	if err != nil {
		return withOp(err, "draft")
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// upload sends a large attachment through an upload session.
func (c *Client) upload(ctx context.Context, user, id string, a Attachment) error {
	item := map[string]any{"attachmentType": "file", "name": a.Name, "size": len(a.Data), "contentType": a.ContentType}
	if a.Inline {
		item["isInline"], item["contentId"] = true, a.ContentID
	}
	b, _ := json.Marshal(map[string]any{"AttachmentItem": item})
	resp, err := c.do(ctx, user, http.MethodPost, c.userURL(user)+"/messages/"+url.PathEscape(id)+"/attachments/createUploadSession", b, nil)
	if err != nil {
		return withOp(err, "draft")
	}
	var s struct {
		UploadURL string `json:"uploadUrl"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&s)
	resp.Body.Close()
	if err != nil || s.UploadURL == "" {
		return fmt.Errorf("graph: createUploadSession: no uploadUrl in the answer (%v)", err)
	}
	for off := 0; off < len(a.Data); {
		end := min(off+uploadChunk, len(a.Data))
		next, err := c.putRange(ctx, user, s.UploadURL, a.Data, off, end)
		if err != nil {
			return err
		}
		off = next
	}
	return nil
}

// putRange PUTs data[off:end] to a pre-authenticated upload URL (no
// Authorization header) and returns the next offset Graph expects.
func (c *Client) putRange(ctx context.Context, user, uploadURL string, data []byte, off, end int) (int, error) {
	resp, err := c.send(ctx, user, http.MethodPut, uploadURL, data[off:end], "application/octet-stream",
		map[string]string{"Content-Range": fmt.Sprintf("bytes %d-%d/%d", off, end-1, len(data))}, false)
	if err != nil {
		return 0, withOp(err, "upload")
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusCreated {
		return len(data), nil
	}
	var v struct {
		Next []string `json:"nextExpectedRanges"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&v); err != nil || len(v.Next) == 0 {
		return end, nil
	}
	n, perr := strconv.Atoi(strings.TrimSuffix(strings.SplitN(v.Next[0], "-", 2)[0], "-"))
	if perr != nil || n <= off || n > len(data) {
		return 0, fmt.Errorf("graph: upload: unexpected nextExpectedRanges %q", v.Next)
	}
	return n, nil
}

// FindSent returns the ids of the messages in user's Sent Items with this
// Message-ID (angle brackets included, as in the header). It is how a
// sender that crashed between Graph's 202 and its own record finds out
// whether the message went.
func (c *Client) FindSent(ctx context.Context, user, messageID string) ([]string, error) {
	q := url.Values{}
	q.Set("$filter", "internetMessageId eq '"+strings.ReplaceAll(messageID, "'", "''")+"'")
	q.Set("$select", "id")
	resp, err := c.do(ctx, user, http.MethodGet, c.userURL(user)+"/mailFolders/sentitems/messages?"+q.Encode(), nil, nil)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("graph: sent items: %w", err)
	}
	p, err := ParsePage(b)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, m := range p.Value {
		ids = append(ids, m.ID)
	}
	return ids, nil
}

// ErrMessageTooLarge wraps the refusals of a message that cannot be sent
// even through the large-message path (its body without attachments is
// over DirectLimit).
var ErrMessageTooLarge = errors.New("message too large for Graph")

// Sender sends as one mailbox: what an outbox needs from Graph.
type Sender struct {
	Client *Client
	User   string
	// SaveToSentItems false removes the copy Exchange keeps in Sent Items
	// after each send (MIME sendMail has no switch for it); that needs
	// Mail.ReadWrite.
	SaveToSentItems bool
	Log             *slog.Logger
	// SentPoll is how long to look for the Sent Items copy to remove;
	// Exchange files it a moment after the 202. Default 10 s.
	SentPoll time.Duration
}

// Send sends raw (see Client.Send).
func (s *Sender) Send(ctx context.Context, raw []byte) error {
	if err := s.Client.Send(ctx, s.User, raw); err != nil {
		return err
	}
	if !s.SaveToSentItems {
		s.dropSentCopy(ctx, raw)
	}
	return nil
}

func (s *Sender) dropSentCopy(ctx context.Context, raw []byte) {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	id := headerMessageID(raw)
	if id == "" {
		log.Warn("graph: save_to_sent_items is false, but the message has no Message-ID to find its Sent Items copy by")
		return
	}
	poll := s.SentPoll
	if poll <= 0 {
		poll = 10 * time.Second
	}
	deadline := time.Now().Add(poll)
	for {
		ids, err := s.Client.FindSent(ctx, s.User, id)
		if err != nil {
			log.Warn("graph: save_to_sent_items is false, but the Sent Items copy could not be looked up", "message_id", id, "err", err, "fix", hintOf(err))
			return
		}
		for _, mid := range ids {
			if err := s.Client.Delete(ctx, s.User, mid); err != nil {
				log.Warn("graph: save_to_sent_items is false, but the Sent Items copy could not be deleted", "message_id", id, "err", err, "fix", hintOf(err))
			}
		}
		if len(ids) > 0 || time.Now().After(deadline) {
			if len(ids) == 0 {
				log.Warn("graph: save_to_sent_items is false, but no Sent Items copy appeared to delete", "message_id", id)
			}
			return
		}
		if sleep(ctx, time.Second) != nil {
			return
		}
	}
}

func hintOf(err error) string {
	var ge *Error
	if errors.As(err, &ge) {
		return ge.Hint()
	}
	return ""
}

// Sent reports whether a message with this Message-ID is in Sent Items;
// known is false when that cannot be told (no copies kept, no permission
// to read them).
func (s *Sender) Sent(ctx context.Context, messageID string) (sent, known bool) {
	if !s.SaveToSentItems {
		return false, false
	}
	ids, err := s.Client.FindSent(ctx, s.User, messageID)
	if err != nil {
		return false, false
	}
	return len(ids) > 0, true
}

// Permanent says whether Graph refused the message itself (malformed,
// no recipients, too large), as opposed to the sender's setup
// (permissions, policies, tokens) or a passing condition: only the former
// fails a queued message; the others are retried.
func (s *Sender) Permanent(err error) bool {
	if errors.Is(err, ErrMessageTooLarge) {
		return true
	}
	var ge *Error
	if !errors.As(err, &ge) {
		return false
	}
	switch ge.Status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// headerMessageID is the Message-ID header of raw, brackets kept.
func headerMessageID(raw []byte) string {
	hdrEnd, _ := headerEnd(raw, 0)
	if hdrEnd < 0 {
		return ""
	}
	h, err := parseHeader(raw[:hdrEnd])
	if err != nil {
		return ""
	}
	return strings.TrimSpace(h.Get("Message-Id"))
}
