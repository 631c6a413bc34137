package sink

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mailgate/mailgate/internal/redact"
)

// WebhookOptions configure NewWebhook.
type WebhookOptions struct {
	URL    string
	Secret string // HMAC-SHA256 key; empty sends no signature
	// Headers are added to every request (e.g. an API key).
	Headers map[string]string
	// Timeout bounds one attempt; default 30 s.
	Timeout time.Duration
	// MaxAttempts bounds the attempts per message; default 8.
	MaxAttempts int
	// Backoff is the first retry delay, doubled up to 1 min, with jitter;
	// a Retry-After answer wins. Default 1 s.
	Backoff time.Duration
	// Client carries TLS settings (verification on); nil uses a default.
	Client *http.Client
}

// LogValue redacts the secret and the URL's password and query values.
func (o WebhookOptions) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", redact.URL(o.URL)), slog.String("secret", secretShown(o.Secret)),
		slog.Duration("timeout", o.Timeout), slog.Int("max_attempts", o.MaxAttempts))
}

// String redacts the secret and the URL's password and query values.
func (o WebhookOptions) String() string {
	return fmt.Sprintf("webhook %s (secret %s)", redact.URL(o.URL), secretShown(o.Secret))
}

// secretShown is what logs show of a secret: *** when it is set.
func secretShown(s string) string {
	if s == "" {
		return ""
	}
	return "***"
}

// Webhook POSTs each message to an application as message/rfc822.
//
// Each request carries:
//
//	Content-Type: message/rfc822
//	Idempotency-Key: <key>            (also X-Mailgate-Key)
//	X-Mailgate-Mailbox: <mailbox name>
//	X-Mailgate-Size: <bytes>
//	X-Mailgate-Received-At: <RFC 3339, when the server knows it>
//	X-Mailgate-Timestamp: <Unix seconds of this attempt>
//	X-Mailgate-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// Any 2xx accepts the message; 409 Conflict means the application already
// has it (accepted, reported as a duplicate); 408, 429, 5xx and network
// errors are retried with exponential backoff honouring Retry-After; other
// 4xx are permanent.
//
// A receiver verifies a request like this (Go; any language with HMAC works):
//
//	body, _ := io.ReadAll(r.Body)
//	mac := hmac.New(sha256.New, secret)
//	mac.Write([]byte(r.Header.Get("X-Mailgate-Timestamp") + "."))
//	mac.Write(body)
//	ok := hmac.Equal([]byte(r.Header.Get("X-Mailgate-Signature")), []byte("sha256="+hex.EncodeToString(mac.Sum(nil))))
//
// It should also reject timestamps far from its clock (replays) and store
// the Idempotency-Key with the message, answering 409 for a key it already
// has, so that a repeated delivery is recognised.
type Webhook struct {
	o WebhookOptions
}

