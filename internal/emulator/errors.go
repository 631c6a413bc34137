package emulator

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// aadError is an error answered by the identity platform: an OAuth error
// code, an AADSTS number and its message, in Microsoft's JSON shape.
type aadError struct {
	status   int    // HTTP status
	code     string // OAuth "error"
	aadsts   int
	msg      string // text after "AADSTSnnn: "
	suberror string
	claims   string
}

func (e *aadError) Error() string { return fmt.Sprintf("AADSTS%d: %s", e.aadsts, e.msg) }

func newAAD(status int, code string, aadsts int, format string, args ...any) *aadError {
	return &aadError{status: status, code: code, aadsts: aadsts, msg: fmt.Sprintf(format, args...)}
}

// Constructors for the errors the emulator answers. The message texts follow
// the ones Microsoft's token service returns.

func errMissingParam(name string) *aadError {
	return newAAD(400, "invalid_request", 900144, "The request body must contain the following parameter: '%s'.", name)
}

func errTenantNotFound(tenant string) *aadError {
	return newAAD(400, "invalid_request", 90002, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", tenant)
}

func errAppNotFound(appID, tenant string) *aadError {
	return newAAD(400, "unauthorized_client", 700016, "Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", appID, tenant)
}

func errAppDisabled(appID string) *aadError {
	return newAAD(400, "unauthorized_client", 7000112, "Application '%s' is disabled.", appID)
}

func errBadSecret(appID string) *aadError {
	return newAAD(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", appID)
}

func errSecretExpired(appID string) *aadError {
	return newAAD(401, "invalid_client", 7000222, "The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", appID)
}

func errNoCredential() *aadError {
	return newAAD(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
}

func errPublicWithCredential() *aadError {
	return newAAD(401, "invalid_client", 700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.")
}

func errMalformedJWT() *aadError {
	return newAAD(401, "invalid_client", 50027, "JWT token is invalid or malformed.")
}

func errSubIss() *aadError {
	return newAAD(401, "invalid_client", 50048, "Subject mismatches Issuer claim in the client assertion.")
}

func errKeyNotFound(thumb, appID string) *aadError {
	return newAAD(401, "invalid_client", 700027, "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '%s', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '%s'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments#app-registration-and-token-service-root-endpoints to know more about the Graph endpoints for your cloud instance.]", thumb, appID)
}

func errBadSignature() *aadError {
	return newAAD(401, "invalid_client", 700027, "Client assertion contains an invalid signature. [Reason - The key used is expired or the signature does not verify.]")
}

func errAssertionTime(now, nbf, exp time.Time) *aadError {
	const f = "2006-01-02T15:04:05.0000000Z"
	return newAAD(401, "invalid_client", 700024, "Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
		now.UTC().Format(f), nbf.UTC().Format(f), exp.UTC().Format(f))
}

func errResourceOnV2() *aadError {
	return newAAD(400, "invalid_request", 901002, "The 'resource' request parameter isn't supported.")
}

func errCommonEndpoint() *aadError {
	return newAAD(400, "invalid_request", 9001023, "The grant type isn't supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.")
}

func errUnsupportedGrant(grant string) *aadError {
	return newAAD(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '%s'.", grant)
}

func errDefaultScopeRequired(scope string) *aadError {
	return newAAD(400, "invalid_scope", 1002012, "The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope)
}

func errScopeInvalid(scope string) *aadError {
	return newAAD(400, "invalid_scope", 70011, "The provided value for the input parameter 'scope' isn't valid. The scope %s isn't valid.", scope)
}

func errMultiResource(scope string) *aadError {
	return newAAD(400, "invalid_scope", 28000, "Provided value for the input parameter scope is not valid because it contains more than one resource. Scope %s is not valid.", scope)
}

func errResourceNotFound(resource, tenant string) *aadError {
	return newAAD(400, "invalid_resource", 500011, "The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", resource, tenant)
}

func errConsent(app *App) *aadError {
	e := newAAD(400, "invalid_grant", 65001, "The user or administrator has not consented to use the application with ID '%s' named '%s'. Send an interactive authorization request for this user and resource.", app.ID, app.Name)
	e.suberror = "consent_required"
	return e
}

func errBadPassword() *aadError {
	return newAAD(400, "invalid_grant", 50126, "Error validating credentials due to invalid username or password.")
}

func errUserNotFound(tenant string) *aadError {
	return newAAD(400, "invalid_grant", 50034, "The user account does not exist in the %s directory. To sign into this application, the account must be added to the directory.", tenant)
}

func errUserDisabled() *aadError {
	return newAAD(400, "invalid_grant", 50057, "The user account is disabled.")
}

func errMFA(resource string) *aadError {
	e := newAAD(400, "invalid_grant", 50076, "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '%s'.", resource)
	e.suberror = "basic_action"
	return e
}

func errBadGrant(param string) *aadError {
	return newAAD(400, "invalid_grant", 70000, "The provided value for the input parameter '%s' is not valid.", param)
}

func errCodeExpired() *aadError {
	return newAAD(400, "invalid_grant", 70000, "The provided value for the 'code' parameter is not valid. The code has expired.")
}

func errCodeRedeemed() *aadError {
	return newAAD(400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
}

func errPKCE() *aadError {
	return newAAD(400, "invalid_grant", 501481, "The Code_Verifier doesn't match the code_challenge supplied in the authorization request.")
}

func errRedirectMismatch(uri, appID string) *aadError {
	return newAAD(400, "invalid_grant", 50011, "The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.", uri, appID)
}

func errRTInactive(issued time.Time, inactive time.Duration) *aadError {
	return newAAD(400, "invalid_grant", 700082, "The refresh token has expired due to inactivity. The token was issued on %s and was inactive for %s.",
		issued.UTC().Format("2006-01-02T15:04:05.0000000Z"), dotnetDuration(inactive))
}

func errRTRevoked() *aadError {
	return newAAD(400, "invalid_grant", 50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.")
}

func errWrongApp() *aadError {
	return newAAD(400, "invalid_grant", 70000, "The provided value for the input parameter 'refresh_token' or 'assertion' is not valid. The grant was issued to a different client.")
}

func errPending() *aadError {
	return newAAD(400, "authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
}

func errDeclined() *aadError {
	return newAAD(400, "authorization_declined", 70016, "OAuth 2.0 device flow error. The end user denied the authorization request.")
}

func errBadDeviceCode() *aadError {
	return newAAD(400, "bad_verification_code", 70018, "Invalid verification code entered.")
}

func errDeviceExpired() *aadError {
	return newAAD(400, "expired_token", 70019, "Verification code expired.")
}

func errSlowDown() *aadError {
	return newAAD(400, "slow_down", 70016, "OAuth 2.0 device flow error. Polling too frequently; wait for the interval returned with the device code.")
}

func errAssertionType() *aadError {
	return newAAD(400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_assertion_type'.")
}

// dotnetDuration formats d as .NET's TimeSpan does in Entra messages:
// "90.00:00:00".
func dotnetDuration(d time.Duration) string {
	days := int(d / (24 * time.Hour))
	d -= time.Duration(days) * 24 * time.Hour
	h := int(d / time.Hour)
	d -= time.Duration(h) * time.Hour
	m := int(d / time.Minute)
	d -= time.Duration(m) * time.Minute
	s := int(d / time.Second)
	return fmt.Sprintf("%d.%02d:%02d:%02d", days, h, m, s)
}

// errorBody is Microsoft's token-endpoint error JSON.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri,omitempty"`
	Suberror         string `json:"suberror,omitempty"`
	Claims           string `json:"claims,omitempty"`
}

// writeAAD answers e in Microsoft's shape. The correlation id echoes the
// request's client-request-id header when it has one.
func (s *Server) writeAAD(w http.ResponseWriter, r *http.Request, e *aadError) {
	now := s.now().UTC()
	ts := now.Format("2006-01-02 15:04:05Z")
	trace := newGUID()
	corr := r.Header.Get("client-request-id")
	if corr == "" {
		corr = newGUID()
	}
	body := errorBody{
		Error:            e.code,
		ErrorDescription: fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", e.aadsts, e.msg, trace, corr, ts),
		ErrorCodes:       []int{e.aadsts},
		Timestamp:        ts,
		TraceID:          trace,
		CorrelationID:    corr,
		ErrorURI:         "https://login.microsoftonline.com/error?code=" + strconv.Itoa(e.aadsts),
		Suberror:         e.suberror,
		Claims:           e.claims,
	}
	s.log.Info("emulator: error", "path", r.URL.Path, "status", e.status, "error", e.code, "aadsts", e.aadsts)
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+s.base(r)+`"`)
	}
	writeJSON(w, e.status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// newGUID returns a random RFC 4122 version 4 UUID.
func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// randomToken returns n random bytes, base64url encoded: opaque codes and
// refresh tokens.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b64url.EncodeToString(b)
}

func itoa(n int) string { return strconv.Itoa(n) }
