package oauth

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
)

// Explanation is what an error means and where to fix it, for people: the
// CLI prints it after a refusal, `mailgate doctor` and the console show it.
type Explanation struct {
	// AADSTS is the Microsoft error number explained, 0 for the others.
	AADSTS int
	// Meaning says what went wrong, in the admin's terms.
	Meaning string
	// Fix says what to change and where (Entra admin center path, config
	// key, command).
	Fix string
}

// String joins meaning and fix on one line.
func (e Explanation) String() string {
	if e.Meaning == "" {
		return e.Fix
	}
	if e.Fix == "" {
		return e.Meaning + "."
	}
	return e.Meaning + ". " + e.Fix
}

// explanations by AADSTS number. In the texts {app} is the client id,
// {tenant} the tenant, {profile} the profile name, {user} the username and
// {thumbprint} the certificate's SHA-1 thumbprint, when known.
var explanations = map[int]Explanation{
	7000215: {
		Meaning: "the client secret is wrong; usually the secret's ID was pasted instead of its value",
		Fix: "Entra admin center › App registrations › {app} › Certificates & secrets: copy the Value column, not Secret ID " +
			"(the value is shown only right after creation; add a new client secret if it is lost) and put it in client_secret",
	},
	7000222: {
		Meaning: "the client secret has expired",
		Fix: "Entra admin center › App registrations › {app} › Certificates & secrets › New client secret, put its Value in " +
			"client_secret and set secret_expires; or switch to a certificate (mailgate cert new)",
	},
	7000218: {
		Meaning: "the app is confidential but the request carried no client secret or certificate",
		Fix: "set client_secret or client_certificate in the profile; or, for a public client, Entra admin center › " +
			"App registrations › {app} › Authentication › Allow public client flows: Yes",
	},
	700025: {
		Meaning: "the app is a public client, so it must not send a client secret or assertion",
		Fix: "remove client_secret/client_certificate from the profile, or set Entra admin center › App registrations › " +
			"{app} › Authentication › Allow public client flows to No",
	},
	700016: {
		Meaning: "application {app} was not found in tenant {tenant}: a wrong client_id, a wrong tenant, or the app is not installed there",
		Fix: "compare Application (client) ID and Directory (tenant) ID on Entra admin center › App registrations › " +
			"<app> › Overview with client_id and tenant in the profile",
	},
	7000112: {
		Meaning: "application {app} is disabled",
		Fix:     "Entra admin center › Enterprise applications › {app} › Properties: Enabled for users to sign-in? Yes",
	},
	90002: {
		Meaning: "tenant {tenant} does not exist, or not in this cloud",
		Fix: "use the Directory (tenant) ID from Entra admin center › Overview; for national clouds set authority " +
			"(https://login.microsoftonline.us, https://login.partner.microsoftonline.cn)",
	},
	900023: {
		Meaning: "the tenant {tenant} is neither a GUID nor a domain name",
		Fix:     "set tenant to the Directory (tenant) ID from Entra admin center › Overview",
	},
	1002012: {
		Meaning: "the scope is not valid for the client credentials grant, which needs {resource}/.default",
		Fix: "set scopes to https://outlook.office365.com/.default for app-only IMAP/POP/SMTP, or " +
			"https://graph.microsoft.com/.default for Graph",
	},
	70011: {
		Meaning: "the scope is not valid",
		Fix: "app-only: a single {resource}/.default scope such as https://outlook.office365.com/.default (IMAP/POP/SMTP) " +
			"or https://graph.microsoft.com/.default (Graph); delegated: e.g. https://outlook.office.com/IMAP.AccessAsUser.All " +
			"offline_access; never scopes of two resources in one request",
	},
	700022: {
		Meaning: "the scopes name more than one resource",
		Fix:     "request one resource per profile, e.g. https://outlook.office365.com/.default and, in another profile, https://graph.microsoft.com/.default",
	},
	28000: {
		Meaning: "the scopes name more than one resource",
		Fix:     "request one resource per profile, e.g. https://outlook.office365.com/.default and, in another profile, https://graph.microsoft.com/.default",
	},
	901002: {
		Meaning: "the v2.0 endpoint does not take a resource parameter",
		Fix:     "use scopes such as https://outlook.office365.com/.default with endpoint_version v2, or set endpoint_version v1",
	},
	65001: {
		Meaning: "the permission has not been consented for app {app}",
		Fix: "Entra admin center › App registrations › {app} › API permissions: add the permission (Office 365 Exchange " +
			"Online › IMAP.AccessAsApp/POP.AccessAsApp/SMTP.SendAsApp, or Microsoft Graph › Mail.*) and click Grant admin consent",
	},
	500011: {
		Meaning: "the resource's service principal (e.g. Office 365 Exchange Online) does not exist in the tenant",
		Fix:     "check the scope's resource URL and that the tenant has an Exchange Online licence",
	},
	700027: {
		Meaning: "the certificate that signed the client assertion is not registered on app {app}, or its thumbprint differs",
		Fix: "upload cert.pem under Entra admin center › App registrations › {app} › Certificates & secrets › Certificates " +
			"and compare its thumbprint with {thumbprint}; if they match, try client_certificate alg RS256 (x5t header)",
	},
	700024: {
		Meaning: "the client assertion is outside its validity window: this machine's clock is wrong",
		Fix:     "check the clock and time zone (timedatectl; enable NTP) and try again",
	},
	50027: {
		Meaning: "the client assertion JWT is malformed or its audience is not this token endpoint",
		Fix:     "check authority, tenant and endpoint_version: the assertion's aud is the token URL the request goes to",
	},
	50048: {
		Meaning: "the client assertion's subject differs from its issuer",
		Fix:     "client_id must be the app's Application (client) ID",
	},
	9001023: {
		Meaning: "this grant does not work on the common or consumers endpoints",
		Fix:     "set tenant to the Directory (tenant) ID or a verified domain of the tenant",
	},
	50126: {
		Meaning: "wrong username or password for {user}",
		Fix: "check username and password in the profile; federated, passwordless and personal accounts cannot use " +
			"the password grant: use authorization_code (mailgate login)",
	},
	50076: {
		Meaning: "multi-factor authentication is required, which the password grant (ROPC) cannot do",
		Fix:     "use grant authorization_code or device_code and run mailgate login {profile}, or app-only client_credentials",
	},
	50079: {
		Meaning: "the user must register for multi-factor authentication, which the password grant (ROPC) cannot do",
		Fix:     "use grant authorization_code or device_code and run mailgate login {profile}, or app-only client_credentials",
	},
	53003: {
		Meaning: "a Conditional Access policy blocked the sign-in",
		Fix:     "Entra admin center › Sign-in logs (filter on app {app}) shows the policy; exclude the app or satisfy it",
	},
	50034: {
		Meaning: "user {user} does not exist in tenant {tenant}",
		Fix:     "check the username (the user principal name) and the tenant",
	},
	50053: {
		Meaning: "the account is locked (too many failed sign-ins) or the sign-in was blocked as malicious",
		Fix:     "wait, or unlock it under Entra admin center › Users; check the password in the profile",
	},
	50055: {
		Meaning: "the user's password has expired",
		Fix:     "change the password, then update the profile (or move to authorization_code)",
	},
	50057: {
		Meaning: "the user account is disabled",
		Fix:     "Entra admin center › Users › {user} › Properties: Account enabled",
	},
	50173: {
		Meaning: "the sign-in was revoked (password change or revoked sessions)",
		Fix:     "sign in again: mailgate login {profile}",
	},
	70008: {
		Meaning: "the refresh token or code has expired",
		Fix:     "sign in again: mailgate login {profile}",
	},
	700082: {
		Meaning: "the refresh token expired after being unused for too long (90 days by default)",
		Fix:     "sign in again: mailgate login {profile}; mailgate keeps every rotated refresh token, so keep the profile in use",
	},
	70000: {
		Meaning: "the code or refresh token is invalid or expired",
		Fix:     "sign in again: mailgate login {profile}",
	},
	54005: {
		Meaning: "the authorization code was already redeemed; a code works once",
		Fix:     "start the sign-in again: mailgate login {profile}",
	},
	501481: {
		Meaning: "the PKCE code verifier does not match the challenge of the authorization request",
		Fix:     "start the sign-in again in one go: the code must be redeemed by the mailgate login that opened the URL",
	},
	50011: {
		Meaning: "the redirect URI is not registered on app {app}",
		Fix: "Entra admin center › App registrations › {app} › Authentication: add it under Mobile and desktop " +
			"applications (http://localhost works for mailgate login on any port)",
	},
	70016: {
		Meaning: "the device-code sign-in is still waiting for the user",
		Fix:     "open the verification page, enter the code and sign in",
	},
	70018: {
		Meaning: "the device code is not valid",
		Fix:     "start the sign-in again: mailgate login {profile} --device",
	},
	70019: {
		Meaning: "the device code expired before anyone signed in",
		Fix:     "start the sign-in again: mailgate login {profile} --device, and finish within 15 minutes",
	},
	50196: {
		Meaning: "Entra detected a request loop: the same token was asked for too often",
		Fix:     "let mailgate's cache work: share one store between instances instead of each asking for tokens",
	},
	90055: {
		Meaning: "the tenant is being throttled",
		Fix:     "wait for the Retry-After; share one store between instances so tokens are reused",
	},
}