// NewWebhook returns a webhook sink.
func NewWebhook(o WebhookOptions) (*Webhook, error) {
	if o.URL == "" {
		return nil, errors.New("sink: webhook: no url")
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	return &Webhook{o: o}, nil
}

// Begin spools the message to a temporary file.
func (w *Webhook) Begin(ctx context.Context, m Message) (Delivery, error) {
	s, err := newSpool()
	if err != nil {
		return nil, &Error{Sink: "webhook", Err: err}
	}
	return &webhookDelivery{spool: s, w: w, m: m}, nil
}

// Sync returns at once: a webhook delivery is done when the application
// answered.
func (w *Webhook) Sync(context.Context) error { return nil }

// Close does nothing.
func (w *Webhook) Close() error { return nil }

type webhookDelivery struct {
	*spool
	w *Webhook
	m Message
}

// Sign is the X-Mailgate-Signature value for body sent at timestamp.
func Sign(secret, timestamp string, body io.Reader) (string, error) {
	mac := hmac.New(sha256.New, []byte(secret))
	io.WriteString(mac, timestamp+".")
	if _, err := io.Copy(mac, body); err != nil {
		return "", err
	}
	return "sha256=" + hex.EncodeToString(mac.Sum(nil)), nil
}

func (d *webhookDelivery) Commit(ctx context.Context) (Receipt, error) {
	defer d.Abort()
	if d.err != nil {
		return Receipt{}, &Error{Sink: "webhook", Err: d.err}
	}
	o := d.w.o
	delay := o.Backoff
	var last error
	for attempt := 1; attempt <= o.MaxAttempts; attempt++ {
		rc, retryAfter, err := d.post(ctx)
		if err == nil {
			return rc, nil
		}
		last = err
		var se *Error
		if errors.As(err, &se) && se.Permanent {
			return Receipt{}, err
		}
		if attempt == o.MaxAttempts {
			break
		}
		wait := delay/2 + rand.N(delay/2+1)
		if retryAfter > 0 {
			wait = retryAfter
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return Receipt{}, &Error{Sink: "webhook", Err: ctx.Err()}
		case <-t.C:
		}
		delay = min(2*delay, time.Minute)
	}
	return Receipt{}, &Error{Sink: "webhook", Err: fmt.Errorf("gave up after %d attempts: %w", o.MaxAttempts, last)}
}

// post makes one attempt.
func (d *webhookDelivery) post(ctx context.Context) (Receipt, time.Duration, error) {
	o := d.w.o
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	if err := d.rewind(); err != nil {
		return Receipt{}, 0, &Error{Sink: "webhook", Err: err}
	}
	var sig string
	if o.Secret != "" {
		var err error
		if sig, err = Sign(o.Secret, ts, d.f); err != nil {
			return Receipt{}, 0, &Error{Sink: "webhook", Err: err}
		}
		if err := d.rewind(); err != nil {
			return Receipt{}, 0, &Error{Sink: "webhook", Err: err}
		}
	}
	actx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, o.URL, io.NopCloser(d.f))
	if err != nil {
		return Receipt{}, 0, &Error{Sink: "webhook", Permanent: true, Err: err}
	}
	req.ContentLength = d.n
	for k, v := range o.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "message/rfc822")
	req.Header.Set("Idempotency-Key", d.m.Key)
	req.Header.Set("X-Mailgate-Key", d.m.Key)
	req.Header.Set("X-Mailgate-Mailbox", d.m.Mailbox)
	req.Header.Set("X-Mailgate-Size", strconv.FormatInt(d.n, 10))
	req.Header.Set("X-Mailgate-Timestamp", ts)
	if !d.m.ReceivedAt.IsZero() {
		req.Header.Set("X-Mailgate-Received-At", d.m.ReceivedAt.UTC().Format(time.RFC3339))
	}
	if sig != "" {
		req.Header.Set("X-Mailgate-Signature", sig)
	}
	resp, err := o.Client.Do(req)
	if err != nil {
		var ue *url.Error // it names the URL, whose query may carry a token
		if errors.As(err, &ue) {
			ue.URL = redact.URL(ue.URL)
		}
		return Receipt{}, 0, &Error{Sink: "webhook", Err: err}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	ref := "HTTP " + strconv.Itoa(resp.StatusCode)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return Receipt{Ref: ref}, 0, nil
	case resp.StatusCode == http.StatusConflict:
		return Receipt{Duplicate: true, Ref: ref}, 0, nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return Receipt{}, retryAfter(resp.Header.Get("Retry-After")), &Error{Sink: "webhook", Err: fmt.Errorf("%s answered %s", redact.URL(o.URL), resp.Status)}
	default:
		return Receipt{}, 0, &Error{Sink: "webhook", Permanent: true, Err: fmt.Errorf("%s answered %s", redact.URL(o.URL), resp.Status)}
	}
}

// retryAfter reads Retry-After in seconds or as an HTTP date (capped at
// 10 minutes).
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	return max(0, min(d, 10*time.Minute))
}
