package oauth

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

var parseNow = time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)

func jsonHeader() http.Header {
	return http.Header{"Content-Type": {"application/json; charset=utf-8"}}
}

func TestParseTokenResponse(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		header   http.Header
		body     string
		wantTok  func(t *testing.T, tok *Token)
		wantErr  error
		wantCode string
	}{
		{
			name:   "microsoft v2 client credentials",
			status: 200,
			body:   `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAi.abc.def"}`,
			wantTok: func(t *testing.T, tok *Token) {
				if tok.AccessToken != "eyJ0eXAi.abc.def" || tok.TokenType != "Bearer" {
					t.Errorf("token = %q %q", tok.AccessToken, tok.TokenType)
				}
				if got := tok.Expiry.Sub(parseNow); got != 3599*time.Second {
					t.Errorf("lifetime %s, want 3599s", got)
				}
				if got := tok.ExtExpiry.Sub(parseNow); got != 3599*time.Second {
					t.Errorf("ext lifetime %s", got)
				}
				if tok.RefreshToken != "" || !tok.RefreshAfter.IsZero() {
					t.Errorf("unexpected refresh fields: %q %v", tok.RefreshToken, tok.RefreshAfter)
				}
				if !tok.IssuedAt.Equal(parseNow) || tok.Lifetime() != 3599*time.Second {
					t.Errorf("issued %v lifetime %v", tok.IssuedAt, tok.Lifetime())
				}
			},
		},
		{
			name:   "microsoft v2 delegated with refresh token, id token and an unusual lifetime",
			status: 200,
			body: `{"access_token":"at","token_type":"Bearer","expires_in":5123,"scope":"https://outlook.office.com/IMAP.AccessAsUser.All",` +
				`"refresh_token":"rt-1","id_token":"idt","refresh_in":2561}`,
			wantTok: func(t *testing.T, tok *Token) {
				if tok.Lifetime() != 5123*time.Second {
					t.Errorf("lifetime %s, want 5123s (honour any expires_in)", tok.Lifetime())
				}
				if tok.RefreshToken != "rt-1" || tok.IDToken != "idt" {
					t.Errorf("rt %q id %q", tok.RefreshToken, tok.IDToken)
				}
				if got := tok.Scopes(); len(got) != 1 || got[0] != "https://outlook.office.com/IMAP.AccessAsUser.All" {
					t.Errorf("scopes %v", got)
				}
				if got := tok.RefreshAfter.Sub(parseNow); got != 2561*time.Second {
					t.Errorf("refresh_in %s", got)
				}
			},
		},
		{
			name:   "microsoft v1 with string numerics",
			status: 200,
			body: `{"access_token":"at1","token_type":"Bearer","expires_in":"3599","ext_expires_in":"3599",` +
				`"expires_on":"1795395599","not_before":"1795392000","resource":"https://outlook.office365.com"}`,
			wantTok: func(t *testing.T, tok *Token) {
				if tok.Lifetime() != 3599*time.Second {
					t.Errorf("lifetime %s", tok.Lifetime())
				}
				if tok.Resource != "https://outlook.office365.com" {
					t.Errorf("resource %q", tok.Resource)
				}
			},
		},
		{
			name:   "expires_on only",
			status: 200,
			body:   fmt.Sprintf(`{"access_token":"at","token_type":"Bearer","expires_on":"%d"}`, parseNow.Add(20*time.Minute).Unix()),
			wantTok: func(t *testing.T, tok *Token) {
				if !tok.Expiry.Equal(parseNow.Add(20 * time.Minute)) {
					t.Errorf("expiry %v", tok.Expiry)
				}
			},
		},
		{
			name:   "expires_in of 20 seconds",
			status: 200,
			body:   `{"access_token":"at","token_type":"Bearer","expires_in":20}`,
			wantTok: func(t *testing.T, tok *Token) {
				if tok.Lifetime() != 20*time.Second {
					t.Errorf("lifetime %s", tok.Lifetime())
				}
			},
		},
		{
			name:   "google",
			status: 200,
			body:   `{"access_token":"ya29.a0Af","expires_in":3599,"scope":"https://mail.google.com/","token_type":"Bearer"}`,
			wantTok: func(t *testing.T, tok *Token) {
				if tok.AccessToken != "ya29.a0Af" || tok.Scope != "https://mail.google.com/" {
					t.Errorf("token %v", tok)
				}
			},
		},
		{
			name:   "float expires_in and missing token_type",
			status: 200,
			body:   `{"access_token":"at","expires_in":3600.0}`,
			wantTok: func(t *testing.T, tok *Token) {
				if tok.Lifetime() != time.Hour || tok.TokenType != "Bearer" {
					t.Errorf("lifetime %s type %q", tok.Lifetime(), tok.TokenType)
				}
			},
		},
		{
			name:   "form-encoded answer",
			status: 200,
			header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
			body:   "access_token=formtok&token_type=bearer&expires_in=600&refresh_token=frt",
			wantTok: func(t *testing.T, tok *Token) {
				if tok.AccessToken != "formtok" || tok.RefreshToken != "frt" || tok.Lifetime() != 10*time.Minute {
					t.Errorf("token %v lifetime %s", tok, tok.Lifetime())
				}
			},
		},
		{name: "missing expiry", status: 200, body: `{"access_token":"at","token_type":"Bearer"}`, wantErr: ErrMalformedResponse},
		{name: "zero expires_in", status: 200, body: `{"access_token":"at","expires_in":0}`, wantErr: ErrMalformedResponse},
		{name: "expires_on in the past", status: 200, body: `{"access_token":"at","expires_on":1000}`, wantErr: ErrMalformedResponse},
		{name: "no access token", status: 200, body: `{"token_type":"Bearer","expires_in":3599}`, wantErr: ErrMalformedResponse},
		{name: "html page", status: 200, header: http.Header{"Content-Type": {"text/html"}}, body: "<html>proxy login</html>", wantErr: ErrMalformedResponse},
		{
			name:     "200 carrying an error member",
			status:   200,
			body:     `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`,
			wantCode: "invalid_grant",
		},
		{
			name:     "google error",
			status:   400,
			body:     `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`,
			wantCode: "invalid_grant",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = jsonHeader()
			}
			tok, err := parseTokenResponse(tt.status, h, []byte(tt.body), parseNow)
			switch {
			case tt.wantTok != nil:
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				tt.wantTok(t, tok)
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			default:
				var oe *Error
				if !errors.As(err, &oe) {
					t.Fatalf("err = %v, want *Error", err)
				}
				if oe.Code != tt.wantCode {
					t.Errorf("code %q, want %q", oe.Code, tt.wantCode)
				}
			}
		})
	}
}

