package oauth

import (
	"crypto/rsa"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Provider names the kind of authorization server a Profile talks to.
type Provider string

// Providers.
const (
	// ProviderMicrosoft is Microsoft Entra ID (and sovereign clouds, ADFS-free
	// tenants, the emulator): endpoints derived from Authority and Tenant.
	ProviderMicrosoft Provider = "microsoft"
	// ProviderGoogle is Google's OAuth 2.0 server (Gmail).
	ProviderGoogle Provider = "google"
	// ProviderGeneric is any RFC 6749 server; TokenURL (and AuthorizeURL or
	// DeviceAuthURL for those grants) must be given.
	ProviderGeneric Provider = "generic"
)

// Grant names how a Profile obtains tokens.
type Grant string

// Grants.
const (
	// GrantClientCredentials is app-only access (RFC 6749 §4.4) with a client
	// secret or a certificate (RFC 7523 client assertion).
	GrantClientCredentials Grant = "client_credentials"
	// GrantAuthorizationCode is delegated access after a browser sign-in
	// (RFC 6749 §4.1 with PKCE, RFC 7636); later tokens come from the stored
	// refresh token.
	GrantAuthorizationCode Grant = "authorization_code"
	// GrantPassword is the resource-owner password grant (RFC 6749 §4.3,
	// ROPC). Microsoft advises against it; MFA blocks it.
	GrantPassword Grant = "password"
	// GrantDeviceCode is delegated access after a sign-in on another device
	// (RFC 8628); later tokens come from the stored refresh token.
	GrantDeviceCode Grant = "device_code"
	// GrantRefreshToken uses only a refresh token already in the Store (put
	// there by an import or an earlier login) and never signs in.
	GrantRefreshToken Grant = "refresh_token"
	// GrantServiceAccount is a Google service account acting for a user
	// of its Workspace domain (domain-wide delegation): an RS256 assertion
	// signed with the account's key is exchanged for a token (RFC 7523
	// §2.1). There is no refresh token; a new assertion is signed instead.
	GrantServiceAccount Grant = "service_account"
)

// Grants returns every grant, in the order they are documented; the
// configuration's grant key accepts exactly these.
func Grants() []Grant {
	return []Grant{GrantClientCredentials, GrantAuthorizationCode, GrantPassword, GrantDeviceCode, GrantRefreshToken, GrantServiceAccount}
}

// AuthStyle is how a client secret reaches the token endpoint.
type AuthStyle string

// Auth styles.
const (
	// AuthStyleParams sends client_id and client_secret in the form body
	// (client_secret_post). The default.
	AuthStyleParams AuthStyle = "params"
	// AuthStyleBasic sends them as HTTP Basic credentials, each
	// form-URL-encoded first as RFC 6749 §2.3.1 requires
	// (client_secret_basic). Never both.
	AuthStyleBasic AuthStyle = "basic"
)

// Endpoint versions of the Microsoft identity platform.
const (
	EndpointV2 = "v2"
	EndpointV1 = "v1"
)

// DefaultAuthority is the Microsoft public cloud.
const DefaultAuthority = "https://login.microsoftonline.com"

// DefaultRefreshMargin is how long before expiry Manager replaces a token.
const DefaultRefreshMargin = 5 * time.Minute

// Profile is everything needed to get a token from one authorization server
// for one client. Zero values mean the documented defaults; Validate says
// what is missing or contradictory.
type Profile struct {
	// Name identifies the profile in the Store and in logs.
	Name string
	// Provider is microsoft (default), google or generic.
	Provider Provider
	// Grant is client_credentials (default), authorization_code, password,
	// device_code or refresh_token.
	Grant Grant
	// Tenant is the Entra tenant: a GUID or verified domain; organizations
	// or common only for delegated grants. Microsoft only.
	Tenant string
	// ClientID is the application (client) id.
	ClientID string
	// ClientSecret is the secret's value (not its ID). Empty for public
	// clients and certificate credentials.
	ClientSecret string
	// Certificate, when set, replaces ClientSecret with a signed client
	// assertion (RFC 7523, Microsoft "certificate credentials").
	Certificate *ClientCertificate
	// Scopes requested when the caller names none, e.g.
	// https://outlook.office365.com/.default for app-only IMAP/POP/SMTP.
	Scopes []string
	// Authority is the Microsoft login host: https://login.microsoftonline.com
	// (default), a sovereign cloud, or the emulator's URL.
	Authority string
	// EndpointVersion is v2 (default) or v1 (/{tenant}/oauth2/token with a
	// resource parameter derived from the scope).
	EndpointVersion string
	// TokenURL, AuthorizeURL and DeviceAuthURL override the provider's
	// endpoints; a generic provider needs the ones its grant uses.
	TokenURL      string
	AuthorizeURL  string
	DeviceAuthURL string
	// RedirectURI for the authorization-code grant; Login listens on its
	// loopback host and port (a random port when none is given).
	RedirectURI string
	// Username and Password for the password grant; Username is also sent
	// as login_hint on the authorization request.
	Username string
	Password string
	// AuthStyle is params (default) or basic.
	AuthStyle AuthStyle
	// HTTPClient carries proxy and TLS settings (see NewHTTPClient); nil
	// uses http.DefaultClient.
	HTTPClient *http.Client
	// RefreshMargin is how long before expiry a cached token is replaced;
	// 0 means DefaultRefreshMargin. Short-lived tokens get a proportional
	// margin (see Manager).
	RefreshMargin time.Duration
	// ServiceAccount is the key of the service_account grant; its
	// token_uri is the token endpoint unless TokenURL overrides it.
	ServiceAccount *ServiceAccountKey
	// Subject is the user a service account acts for (the sub claim).
	// Manager caches tokens per subject. Empty: the service account itself.
	Subject string
}

// Endpoints are the URLs a profile talks to.
type Endpoints struct {
	Token     string
	Authorize string
	Device    string
}

func (p *Profile) provider() Provider {
	if p.Provider == "" {
		return ProviderMicrosoft
	}
	return Provider(strings.ToLower(string(p.Provider)))
}

func (p *Profile) grant() Grant {
	if p.Grant == "" {
		return GrantClientCredentials
	}
	return Grant(strings.ToLower(string(p.Grant)))
}

// delegated reports whether tokens act for a user and may come with a
// refresh token.
func (p *Profile) delegated() bool {
	return p.grant() != GrantClientCredentials && p.grant() != GrantServiceAccount
}

// v1 reports whether the profile uses Microsoft's v1.0 endpoints.
func (p *Profile) v1() bool {
	return p.provider() == ProviderMicrosoft && strings.EqualFold(p.EndpointVersion, EndpointV1)
}

func (p *Profile) httpClient() *http.Client {
	if p.HTTPClient != nil {
		return p.HTTPClient
	}
	return http.DefaultClient
}

func (p *Profile) margin() time.Duration {
	if p.RefreshMargin > 0 {
		return p.RefreshMargin
	}
	return DefaultRefreshMargin
}

func (p *Profile) authStyle() AuthStyle {
	if p.AuthStyle == "" {
		return AuthStyleParams
	}
	return AuthStyle(strings.ToLower(string(p.AuthStyle)))
}

// confidential reports whether the profile authenticates the client.
func (p *Profile) confidential() bool { return p.ClientSecret != "" || p.Certificate != nil }

// serviceAccount reports whether the profile uses the service_account grant.
func (p *Profile) serviceAccount() bool { return p.grant() == GrantServiceAccount }

// Endpoints resolves the profile's token, authorization and device
// authorization URLs: the overrides when given, else the provider's.
func (p *Profile) Endpoints() (Endpoints, error) {
	var e Endpoints
	switch p.provider() {
	case ProviderMicrosoft:
		e = entraEndpoints(p)
	case ProviderGoogle:
		e = googleEndpoints()
		if p.serviceAccount() && p.ServiceAccount != nil {
			e.Token = p.ServiceAccount.TokenURI
		}
	case ProviderGeneric:
		// Only the overrides below.
	default:
		return Endpoints{}, fmt.Errorf("oauth: profile %s: unknown provider %q (want microsoft, google or generic)", p.Name, p.Provider)
	}
	if p.TokenURL != "" {
		e.Token = p.TokenURL
	}
	if p.AuthorizeURL != "" {
		e.Authorize = p.AuthorizeURL
	}
	if p.DeviceAuthURL != "" {
		e.Device = p.DeviceAuthURL
	}
	return e, nil
}

// Validate checks the profile and returns a *ValidationError naming every
// problem, or nil.
func (p *Profile) Validate() error {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }

	prov := p.provider()
	switch prov {
	case ProviderMicrosoft, ProviderGoogle, ProviderGeneric:
	default:
		add("provider %q is not one of microsoft, google, generic", p.Provider)
	}
	g := p.grant()
	if !slices.Contains(Grants(), g) {
		add("grant %q is not one of client_credentials, authorization_code, password, device_code, refresh_token, service_account", p.Grant)
	}
	if g == GrantServiceAccount {
		p.validateServiceAccount(add)
	} else if strings.TrimSpace(p.ClientID) == "" {
		add("client_id is required")
	}
	if p.ClientSecret != "" && p.Certificate != nil {
		add("give either a client secret or a client certificate, not both")
	}
	if g == GrantClientCredentials && !p.confidential() {
		add("client_credentials needs a client secret or a client certificate")
	}
	if p.Certificate != nil {
		if err := p.Certificate.check(); err != nil {
			add("client certificate: %v", err)
		}
	}
	switch p.authStyle() {
	case AuthStyleParams:
	case AuthStyleBasic:
		if p.Certificate != nil {
			add("auth_style basic applies to client secrets, not certificates")
		}
	default:
		add("auth style %q is not one of params, basic", p.AuthStyle)
	}
	if g == GrantPassword {
		if p.Username == "" {
			add("the password grant needs a username")
		}
		if p.Password == "" {
			add("the password grant needs a password")
		}
	}
	if p.RefreshMargin < 0 {
		add("refresh margin %s is negative", p.RefreshMargin)
	}
	switch strings.ToLower(p.EndpointVersion) {
	case "", EndpointV2:
	case EndpointV1:
		if prov != ProviderMicrosoft {
			add("endpoint_version v1 exists only for provider microsoft")
		}
	default:
		add("endpoint version %q is not v1 or v2", p.EndpointVersion)
	}

	if prov == ProviderMicrosoft {
		t := strings.ToLower(strings.TrimSpace(p.Tenant))
		switch {
		case t == "" && p.TokenURL == "":
			add("tenant is required (the Directory (tenant) ID GUID or a verified domain)")
		case strings.ContainsAny(t, "/?# "):
			add("tenant %q must be a GUID or a domain name, not a URL", p.Tenant)
		case (t == "common" || t == "consumers") && (g == GrantClientCredentials || g == GrantPassword):
			add("grant %s does not work on the %q tenant (AADSTS9001023): use the tenant ID or domain", g, p.Tenant)
		}
		if p.Authority != "" {
			if err := checkEndpointURL(p.Authority); err != nil {
				add("authority: %v", err)
			}
		}
		if len(p.Scopes) == 0 {
			add("scopes are required for provider microsoft (e.g. https://outlook.office365.com/.default)")
		}
		if p.v1() && len(p.Scopes) > 0 {
			if _, err := entraResource(p.Scopes); err != nil {
				add("%v", err)
			}
		}
	}
	if prov == ProviderGeneric && p.TokenURL == "" {
		add("token_url is required for provider generic")
	}
	for _, u := range []struct{ name, v string }{
		{"token_url", p.TokenURL}, {"authorize_url", p.AuthorizeURL}, {"device_authorization_url", p.DeviceAuthURL},
	} {
		if u.v == "" {
			continue
		}
		if err := checkEndpointURL(u.v); err != nil {
			add("%s: %v", u.name, err)
		}
	}
	if e, err := p.Endpoints(); err == nil {
		if g == GrantAuthorizationCode && e.Authorize == "" {
			add("authorization_code needs authorize_url for provider %s", prov)
		}
		if g == GrantDeviceCode && e.Device == "" {
			add("device_code needs a device authorization URL for provider %s", prov)
		}
	}
	if p.RedirectURI != "" {
		if u, err := url.Parse(p.RedirectURI); err != nil || u.Scheme == "" || u.Host == "" {
			add("redirect_uri %q is not an absolute URL", p.RedirectURI)
		}
	}
	if len(probs) == 0 {
		return nil
	}
	return &ValidationError{Profile: p.Name, Problems: probs}
}

