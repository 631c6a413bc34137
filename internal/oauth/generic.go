package oauth

import (
	"net/http"
	"net/url"
)

// Generic RFC 6749 providers have no built-in endpoints: Profile.TokenURL is
// required, AuthorizeURL for the authorization-code grant and DeviceAuthURL
// for the device grant (RFC 8628). Scopes are sent as given (no
// offline_access is added), and AuthStyleBasic is there for servers that
// accept only client_secret_basic.

// setBasicAuth sets client_secret_basic credentials. RFC 6749 §2.3.1 has the
// client id and secret form-URL-encoded before they are joined with a colon
// and base64-encoded, so a secret containing ':' or '%' survives.
func setBasicAuth(req *http.Request, clientID, secret string) {
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
}
