package oauth

import (
	"net/url"
	"strings"
)

// Google's OAuth 2.0 endpoints. Google answers plain RFC 6749 errors, does
// not rotate refresh tokens (a refresh response carries none, so the stored
// one is kept), and only returns a refresh token from the authorization
// code grant when access_type=offline is asked; prompt=consent makes it
// return one again when the user had already consented.
const (
	googleTokenURL     = "https://oauth2.googleapis.com/token"
	googleAuthorizeURL = "https://accounts.google.com/o/oauth2/v2/auth"
	googleDeviceURL    = "https://oauth2.googleapis.com/device/code"
)

func googleEndpoints() Endpoints {
	return Endpoints{Token: googleTokenURL, Authorize: googleAuthorizeURL, Device: googleDeviceURL}
}

// googleAuthorizeParams asks for a refresh token on the authorization
// request.
func googleAuthorizeParams(q url.Values) {
	q.Set("access_type", "offline")
	q.Set("prompt", "consent")
}

// GoogleReason names one of the refusals Google's token endpoint gives
// that share an error code and differ only in error_description.
type GoogleReason string

// Google's refusals, as GoogleReasonOf classifies them.
const (
	GoogleNone            GoogleReason = ""
	GoogleNotDelegated    GoogleReason = "not_delegated"      // unauthorized_client: no domain-wide delegation for the client or scope
	GoogleNoSuchUser      GoogleReason = "no_such_user"       // invalid_grant "Invalid email or User ID"
	GoogleBadSignature    GoogleReason = "bad_signature"      // invalid_grant "Invalid JWT Signature."
	GoogleClockSkew       GoogleReason = "clock_skew"         // invalid_grant "Invalid JWT: Token must be a short-lived token…"
	GoogleExpiredOrRevoke GoogleReason = "expired_or_revoked" // invalid_grant "Token has been expired or revoked."
	GoogleRobotDisabled   GoogleReason = "robot_disabled"     // invalid_grant "Robot is disabled."
	GoogleBadScope        GoogleReason = "bad_scope"          // invalid_scope
	GoogleDisabledClient  GoogleReason = "disabled_client"    // disabled_client
	GoogleDeletedClient   GoogleReason = "deleted_client"     // deleted_client
	GoogleOrgInternal     GoogleReason = "org_internal"       // org_internal
)

// googleDescriptions are the starts of the error_description texts Google
// sends for invalid_grant; the error code alone does not tell them apart.
var googleDescriptions = []struct {
	prefix string
	reason GoogleReason
}{
	{"Invalid email or User ID", GoogleNoSuchUser},
	{"Not a valid email", GoogleNoSuchUser},
	{"Invalid JWT Signature", GoogleBadSignature},
	{"Invalid JWT: Token must be a short-lived token", GoogleClockSkew},
	{"Token has been expired or revoked", GoogleExpiredOrRevoke},
	{"Robot is disabled", GoogleRobotDisabled},
}

// GoogleReasonOf classifies e by Google's error code and description;
// GoogleNone when it is none of Google's known refusals.
func GoogleReasonOf(e *Error) GoogleReason {
	if e == nil {
		return GoogleNone
	}
	switch e.Code {
	case "unauthorized_client":
		return GoogleNotDelegated
	case "invalid_scope":
		return GoogleBadScope
	case "disabled_client":
		return GoogleDisabledClient
	case "deleted_client":
		return GoogleDeletedClient
	case "org_internal":
		return GoogleOrgInternal
	case "invalid_grant":
		for _, d := range googleDescriptions {
			if strings.HasPrefix(e.Description, d.prefix) {
				return d.reason
			}
		}
	}
	return GoogleNone
}

// DomainWideDelegationPath is where a Workspace admin grants a service
// account's client ID its scopes.
const DomainWideDelegationPath = "Admin console › Security › Access and data control › API controls › Domain-wide delegation"