// validateServiceAccount checks what the service_account grant needs.
func (p *Profile) validateServiceAccount(add func(string, ...any)) {
	if p.provider() != ProviderGoogle && p.provider() != ProviderGeneric {
		add("grant service_account exists for provider google (or generic), not %s", p.provider())
	}
	if p.ServiceAccount == nil {
		add("grant service_account needs service_account_key (the JSON key file of the service account)")
	} else if p.ServiceAccount.key == nil {
		add("service_account_key was not read with ParseServiceAccountKey")
	}
	if len(p.Scopes) == 0 {
		add("scopes are required for grant service_account (e.g. https://mail.google.com/ for IMAP, POP and SMTP)")
	}
	if p.Certificate != nil || p.ClientSecret != "" {
		add("grant service_account signs with the key file; client_secret and client_certificate do not apply")
	}
}

// Warnings lists things that work but that an admin should hear about:
// the password grant's limits, scopes that Entra will refuse, a certificate
// near or past its expiry.
func (p *Profile) Warnings() []string {
	var w []string
	if p.grant() == GrantPassword {
		w = append(w, "the password grant (ROPC) is deprecated by Microsoft and cannot satisfy MFA or Conditional Access "+
			"(AADSTS50076/50079), nor federated or personal accounts; prefer authorization_code or device_code "+
			"(mailgate login) for a user, or client_credentials for app-only access")
	}
	if p.provider() == ProviderMicrosoft && p.grant() == GrantClientCredentials {
		for _, s := range p.Scopes {
			if !strings.HasSuffix(s, "/.default") {
				w = append(w, fmt.Sprintf("scope %q: client_credentials needs a {resource}/.default scope, e.g. "+
					"https://outlook.office365.com/.default (AADSTS1002012 otherwise)", s))
			}
		}
	}
	if p.Certificate != nil && p.Certificate.Cert != nil {
		left := time.Until(p.Certificate.Cert.NotAfter)
		switch {
		case left <= 0:
			w = append(w, fmt.Sprintf("client certificate expired on %s", p.Certificate.Cert.NotAfter.UTC().Format(time.DateOnly)))
		case left < 30*24*time.Hour:
			w = append(w, fmt.Sprintf("client certificate expires on %s", p.Certificate.Cert.NotAfter.UTC().Format(time.DateOnly)))
		}
	}
	return w
}

