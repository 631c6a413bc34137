// Package emulator is a stand-in for Microsoft Entra ID (the Microsoft
// identity platform) and for Exchange Online's token check, for tests, the
// demo and offline trials of a configuration.
//
// It is written from Microsoft's published protocol, not from what any
// mailgate client sends, and imports no other mailgate package: it is the
// other party. What it models:
//
//   - the v2.0 and v1 token endpoints (POST {tenant}/oauth2/v2.0/token and
//     {tenant}/oauth2/token) with the grants client_credentials,
//     authorization_code (PKCE S256 and plain, single-use codes that expire
//     after ten minutes), refresh_token (a new refresh token on every use; the
//     old one stays valid, as in Entra, unless strict rotation is switched on),
//     password (ROPC) and device code (both the URN and MSAL's literal
//     "device_code");
//   - client authentication by client_secret in the form, by HTTP Basic
//     (user and password URL-decoded, RFC 6749 §2.3.1), or by a JWT client
//     assertion signed RS256 or PS256 and naming the certificate by x5t or
//     x5t#S256 in either base64 alphabet, checked as Entra does: iss = sub =
//     client id, aud the exact token URL, nbf/exp within a five-minute leeway;
//   - the scope rules: client credentials need exactly one {resource}/.default
//     (the OIDC scopes MSAL adds are ignored), delegated scopes must name one
//     resource and be consented, `resource` is refused on v2;
//   - the authorize endpoint as HTML pages a plain HTTP client can drive
//     (sign-in, a one-time code for MFA users, consent) with Entra's redirect
//     URI rules (loopback ports ignored, unregistered URIs never redirected to);
//   - the device-code endpoint and its /devicelogin page;
//   - OpenID discovery documents, JWKS and MSAL's instance discovery;
//   - errors in Microsoft's exact JSON shape (error, error_description
//     "AADSTSnnn: …\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: …",
//     error_codes, timestamp, trace_id, correlation_id, error_uri, suberror)
//     with Microsoft's HTTP statuses, for the AADSTS codes administrators hit;
//   - throttling and outages on demand (Fault): 429 with a plain-text body and
//     Retry-After, 5xx temporarily_unavailable, slow answers;
//   - Exchange Online's mailbox rule for IMAP, POP and SMTP AUTH
//     (CheckMailboxAccess and POST /_emulator/exchange/check): an app-only
//     token opens a mailbox only when it carries the protocol's role, the
//     app's service principal is registered in Exchange (New-ServicePrincipal)
//     and it was granted FullAccess on that mailbox (Add-MailboxPermission);
//   - Google's token side (google.go, google_token.go): a Workspace domain,
//     a service account with a JSON key and domain-wide delegation per
//     client ID and scope, POST /google/token checking the RFC 7523 JWT
//     bearer grant step by step with Google's error texts, authorization
//     code with PKCE (GET /google/authorize), refresh without rotation and
//     the 7-day refresh tokens of apps in Testing status, the key
//     certificates at /google/certs/{email}; its access tokens ("ya29." and
//     a JWT) are checked by VerifyGoogleToken.
//
// Access tokens are RS256 JWTs in the v1 format Exchange and Graph use
// (iss https://sts.windows.net/{tid}/, ver 1.0, roles for app-only tokens,
// scp and upn for delegated ones), with a lifetime drawn from 3599–5399 s as
// Entra does unless Options.TokenLifetime fixes it.
//
// What it deliberately does not model: conditional access beyond "this user
// needs MFA", sessions and single sign-on (every authorize request signs in),
// multi-tenant apps and guest users, continuous access evaluation, token
// binding, the on-behalf-of and SAML grants; of Google, everything but the
// token side above (no consent screen states, no Gmail API).
//
// # Using it
//
//	srv, err := emulator.Start(ctx, emulator.Options{Dir: dir})
//	defer srv.Close()
//	// srv.URL() is the authority (https, CA in srv.CAFile()); the demo tenant
//	// is emulator.DemoTenantID, its confidential app emulator.DemoAppID with
//	// secret emulator.DemoAppSecret and the certificate in dir/app-cert.pem.
//	os.WriteFile("mailgate.yaml", srv.ConfigYAML(), 0o600)
//
// The demo tenant (see demo.go) has a confidential app with Exchange and Graph
// application permissions granted and FullAccess on some mailboxes but not
// all, a public app for the delegated flows, an ordinary user, a user who
// needs MFA, a disabled user and shared mailboxes. Tests change it through
// Tenant's methods, as an administrator would in the Entra admin center or
// Exchange Online PowerShell.
//
// Control routes under /_emulator/ (loopback peers only) expose statistics,
// faults, the token lifetime, device-code approval and the Exchange check to
// other processes such as Dovecot's checkpassword script.
package emulator
