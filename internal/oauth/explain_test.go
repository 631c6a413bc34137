package oauth

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func msError(status int, code string, aadsts int) error {
	body := fmt.Sprintf(`{"error":%q,"error_description":"AADSTS%d: text.\r\nTrace ID: t\r\nCorrelation ID: c\r\nTimestamp: 2026-11-23 01:00:00Z","error_codes":[%d]}`, code, aadsts, aadsts)
	_, err := parseTokenResponse(status, jsonHeader(), []byte(body), parseNow)
	return err
}

func TestExplain(t *testing.T) {
	p := &Profile{Name: "contoso", ClientID: "aaaaaaaa-bbbb", Tenant: "contoso.example", Username: "alice@contoso.example"}
	tests := []struct {
		aadsts int
		code   string
		status int
		want   []string
	}{
		{7000215, "invalid_client", 401, []string{"Entra admin center › App registrations › aaaaaaaa-bbbb › Certificates & secrets: copy the Value column, not Secret ID"}},
		{7000222, "invalid_client", 401, []string{"expired", "New client secret"}},
		{700016, "unauthorized_client", 400, []string{"aaaaaaaa-bbbb", "contoso.example", "Application (client) ID"}},
		{90002, "invalid_request", 400, []string{"contoso.example", "Directory (tenant) ID"}},
		{1002012, "invalid_scope", 400, []string{"https://outlook.office365.com/.default"}},
		{70011, "invalid_scope", 400, []string{"https://outlook.office365.com/.default", "IMAP"}},
		{65001, "invalid_grant", 400, []string{"Grant admin consent", "API permissions"}},
		{700027, "invalid_client", 401, []string{"Certificates & secrets › Certificates", "thumbprint", "RS256"}},
		{700024, "invalid_client", 401, []string{"clock"}},
		{50126, "invalid_grant", 400, []string{"alice@contoso.example", "password"}},
		{50076, "invalid_grant", 400, []string{"multi-factor", "authorization_code", "client_credentials"}},
		{70008, "invalid_grant", 400, []string{"mailgate login contoso"}},
		{700082, "invalid_grant", 400, []string{"mailgate login contoso", "90 days"}},
		{54005, "invalid_grant", 400, []string{"already redeemed", "mailgate login contoso"}},
		{501481, "invalid_grant", 400, []string{"PKCE"}},
		{7000218, "invalid_client", 401, []string{"Allow public client flows"}},
		{700025, "invalid_client", 401, []string{"public client"}},
		{901002, "invalid_request", 400, []string{"resource", "endpoint_version"}},
		{9001023, "invalid_request", 400, []string{"common", "tenant"}},
		{50173, "invalid_grant", 400, []string{"revoked", "mailgate login contoso"}},
		{50011, "invalid_request", 400, []string{"redirect URI", "Authentication"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.aadsts), func(t *testing.T) {
			err := msError(tt.status, tt.code, tt.aadsts)
			got := ExplainFor(fmt.Errorf("wrapped: %w", err), p)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("ExplainFor(AADSTS%d) = %q\nlacks %q", tt.aadsts, got, w)
				}
			}
			if strings.ContainsAny(got, "{}") && !strings.Contains(got, "{resource}") {
				t.Errorf("unfilled placeholder in %q", got)
			}
			e, ok := ExplainError(err, nil)
			if !ok || e.AADSTS != tt.aadsts || e.Meaning == "" || e.Fix == "" {
				t.Errorf("ExplainError = %+v, %v", e, ok)
			}
			if generic := Explain(err); strings.Contains(generic, "aaaaaaaa") || generic == "" {
				t.Errorf("Explain without profile = %q", generic)
			}
		})
	}
}

func TestExplainOthers(t *testing.T) {
	_, throttled := parseTokenResponse(429, http.Header{"Retry-After": {"30"}}, []byte("Too Many Requests"), parseNow)
	_, google := parseTokenResponse(400, jsonHeader(), []byte(`{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`), parseNow)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"429", throttled, "30s"},
		{"google invalid_grant", google, "mailgate login"},
		{"no refresh token", &LoginRequiredError{Profile: "p"}, "mailgate login p"},
		{"device expired", ErrDeviceCodeExpired, "--device"},
		{"state", ErrStateMismatch, "state"},
		{"state pasted", ErrStateMismatch, "with --paste by pasting the address of the sign-in it printed"},
		{"unknown CA", fmt.Errorf("post: %w", x509.UnknownAuthorityError{}), "tls_ca"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ExplainFor(tt.err, &Profile{Name: "p"})
			if !strings.Contains(got, tt.want) {
				t.Errorf("ExplainFor = %q, lacks %q", got, tt.want)
			}
		})
	}
	if got := Explain(errors.New("something else")); got != "" {
		t.Errorf("Explain(unknown) = %q", got)
	}
	if got := Explain(nil); got != "" {
		t.Errorf("Explain(nil) = %q", got)
	}
}