// checkEndpointURL accepts https URLs, and http only to loopback hosts
// (the emulator's plain listener, local test servers).
func checkEndpointURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopbackHost(u.Hostname()) {
			return fmt.Errorf("%q: plain http is allowed only to a loopback host", raw)
		}
	default:
		return fmt.Errorf("%q must be an https URL", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	return nil
}

// loopbackHost reports whether host is localhost or a loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// credentialKind describes the client credential without revealing it.
func (p Profile) credentialKind() string {
	switch {
	case p.Certificate != nil && p.Certificate.Cert != nil:
		return "certificate " + Thumbprints(p.Certificate.Cert).SHA1
	case p.Certificate != nil:
		return "certificate"
	case p.ClientSecret != "":
		return "secret"
	case p.ServiceAccount != nil:
		return "service account key " + p.ServiceAccount.PrivateKeyID
	default:
		return "none (public client)"
	}
}

// String describes the profile without its secrets.
func (p Profile) String() string {
	return fmt.Sprintf("oauth.Profile{name=%s provider=%s grant=%s tenant=%s client_id=%s credential=%s scopes=%v subject=%s}",
		p.Name, p.provider(), p.grant(), p.Tenant, p.ClientID, p.credentialKind(), p.Scopes, p.Subject)
}

// GoString keeps %#v from printing the secrets.
func (p Profile) GoString() string { return p.String() }

