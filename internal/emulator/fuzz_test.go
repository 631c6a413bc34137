package emulator

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzTokenEndpoint feeds arbitrary bodies and client assertions to the
// token endpoint: it must never panic and must answer either tokens or
// Microsoft's error JSON.
func FuzzTokenEndpoint(f *testing.F) {
	f.Add("grant_type=client_credentials&client_id="+DemoAppID+"&scope=https%3A%2F%2Foutlook.office365.com%2F.default&client_secret=x", "")
	f.Add("grant_type=client_credentials&client_id="+DemoAppID+"&scope=https%3A%2F%2Foutlook.office365.com%2F.default&client_assertion_type="+url.QueryEscape(jwtBearer), "eyJhbGciOiJQUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln")
	f.Add("grant_type=refresh_token&client_id="+DemoPublicAppID+"&refresh_token=%00%ff", "")
	f.Add("grant_type=authorization_code&client_id="+DemoPublicAppID+"&code=a&code_verifier=b", "")
	f.Add("grant_type=password&client_id="+DemoPublicAppID+"&username=a&password=b&scope=a/b/c%20d", "")
	f.Add("%%%&&&==", "a.b.c")
	f.Add("grant_type=device_code&client_id="+DemoPublicAppID, "e30.e30.e30")
	srv, err := Start(f.Context(), Options{HTTPListen: "-"})
	if err != nil {
		f.Fatal(err)
	}
	defer srv.Close()
	h := srv.routes()
	f.Fuzz(func(t *testing.T, body, assertion string) {
		if assertion != "" {
			body += "&client_assertion=" + url.QueryEscape(assertion)
		}
		for _, path := range []string{"/" + DemoTenantID + "/oauth2/v2.0/token", "/" + DemoTenantID + "/oauth2/token"} {
			req := httptest.NewRequest(http.MethodPost, "https://127.0.0.1"+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			var m map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
				t.Fatalf("%s: not JSON (%d): %q", path, w.Code, w.Body.String())
			}
			if w.Code == 200 {
				if m["access_token"] == nil {
					t.Fatalf("200 without access_token: %v", m)
				}
				continue
			}
			desc, _ := m["error_description"].(string)
			if m["error"] == nil || !strings.HasPrefix(desc, "AADSTS") || m["error_codes"] == nil {
				t.Fatalf("%d: not Microsoft's error shape: %v", w.Code, m)
			}
		}
	})
}