// codeExplanations cover refusals without an AADSTS number (Google, generic
// providers, authorization redirects).
var codeExplanations = map[string]Explanation{
	"invalid_grant": {
		Meaning: "the authorization server refused the grant (code, refresh token or password): expired, revoked or wrong",
		Fix: "sign in again: mailgate login {profile} (Google refresh tokens of apps in Testing publishing status " +
			"expire after 7 days)",
	},
	"invalid_client": {
		Meaning: "the client credential was refused",
		Fix:     "check client_id and client_secret (or auth_style basic for servers that want HTTP Basic)",
	},
	"unauthorized_client": {
		Meaning: "the client is not allowed to use this grant or scope",
		Fix:     "enable the grant for the client at the provider, or change grant",
	},
	"invalid_scope": {
		Meaning: "the scope was refused",
		Fix:     "check scopes (Gmail IMAP/SMTP needs https://mail.google.com/)",
	},
	"access_denied": {
		Meaning: "the sign-in or consent was refused",
		Fix:     "sign in again and accept the requested permissions, or ask an admin to grant consent",
	},
	"consent_required": {
		Meaning: "consent is missing",
		Fix:     "grant consent for the app (Entra: API permissions › Grant admin consent)",
	},
	"interaction_required": {
		Meaning: "the user has to sign in interactively",
		Fix:     "sign in again: mailgate login {profile}",
	},
	"temporarily_unavailable": {
		Meaning: "the authorization server is temporarily unavailable",
		Fix:     "mailgate retries after the Retry-After the server gave",
	},
}