// A Microsoft error body as documented, with the \r\n trace lines.
const msScopeError = `{"error":"invalid_scope","error_description":"AADSTS70011: The provided value for the input parameter 'scope' isn't valid. The scope https://example.contoso.com/activity.read isn't valid.\r\nTrace ID: 0000aaaa-11bb-cccc-dd33-eeeeee333333\r\nCorrelation ID: aaaa0000-bb11-2222-33cc-444444dddddd\r\nTimestamp: 2016-01-09 02:02:12Z","error_codes":[70011],"timestamp":"2016-01-09 02:02:12Z","trace_id":"0000aaaa-11bb-cccc-dd33-eeeeee333333","correlation_id":"aaaa0000-bb11-2222-33cc-444444dddddd","error_uri":"https://login.microsoftonline.com/error?code=70011"}`

func TestParseErrorResponse(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		header    http.Header
		body      string
		code      string
		aadsts    int
		temporary bool
		retry     time.Duration
		check     func(t *testing.T, e *Error)
	}{
		{
			name: "microsoft documented shape", status: 400, body: msScopeError, code: "invalid_scope", aadsts: 70011,
			check: func(t *testing.T, e *Error) {
				if e.TraceID != "0000aaaa-11bb-cccc-dd33-eeeeee333333" || e.CorrelationID != "aaaa0000-bb11-2222-33cc-444444dddddd" {
					t.Errorf("ids %q %q", e.TraceID, e.CorrelationID)
				}
				if e.Timestamp != "2016-01-09 02:02:12Z" || e.ErrorURI != "https://login.microsoftonline.com/error?code=70011" {
					t.Errorf("timestamp %q uri %q", e.Timestamp, e.ErrorURI)
				}
				want := "The provided value for the input parameter 'scope' isn't valid. The scope https://example.contoso.com/activity.read isn't valid."
				if e.Summary() != want {
					t.Errorf("summary %q", e.Summary())
				}
				msg := e.Error()
				for _, s := range []string{"oauth: token endpoint refused: invalid_scope", "HTTP 400", "AADSTS70011", want} {
					if !strings.Contains(msg, s) {
						t.Errorf("Error() = %q lacks %q", msg, s)
					}
				}
				if strings.Contains(msg, "Trace ID") {
					t.Errorf("Error() carries the trace lines: %q", msg)
				}
			},
		},
		{
			name:   "consent with suberror",
			status: 400,
			body: `{"error":"invalid_grant","error_description":"AADSTS65001: The user or administrator has not consented to use the application with ID 'x'.","error_codes":[65001],` +
				`"suberror":"consent_required","claims":"{\"access_token\":{\"capolids\":{\"essential\":true}}}"}`,
			code: "invalid_grant", aadsts: 65001,
			check: func(t *testing.T, e *Error) {
				if e.SubError != "consent_required" || !strings.Contains(e.Claims, "capolids") {
					t.Errorf("suberror %q claims %q", e.SubError, e.Claims)
				}
			},
		},
		{
			name: "AADSTS only in the description", status: 401, code: "invalid_client", aadsts: 7000215,
			body: `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`,
		},
		{
			name: "error_codes of the wrong type", status: 401, code: "invalid_client", aadsts: 700027,
			body: `{"error":"invalid_client","error_description":"AADSTS700027: Client assertion failed signature validation.","error_codes":["700027"]}`,
		},
		{
			name: "plain-text 429 with Retry-After seconds", status: 429,
			header: http.Header{"Content-Type": {"text/plain"}, "Retry-After": {"60"}},
			body:   "Too Many Requests", temporary: true, retry: time.Minute,
			check: func(t *testing.T, e *Error) {
				if e.Body != "Too Many Requests" || e.Code != "" {
					t.Errorf("body %q code %q", e.Body, e.Code)
				}
				if !strings.Contains(e.Error(), "HTTP 429") || !strings.Contains(e.Error(), "retry after 1m0s") {
					t.Errorf("Error() = %q", e.Error())
				}
			},
		},
		{
			name: "429 with an HTTP-date Retry-After", status: 429,
			header: http.Header{"Retry-After": {parseNow.Add(90 * time.Second).Format(http.TimeFormat)}},
			body:   "Too Many Requests", temporary: true, retry: 90 * time.Second,
		},
		{
			name: "503 temporarily_unavailable", status: 503,
			header: http.Header{"Retry-After": {"5"}},
			body:   `{"error":"temporarily_unavailable","error_description":"AADSTS90033: A transient error has occurred."}`,
			code:   "temporarily_unavailable", aadsts: 90033, temporary: true, retry: 5 * time.Second,
		},
		{
			name: "absurd Retry-After is capped", status: 429, header: http.Header{"Retry-After": {"99999999"}},
			body: "slow down", temporary: true, retry: maxRetryAfter,
		},
		{
			name: "garbage Retry-After is ignored", status: 500, header: http.Header{"Retry-After": {"soon"}},
			body: "<html>oops</html>", temporary: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = jsonHeader()
			}
			_, err := parseTokenResponse(tt.status, h, []byte(tt.body), parseNow)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if e.Status != tt.status || e.Code != tt.code || e.AADSTS() != tt.aadsts {
				t.Errorf("status %d code %q aadsts %d; want %d %q %d", e.Status, e.Code, e.AADSTS(), tt.status, tt.code, tt.aadsts)
			}
			if e.Temporary() != tt.temporary {
				t.Errorf("Temporary() = %v", e.Temporary())
			}
			if e.RetryAfter != tt.retry {
				t.Errorf("RetryAfter = %s, want %s", e.RetryAfter, tt.retry)
			}
			if tt.check != nil {
				tt.check(t, e)
			}
		})
	}
}

