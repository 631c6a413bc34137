package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Device authorization grant (RFC 8628), for machines without a browser:
// the user opens VerificationURI elsewhere and types UserCode while we poll.

// DeviceGrantType is the grant_type of device-code polling (RFC 8628 §3.4).
const DeviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

// DefaultDeviceInterval is the polling interval when the server names none.
const DefaultDeviceInterval = 5 * time.Second

// slowDownStep is added to the interval on each slow_down (RFC 8628 §3.5).
const slowDownStep = 5 * time.Second

// DeviceAuth is what to show the user: where to go and which code to type.
// The device code itself stays inside the package.
type DeviceAuth struct {
	UserCode string
	// VerificationURI is the page where the code is entered (Google calls
	// it verification_url; both are read).
	VerificationURI string
	// VerificationURIComplete embeds the code, when the server offers it.
	VerificationURIComplete string
	// Message is the server's ready-made instruction (Microsoft).
	Message string
	// Expiry is when the codes stop working.
	Expiry time.Time
	// Interval is the polling interval the server asked for.
	Interval time.Duration

	deviceCode string
}

// deviceJSON is the device authorization response (RFC 8628 §3.2).
type deviceJSON struct {
	DeviceCode              string     `json:"device_code"`
	UserCode                string     `json:"user_code"`
	VerificationURI         string     `json:"verification_uri"`
	VerificationURL         string     `json:"verification_url"`
	VerificationURIComplete string     `json:"verification_uri_complete"`
	ExpiresIn               flexNumber `json:"expires_in"`
	Interval                flexNumber `json:"interval"`
	Message                 string     `json:"message"`
	errorJSON
}

// DeviceLogin runs the device flow: it asks for a device code, calls prompt
// with what the user must do, then polls the token endpoint at the asked
// interval (slower after slow_down) until the user approves, declines, the
// code expires (ErrDeviceCodeExpired) or ctx ends. The token normally
// carries a refresh token, which the caller stores (Manager.DeviceLogin
// does).
func DeviceLogin(ctx context.Context, p *Profile, prompt func(DeviceAuth)) (*Token, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return direct().deviceLogin(ctx, p, prompt, sleepCtx)
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r requester) deviceLogin(ctx context.Context, p *Profile, prompt func(DeviceAuth), sleep func(context.Context, time.Duration) error) (*Token, error) {
	auth, err := r.deviceAuthorize(ctx, p)
	if err != nil {
		return nil, err
	}
	if prompt != nil {
		prompt(*auth)
	}
	interval := auth.Interval
	for {
		if err := sleep(ctx, interval); err != nil {
			return nil, fmt.Errorf("oauth: device sign-in: %w", err)
		}
		if !r.now().Before(auth.Expiry) {
			return nil, ErrDeviceCodeExpired
		}
		form := url.Values{"grant_type": {DeviceGrantType}, "device_code": {auth.deviceCode}}
		tok, err := r.tokenRequest(ctx, p, form)
		if err == nil {
			return tok, nil
		}
		var oe *Error
		if !errors.As(err, &oe) {
			return nil, err
		}
		switch {
		case oe.Code == "authorization_pending":
		case oe.Code == "slow_down":
			interval += slowDownStep
		case oe.Code == "expired_token":
			return nil, fmt.Errorf("%w: %w", ErrDeviceCodeExpired, oe)
		case oe.Temporary():
			interval = max(interval, oe.RetryAfter)
		default:
			return nil, err
		}
	}
}

// deviceAuthorize asks the device authorization endpoint for codes.
func (r requester) deviceAuthorize(ctx context.Context, p *Profile) (*DeviceAuth, error) {
	e, err := p.Endpoints()
	if err != nil {
		return nil, err
	}
	if e.Device == "" {
		return nil, fmt.Errorf("oauth: profile %s: no device authorization endpoint", p.Name)
	}
	form := url.Values{}
	if err := setScope(p, form, p.Scopes); err != nil {
		return nil, err
	}
	status, header, body, err := r.postForm(ctx, p, e.Device, form, false)
	if err != nil {
		return nil, err
	}
	now := r.now()
	var dj deviceJSON
	jsonErr := json.Unmarshal(body, &dj)
	if status < 200 || status > 299 || dj.Error != "" {
		oe := newError(status, header, body, jsonErr == nil, &dj.errorJSON, now)
		oe.Endpoint = "devicecode"
		return nil, oe
	}
	if jsonErr != nil || dj.DeviceCode == "" || dj.UserCode == "" {
		return nil, fmt.Errorf("oauth: device authorization answer lacks device_code or user_code (%s): %w", describeBody(header, body), ErrMalformedResponse)
	}
	a := &DeviceAuth{
		UserCode:                dj.UserCode,
		VerificationURI:         dj.VerificationURI,
		VerificationURIComplete: dj.VerificationURIComplete,
		Message:                 dj.Message,
		Interval:                DefaultDeviceInterval,
		Expiry:                  now.Add(15 * time.Minute),
		deviceCode:              dj.DeviceCode,
	}
	if a.VerificationURI == "" {
		a.VerificationURI = dj.VerificationURL
	}
	if dj.Interval.Set && dj.Interval.Value > 0 {
		a.Interval = seconds(dj.Interval.Value)
	}
	if dj.ExpiresIn.Set && dj.ExpiresIn.Value > 0 {
		a.Expiry = now.Add(seconds(dj.ExpiresIn.Value))
	}
	return a, nil
}
