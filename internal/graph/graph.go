// Package graph is mailgate's Microsoft Graph mail client, on net/http and
// encoding/json: delta queries with paging, MIME download, isRead, move,
// delete. It follows Graph's rules for a well-behaved client: Retry-After
// on 429 and 503 (with a bounded number of attempts), at most four
// requests in flight per mailbox (Exchange's MailboxConcurrency limit), and
// one token refresh when Graph answers 401. Immutable ids are requested
// (Prefer: IdType="ImmutableId") so that a message keeps its id when moved.
//
// The generated Graph SDK is not used: it takes minutes and gigabytes to
// compile for the handful of calls mail needs.
package graph

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultEndpoint is the public cloud's Graph.
const DefaultEndpoint = "https://graph.microsoft.com"

// Options configure New.
type Options struct {
	Endpoint   string // default DefaultEndpoint
	HTTPClient *http.Client
	// Bearer gives the access tokens (oauth.Manager.Bearer); its
	// Invalidate is called once when Graph answers 401.
	Bearer Bearer
	// MaxInFlight per mailbox; default 4.
	MaxInFlight int
	// MaxAttempts per request for 429/503; default 6.
	MaxAttempts int
}

// Bearer is the token hook the client needs: Token returns a valid access
// token, Invalidate drops the cached one after a 401 (oauth.Bearer).
type Bearer interface {
	Token(ctx context.Context) (string, error)
	Invalidate()
}

// BearerFunc adapts a function to Bearer, with nothing to invalidate (a
// token that is not cached, in tests).
type BearerFunc func(ctx context.Context) (string, error)

// Token calls f(ctx).
func (f BearerFunc) Token(ctx context.Context) (string, error) { return f(ctx) }

// Invalidate does nothing.
func (BearerFunc) Invalidate() {}

// Client talks to Graph for one token source.
type Client struct {
	o     Options
	mu    sync.Mutex
	slots map[string]chan struct{}
}

// New returns a client.
func New(o Options) *Client {
	if o.Endpoint == "" {
		o.Endpoint = DefaultEndpoint
	}
	o.Endpoint = strings.TrimRight(o.Endpoint, "/")
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 2 * time.Minute}
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 4
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 6
	}
	return &Client{o: o, slots: map[string]chan struct{}{}}
}