func TestTokenRedaction(t *testing.T) {
	tok := &Token{
		AccessToken:  "ACCESS-SECRET-123",
		RefreshToken: "REFRESH-SECRET-456",
		IDToken:      "ID-SECRET-789",
		TokenType:    "Bearer",
		Expiry:       parseNow.Add(time.Hour),
		Scope:        "https://outlook.office365.com/.default",
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("token", "tok", tok)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("token", "tok", tok)
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", tok),
		"%+v":  fmt.Sprintf("%+v", tok),
		"%#v":  fmt.Sprintf("%#v", tok),
		"%s":   fmt.Sprintf("%s", tok),
		"%v*":  fmt.Sprintf("%v", *tok),
		"slog": logged.String(),
	}
	for verb, out := range outputs {
		for _, secret := range []string{"ACCESS-SECRET", "REFRESH-SECRET", "ID-SECRET"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s output leaks %s: %s", verb, secret, out)
			}
		}
	}
	if !strings.Contains(outputs["%v"], "expiry=") || !strings.Contains(outputs["slog"], "outlook.office365.com") {
		t.Errorf("redacted output lost the useful fields: %s / %s", outputs["%v"], outputs["slog"])
	}
}

func TestProfileRedaction(t *testing.T) {
	p := &Profile{Name: "contoso", ClientID: "app", Tenant: "t", ClientSecret: "SECRET-VALUE", Username: "u@x", Password: "PASSWORD-VALUE"}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("profile", "p", p)
	for _, out := range []string{fmt.Sprintf("%v", p), fmt.Sprintf("%+v", p), fmt.Sprintf("%#v", p), fmt.Sprintf("%v", *p), logged.String()} {
		if strings.Contains(out, "SECRET-VALUE") || strings.Contains(out, "PASSWORD-VALUE") {
			t.Errorf("profile output leaks a secret: %s", out)
		}
		if !strings.Contains(out, "contoso") {
			t.Errorf("profile output lost its name: %s", out)
		}
	}
}
