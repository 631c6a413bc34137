package oauth

import "net/url"

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