// googleExplanations explain Google's refusals. In the texts {app} is the
// client ID, {scopes} the scopes comma-separated (as the Admin console
// takes them), {subject} the user impersonated, {account} the service
// account's e-mail and {profile} the profile.
var googleExplanations = map[GoogleReason]Explanation{
	GoogleNotDelegated: {
		Meaning: "the service account is not allowed to act for {subject}: domain-wide delegation is not granted to client ID {app}, or not for scope {scopes}",
		Fix: DomainWideDelegationPath + " › Add new (or edit the entry of {app}): Client ID {app}, OAuth scopes {scopes}; " +
			"a new grant can take minutes (up to 24 hours) to apply",
	},
	GoogleNoSuchUser: {
		Meaning: "{subject} is not a user of the Workspace domain (sub claim)",
		Fix:     "set subject (or the mailbox's username) to the user's primary e-mail address in Admin console › Directory › Users",
	},
	GoogleBadSignature: {
		Meaning: "Google does not know the key that signed the assertion: the key of {account} was deleted or disabled, or the file is not its current key",
		Fix: "Google Cloud console › IAM & Admin › Service accounts › {account} › Keys: check the key ID, or Add key › " +
			"Create new key › JSON and point service_account_key at it",
	},
	GoogleClockSkew: {
		Meaning: "Google refused the assertion's iat/exp: this machine's clock is off",
		Fix:     "synchronise the clock (NTP, e.g. timedatectl set-ntp true); the assertion is valid for one hour from now",
	},
	GoogleExpiredOrRevoke: {
		Meaning: "Google says the refresh token has expired or been revoked",
		Fix: "sign in again: mailgate login {profile} (--paste without a browser); a refresh token unused for 6 months, " +
			"or beyond Google's 100 per user and client, expires too",
	},
	GoogleRobotDisabled: {
		Meaning: "the service account {account} is disabled",
		Fix:     "Google Cloud console › IAM & Admin › Service accounts › {account}: Enable",
	},
	GoogleBadScope: {
		Meaning: "Google refused the scope: it is empty, unknown, or several scopes were joined with commas instead of spaces",
		Fix:     "list each scope as its own item of scopes (https://mail.google.com/ for IMAP, POP and SMTP)",
	},
	GoogleDisabledClient: {
		Meaning: "the OAuth client or service account key {app} is disabled",
		Fix:     "Google Cloud console › IAM & Admin › Service accounts (or APIs & Services › Credentials): enable it, or create a new key",
	},
	GoogleDeletedClient: {
		Meaning: "the OAuth client or service account {app} was deleted",
		Fix:     "create a new service account key (or OAuth client) in the Google Cloud console and update the profile",
	},
	GoogleOrgInternal: {
		Meaning: "the app is Internal to another Google Workspace organization than the user's",
		Fix:     "sign in with a user of the app's organization, or make the app External on the OAuth consent screen",
	},
}

// googleExplanation explains one of Google's refusals.
func googleExplanation(oe *Error, p *Profile) (Explanation, bool) {
	if p != nil && p.provider() != ProviderGoogle && !p.serviceAccount() {
		return Explanation{}, false
	}
	reason := GoogleReasonOf(oe)
	if reason == GoogleNotDelegated && (p == nil && !googleText(oe) || p != nil && !p.serviceAccount()) {
		return Explanation{}, false
	}
	if p == nil && reason != GoogleNone && oe.Code != "invalid_grant" && !googleText(oe) {
		return Explanation{}, false
	}
	e, ok := googleExplanations[reason]
	if !ok {
		return Explanation{}, false
	}
	subject, scopes, account := "the user", "https://mail.google.com/", "the service account"
	if p != nil {
		if p.Subject != "" {
			subject = p.Subject
		}
		if len(p.Scopes) > 0 {
			scopes = strings.Join(dedupe(p.Scopes), ",")
		}
		if p.ServiceAccount != nil && p.ServiceAccount.ClientEmail != "" {
			account = p.ServiceAccount.ClientEmail
		}
	}
	r := strings.NewReplacer("{subject}", subject, "{scopes}", scopes, "{account}", account)
	e.Meaning = r.Replace(e.Meaning)
	e.Fix = r.Replace(e.Fix)
	return fill(e, p), true
}

// googleText reports whether an unauthorized_client or invalid_scope
// answer carries one of Google's own descriptions (for explanations made
// without the profile).
func googleText(oe *Error) bool {
	for _, p := range []string{"Client is unauthorized to retrieve access tokens", "Unauthorized client or scope in request",
		"Invalid OAuth scope", "The OAuth client was disabled"} {
		if strings.HasPrefix(oe.Description, p) {
			return true
		}
	}
	return oe.Code == "deleted_client" || oe.Code == "disabled_client" || oe.Code == "org_internal"
}