// LogValue implements slog.LogValuer with the secrets left out.
func (p Profile) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("name", p.Name),
		slog.String("provider", string(p.provider())),
		slog.String("grant", string(p.grant())),
		slog.String("client_id", p.ClientID),
		slog.String("credential", p.credentialKind()),
	}
	if p.Tenant != "" {
		attrs = append(attrs, slog.String("tenant", p.Tenant))
	}
	if p.Username != "" {
		attrs = append(attrs, slog.String("username", p.Username))
	}
	if p.Subject != "" {
		attrs = append(attrs, slog.String("subject", p.Subject))
	}
	return slog.GroupValue(attrs...)
}

// requestScopes is the scope list sent for a grant: the given scopes in
// order without duplicates, plus what the provider needs for a refresh
// token on delegated grants (offline_access on Microsoft v2).
func (p *Profile) requestScopes(scopes []string) []string {
	out := dedupe(scopes)
	if p.provider() == ProviderMicrosoft && p.delegated() && !p.v1() && !slices.Contains(out, "offline_access") {
		out = append(out, "offline_access")
	}
	return out
}

// dedupe splits space-separated entries and drops repeats, keeping order.
func dedupe(scopes []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range scopes {
		for _, f := range strings.Fields(s) {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return out
}

// normalizeScopes is the cache key of a scope set: unique, sorted, joined
// by single spaces.
func normalizeScopes(scopes []string) string {
	s := dedupe(scopes)
	slices.Sort(s)
	return strings.Join(s, " ")
}

// rsaPublicKey returns the certificate's RSA key, if that is what it has.
func rsaPublicKey(c *ClientCertificate) (*rsa.PublicKey, bool) {
	if c == nil || c.Cert == nil {
		return nil, false
	}
	k, ok := c.Cert.PublicKey.(*rsa.PublicKey)
	return k, ok
}