// Error is Graph's error answer.
type Error struct {
	Op      string // "send" (sendMail, send a draft), "draft" (create, attach), "upload"; "" for reading
	Status  int
	Code    string
	Message string
	// RetryAfter is the wait the answer's Retry-After header asked for (0:
	// none).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("graph: HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// Temporary reports throttling and server errors.
func (e *Error) Temporary() bool { return e.Status == 429 || e.Status >= 500 }

// Throttled reports whether Graph asked the caller to slow down (429, 503)
// and the wait it named in Retry-After (0: none).
func (e *Error) Throttled() (time.Duration, bool) {
	return e.RetryAfter, e.Status == 429 || e.Status == 503
}

// Hint says what to change for the refusals an administrator can fix.
func (e *Error) Hint() string {
	switch {
	case e.Status == 403 && strings.Contains(e.Message, "AccessPolicy"):
		return "an application access policy blocks this app from this mailbox: Exchange Online PowerShell Get-ApplicationAccessPolicy / New-ApplicationAccessPolicy -AccessRight RestrictAccess with a group containing the mailbox (or RBAC for Applications)"
	case e.Status == 403 && e.Op == "draft":
		return "messages over 3 MB are sent through a draft with attachment uploads, which needs Mail.ReadWrite besides Mail.Send: Entra admin center › App registrations › API permissions › Microsoft Graph › Application permissions › Mail.ReadWrite, then Grant admin consent (or send smaller messages)"
	case e.Status == 403 && e.Op == "send":
		return "the app may not send as this mailbox: Entra admin center › App registrations › API permissions › Microsoft Graph › Application permissions › Mail.Send, then Grant admin consent (and check application access policies: Get-ApplicationAccessPolicy)"
	case e.Status == 403:
		return "the token lacks the permission: Entra admin center › App registrations › API permissions › Microsoft Graph › Application permissions › Mail.ReadWrite (reading) or Mail.Send (sending), then Grant admin consent"
	case e.Status == 401:
		return "the token was refused: the profile must request https://graph.microsoft.com/.default"
	case e.Code == "ErrorInvalidUser":
		return "no such mailbox: check username"
	}
	return ""
}

// ErrSyncStateNotFound is a stale delta link (HTTP 410): start over.
var ErrSyncStateNotFound = errors.New("graph: delta state not found (410): full resync needed")

func (c *Client) slot(ctx context.Context, user string) (func(), error) {
	c.mu.Lock()
	ch, ok := c.slots[strings.ToLower(user)]
	if !ok {
		ch = make(chan struct{}, c.o.MaxInFlight)
		c.slots[strings.ToLower(user)] = ch
	}
	c.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// do sends one request with the retry rules; the caller closes the body of
// a 2xx response.
func (c *Client) do(ctx context.Context, user, method, rawURL string, body []byte, hdr map[string]string) (*http.Response, error) {
	ct := ""
	if body != nil {
		ct = "application/json"
	}
	return c.send(ctx, user, method, rawURL, body, ct, hdr, true)
}

// doRaw is do with a given content type.
func (c *Client) doRaw(ctx context.Context, user, method, rawURL string, body []byte, contentType string) (*http.Response, error) {
	return c.send(ctx, user, method, rawURL, body, contentType, nil, true)
}

// send sends one request within user's in-flight limit: network failures
// and 429/503/504 retried (Retry-After honoured), a 401 retried once with a
// renewed token. authorize false is for pre-authenticated URLs (an upload
// session's), which take no token.
func (c *Client) send(ctx context.Context, user, method, rawURL string, body []byte, contentType string, hdr map[string]string, authorize bool) (*http.Response, error) {
	release, err := c.slot(ctx, user)
	if err != nil {
		return nil, err
	}
	defer release()
	renewed := false
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, rawURL, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if authorize {
			tok, err := c.o.Bearer.Token(ctx)
			if err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Prefer", `IdType="ImmutableId"`)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		for k, v := range hdr {
			req.Header.Add(k, v)
		}
		resp, err := c.o.HTTPClient.Do(req)
		if err != nil {
			if attempt < c.o.MaxAttempts && ctx.Err() == nil {
				if werr := sleep(ctx, time.Duration(attempt)*500*time.Millisecond); werr != nil {
					return nil, werr
				}
				continue
			}
			return nil, fmt.Errorf("graph: %s %s: %w", method, redactURL(rawURL), err)
		}
		if resp.StatusCode < 300 {
			return resp, nil
		}
		ge := readError(resp)
		switch {
		case resp.StatusCode == 401 && authorize && !renewed:
			renewed = true
			c.o.Bearer.Invalidate()
			continue
		case (resp.StatusCode == 429 || resp.StatusCode == 503 || resp.StatusCode == 504) && attempt < c.o.MaxAttempts:
			wait := retryAfter(resp.Header.Get("Retry-After"))
			if wait == 0 {
				wait = time.Duration(attempt) * time.Second
			}
			if werr := sleep(ctx, wait); werr != nil {
				return nil, werr
			}
			continue
		case resp.StatusCode == 410:
			return nil, ErrSyncStateNotFound
		}
		return nil, ge
	}
}

func readError(resp *http.Response) *Error {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	var v struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &v) == nil && v.Error.Code != "" {
		e.Code, e.Message = v.Error.Code, v.Error.Message
	} else {
		e.Message = strings.TrimSpace(string(b))
	}
	return e
}

func retryAfter(v string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return min(time.Duration(n)*time.Second, 5*time.Minute)
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// redactURL drops the query (delta and skip tokens) from a URL for errors.
func redactURL(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i] + "?…"
	}
	return s
}

