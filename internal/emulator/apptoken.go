package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// DemoAppToken asks the emulator's token endpoint, over HTTPS as any
// client would, for the demo app's client-credentials token (with its
// secret) for scope, such as "https://outlook.office365.com/.default". It
// saves tests and benchmarks writing the request themselves; it mints
// nothing the endpoint would not.
func (s *Server) DemoAppToken(ctx context.Context, scope string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {DemoAppID},
		"client_secret": {DemoAppSecret}, "scope": {scope}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/"+DemoTenantID+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("emulator: demo app token: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.Client().Do(req)
	if err != nil {
		return "", fmt.Errorf("emulator: demo app token: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("emulator: demo app token: %w", err)
	}
	var v struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &v); err != nil || resp.StatusCode != http.StatusOK || v.AccessToken == "" {
		return "", fmt.Errorf("emulator: demo app token for %s: HTTP %d: %s", scope, resp.StatusCode, b)
	}
	return v.AccessToken, nil
}
