package oauth

import (
	"fmt"
	"net/url"
	"strings"
)

// Microsoft identity platform (Entra ID) specifics: endpoint layout under
// the authority, and the v1.0 endpoint's resource parameter.

// entraEndpoints derives the endpoints from Authority and Tenant:
// {authority}/{tenant}/oauth2/v2.0/{token,authorize,devicecode} for v2 and
// {authority}/{tenant}/oauth2/{token,authorize,devicecode} for v1.
func entraEndpoints(p *Profile) Endpoints {
	authority := strings.TrimRight(p.Authority, "/")
	if authority == "" {
		authority = DefaultAuthority
	}
	base := authority + "/" + url.PathEscape(strings.TrimSpace(p.Tenant)) + "/oauth2/"
	if !p.v1() {
		base += "v2.0/"
	}
	return Endpoints{
		Token:     base + "token",
		Authorize: base + "authorize",
		Device:    base + "devicecode",
	}
}

// oidcScopes are the OpenID Connect scopes that name no resource.
var oidcScopes = map[string]bool{"openid": true, "profile": true, "email": true, "offline_access": true}

// graphResource is what a bare scope such as Mail.Read refers to on the
// Microsoft identity platform.
const graphResource = "https://graph.microsoft.com"

// entraResource derives the v1 resource from v2-style scopes:
// https://outlook.office365.com/.default → https://outlook.office365.com,
// https://outlook.office.com/IMAP.AccessAsUser.All → https://outlook.office.com,
// api://app-id/.default → api://app-id, Mail.Read → Microsoft Graph. The
// OIDC scopes are ignored; scopes of several resources are an error since
// a v1 request names exactly one.
func entraResource(scopes []string) (string, error) {
	var resource string
	for _, s := range dedupe(scopes) {
		if oidcScopes[strings.ToLower(s)] {
			continue
		}
		r := scopeResource(s)
		if resource == "" {
			resource = r
			continue
		}
		if !strings.EqualFold(resource, r) {
			return "", fmt.Errorf("endpoint_version v1 takes one resource but the scopes name %s and %s", resource, r)
		}
	}
	if resource == "" {
		return "", fmt.Errorf("endpoint_version v1 needs a scope naming a resource, e.g. https://outlook.office365.com/.default")
	}
	return resource, nil
}

// scopeResource is the resource part of one scope.
func scopeResource(s string) string {
	if r, ok := strings.CutSuffix(s, "/.default"); ok {
		return r
	}
	if i := strings.Index(s, "://"); i > 0 {
		rest := s[i+3:]
		if j := strings.LastIndex(rest, "/"); j >= 0 {
			return s[:i+3] + rest[:j]
		}
		return s
	}
	return graphResource
}

// setScope puts the requested scopes on a form: scope on v2 endpoints and
// other providers, resource on Microsoft v1.
func setScope(p *Profile, form url.Values, scopes []string) error {
	if p.v1() {
		r, err := entraResource(scopes)
		if err != nil {
			return fmt.Errorf("oauth: profile %s: %w", p.Name, err)
		}
		form.Set("resource", r)
		return nil
	}
	if s := strings.Join(p.requestScopes(scopes), " "); s != "" {
		form.Set("scope", s)
	}
	return nil
}