func (c *Client) userURL(user string) string {
	return c.o.Endpoint + "/v1.0/users/" + url.PathEscape(user)
}

// Message is what a delta page says about a message.
type Message struct {
	ID                string    `json:"id"`
	InternetMessageID string    `json:"internetMessageId"`
	IsRead            bool      `json:"isRead"`
	ReceivedDateTime  time.Time `json:"receivedDateTime"`
	Removed           *struct {
		Reason string `json:"reason"`
	} `json:"@removed"`
}

type page struct {
	Value     []Message `json:"value"`
	NextLink  string    `json:"@odata.nextLink"`
	DeltaLink string    `json:"@odata.deltaLink"`
}

// ParsePage decodes a delta or list page.
func ParsePage(b []byte) (*page, error) {
	var p page
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("graph: page: %w", err)
	}
	return &p, nil
}

// Delta follows a folder's delta from link ("" = a first, full sync) to
// its new delta link. Pages of pageSize are asked for (Prefer:
// odata.maxpagesize).
func (c *Client) Delta(ctx context.Context, user, folder, link string, pageSize int) ([]Message, string, error) {
	if link == "" {
		link = c.userURL(user) + "/mailFolders/" + url.PathEscape(folder) + "/messages/delta?$select=id,internetMessageId,isRead,receivedDateTime"
	}
	hdr := map[string]string{}
	if pageSize > 0 {
		hdr["Prefer"] = "odata.maxpagesize=" + strconv.Itoa(pageSize)
	}
	var out []Message
	for {
		resp, err := c.do(ctx, user, http.MethodGet, link, nil, hdr)
		if err != nil {
			return nil, "", err
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
		resp.Body.Close()
		if err != nil {
			return nil, "", fmt.Errorf("graph: delta: %w", err)
		}
		p, err := ParsePage(b)
		if err != nil {
			return nil, "", err
		}
		out = append(out, p.Value...)
		switch {
		case p.NextLink != "":
			link = p.NextLink
		case p.DeltaLink != "":
			return out, p.DeltaLink, nil
		default:
			return nil, "", errors.New("graph: delta page without nextLink or deltaLink")
		}
	}
}

// MIME streams a message's raw bytes; the caller closes the reader.
func (c *Client) MIME(ctx context.Context, user, id string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, user, http.MethodGet, c.userURL(user)+"/messages/"+url.PathEscape(id)+"/$value", nil, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

func (c *Client) simple(ctx context.Context, user, method, path string, body any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return err
		}
	}
	resp, err := c.do(ctx, user, method, c.userURL(user)+path, b, nil)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// MarkRead sets isRead.
func (c *Client) MarkRead(ctx context.Context, user, id string) error {
	return c.simple(ctx, user, http.MethodPatch, "/messages/"+url.PathEscape(id), map[string]bool{"isRead": true})
}

// Move moves a message to a folder (well-known name or id).
func (c *Client) Move(ctx context.Context, user, id, folder string) error {
	return c.simple(ctx, user, http.MethodPost, "/messages/"+url.PathEscape(id)+"/move", map[string]string{"destinationId": folder})
}

// Delete deletes a message.
func (c *Client) Delete(ctx context.Context, user, id string) error {
	return c.simple(ctx, user, http.MethodDelete, "/messages/"+url.PathEscape(id), nil)
}

// SendMIME sends raw (the original bytes, base64 in a text/plain body, as
// Graph's sendMail takes MIME) as user; Graph answers 202.
func (c *Client) SendMIME(ctx context.Context, user string, raw []byte) error {
	body := []byte(base64.StdEncoding.EncodeToString(raw))
	resp, err := c.doRaw(ctx, user, http.MethodPost, c.userURL(user)+"/sendMail", body, "text/plain")
	var ge *Error
	if errors.As(err, &ge) {
		ge.Op = "send"
	}
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}
