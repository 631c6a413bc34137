package emulator

import (
	"net/http"
	"strings"
)

// tenantFor resolves a discovery path segment; common and organizations
// are served with the {tenantid} placeholder, as Entra does.
func (s *Server) tenantFor(w http.ResponseWriter, r *http.Request) (seg, issuerTenant string, ok bool) {
	seg = r.PathValue("tenant")
	switch strings.ToLower(seg) {
	case "common", "organizations", "consumers":
		return seg, "{tenantid}", true
	}
	if !s.tenant.matches(seg) {
		e := errTenantNotFound(seg)
		e.code = "invalid_tenant"
		s.writeAAD(w, r, e)
		return "", "", false
	}
	return seg, s.tenant.id, true
}

// handleOpenID serves {tenant}/v2.0/.well-known/openid-configuration (v2)
// and {tenant}/.well-known/openid-configuration (v1).
func (s *Server) handleOpenID(v1 bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.applyFault(w, r, "discovery") {
			return
		}
		seg, tid, ok := s.tenantFor(w, r)
		if !ok {
			return
		}
		base := s.base(r)
		authority := base + "/" + seg
		oauth := authority + "/oauth2/v2.0/"
		jwks := authority + "/discovery/v2.0/keys"
		issuer := base + "/" + tid + "/v2.0"
		if v1 {
			oauth = authority + "/oauth2/"
			jwks = authority + "/discovery/keys"
			issuer = "https://sts.windows.net/" + tid + "/"
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"token_endpoint":                        oauth + "token",
			"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
			"jwks_uri":                              jwks,
			"response_modes_supported":              []string{"query", "fragment", "form_post"},
			"subject_types_supported":               []string{"pairwise"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
			"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
			"issuer":                                issuer,
			"request_uri_parameter_supported":       false,
			"userinfo_endpoint":                     "https://graph.microsoft.com/oidc/userinfo",
			"authorization_endpoint":                oauth + "authorize",
			"device_authorization_endpoint":         oauth + "devicecode",
			"http_logout_supported":                 true,
			"frontchannel_logout_supported":         true,
			"end_session_endpoint":                  oauth + "logout",
			"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "preferred_username", "name", "tid", "ver", "email"},
			"tenant_region_scope":                   "EU",
			"cloud_instance_name":                   "microsoftonline.com",
			"cloud_graph_host_name":                 "graph.windows.net",
			"msgraph_host":                          "graph.microsoft.com",
		})
	}
}

// handleKeys serves the JWKS.
func (s *Server) handleKeys(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := s.tenantFor(w, r); !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": []any{s.sign.jwk(s.base(r) + "/{tenantid}/v2.0")}})
}

// handleInstance serves MSAL's instance discovery for this host.
func (s *Server) handleInstance(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": s.base(r) + "/" + s.tenant.id + "/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata":                  []any{map[string]any{"preferred_network": host, "preferred_cache": host, "aliases": []string{host}}},
	})
}

// handleUserRealm answers MSAL's home-realm discovery: every user of the
// demo domain is a managed (cloud) account.
func (s *Server) handleUserRealm(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	_, domain, _ := strings.Cut(user, "@")
	if strings.EqualFold(domain, s.tenant.domain) {
		writeJSON(w, http.StatusOK, map[string]any{"ver": "1.0", "account_type": "Managed", "domain_name": s.tenant.domain,
			"cloud_instance_name": "microsoftonline.com", "cloud_audience_urn": "urn:federation:MicrosoftOnline"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ver": "1.0", "account_type": "Unknown",
		"cloud_instance_name": "microsoftonline.com", "cloud_audience_urn": "urn:federation:MicrosoftOnline"})
}