// Explain returns the one-line meaning of err and where to fix it, or ""
// when err is not one mailgate knows how to explain.
func Explain(err error) string { return ExplainFor(err, nil) }

// ExplainFor is Explain with the profile's client id, tenant, user and
// certificate thumbprint filled into the text.
func ExplainFor(err error, p *Profile) string {
	e, ok := ExplainError(err, p)
	if !ok {
		return ""
	}
	return e.String()
}

// ExplainError returns the Explanation of err, with p's details (which may
// be nil) filled in; ok is false when there is none.
func ExplainError(err error, p *Profile) (Explanation, bool) {
	if err == nil {
		return Explanation{}, false
	}
	var lre *LoginRequiredError
	if errors.As(err, &lre) && lre.TestingExpiry() {
		days := int(lre.Refused.Sub(lre.SignedIn).Hours() / 24)
		return fill(Explanation{
			Meaning: fmt.Sprintf("Google refused the refresh token %d days after the sign-in (Token has been expired or revoked.): "+
				"apps in Google's Testing status get refresh tokens that expire after 7 days", days),
			Fix: "Google Cloud console › APIs & Services › OAuth consent screen: Publish app (or make it Internal for a Workspace), " +
				"then sign in again: mailgate login {profile} (--paste without a browser)",
		}, p), true
	}
	var oe *Error
	if errors.As(err, &oe) {
		if n := oe.AADSTS(); n != 0 {
			if e, ok := explanations[n]; ok {
				e.AADSTS = n
				return fill(e, p), true
			}
		}
		if e, ok := googleExplanation(oe, p); ok {
			return e, true
		}
		if oe.Status == 429 {
			wait := "the time it asked for"
			if oe.RetryAfter > 0 {
				wait = oe.RetryAfter.String()
			}
			return fill(Explanation{
				AADSTS:  oe.AADSTS(),
				Meaning: "the token endpoint is throttling requests (HTTP 429)",
				Fix: "mailgate waits " + wait + " before asking again; if it keeps happening, let instances share one " +
					"store so cached tokens are reused instead of requested",
			}, p), true
		}
		if oe.Status >= 500 {
			return Explanation{
				AADSTS:  oe.AADSTS(),
				Meaning: fmt.Sprintf("the token endpoint failed (HTTP %d)", oe.Status),
				Fix:     "a server-side problem; mailgate retries after a pause",
			}, true
		}
		if e, ok := codeExplanations[oe.Code]; ok {
			e.AADSTS = oe.AADSTS()
			return fill(e, p), true
		}
	}
	if errors.Is(err, ErrLoginRequired) {
		return fill(Explanation{
			Meaning: "profile {profile} has no usable refresh token",
			Fix:     "sign in: mailgate login {profile} (or mailgate login {profile} --device without a browser)",
		}, p), true
	}
	if errors.Is(err, ErrDeviceCodeExpired) {
		return fill(explanations[70019], p), true
	}
	if errors.Is(err, ErrStateMismatch) {
		return Explanation{
			Meaning: "the answer to the sign-in does not carry the state that was sent",
			Fix:     "start the sign-in again and finish that one: in the browser tab it opened, or with --paste by pasting the address of the sign-in it printed (an address from an earlier sign-in is refused)",
		}, true
	}
	var ua x509.UnknownAuthorityError
	var cv x509.CertificateInvalidError
	var hn x509.HostnameError
	switch {
	case errors.As(err, &ua):
		return Explanation{
			Meaning: "the token endpoint's TLS certificate is signed by an unknown authority",
			Fix:     "behind a TLS-inspecting proxy, set tls_ca to the proxy's CA certificate (PEM)",
		}, true
	case errors.As(err, &cv), errors.As(err, &hn):
		return Explanation{
			Meaning: "the token endpoint's TLS certificate is not valid for it",
			Fix:     "check authority/token_url, the clock, and tls_ca",
		}, true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return Explanation{
			Meaning: "the token endpoint's host name does not resolve",
			Fix:     "check authority/token_url, DNS, and http_proxy (or HTTPS_PROXY) if the network needs a proxy",
		}, true
	}
	return Explanation{}, false
}

// fill substitutes the profile's details into an explanation.
func fill(e Explanation, p *Profile) Explanation {
	app, tenant, profile, user, thumb := "<app>", "<tenant>", "<profile>", "the user", "the SHA-1 thumbprint `mailgate cert` prints"
	if p != nil {
		if p.ClientID != "" {
			app = p.ClientID
		}
		if p.Tenant != "" {
			tenant = p.Tenant
		}
		if p.Name != "" {
			profile = p.Name
		}
		if p.Username != "" {
			user = p.Username
		}
		if p.Certificate != nil && p.Certificate.Cert != nil {
			thumb = "this certificate's " + Thumbprints(p.Certificate.Cert).SHA1
		}
	}
	r := strings.NewReplacer("{app}", app, "{tenant}", tenant, "{profile}", profile, "{user}", user, "{thumbprint}", thumb)
	e.Meaning = r.Replace(e.Meaning)
	e.Fix = r.Replace(e.Fix)
	return e
}
