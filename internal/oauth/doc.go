// Package oauth is mailgate's token engine: it gets, caches, refreshes and
// persists OAuth 2.0 access tokens for Microsoft Entra ID, Google and
// generic RFC 6749 servers, and explains their refusals.
//
// It owns the providers (entra.go, google.go, generic.go), the grants
// (client credentials with a secret or a certificate, authorization code
// with PKCE and a loopback browser login, device code, refresh token,
// resource-owner password), client assertions, the token cache with its
// persistence contract (Store), the typed refusal (Error) and the AADSTS
// explanations (Explain). It imports no other mailgate package.
//
// # Specifications followed
//
//   - RFC 6749 (OAuth 2.0): grants §4.1, §4.3, §4.4, refresh §6, token and
//     error responses §5, client authentication §2.3.1 (Basic credentials
//     form-URL-encoded first; a secret goes in the body or in Basic, never
//     both).
//   - RFC 7636 (PKCE, S256 only) and RFC 8628 (device authorization grant,
//     with slow_down).
//   - RFC 7523 and RFC 7515/7518 (JWT client assertions): Microsoft's
//     "certificate credentials" — PS256 with an x5t#S256 header by default,
//     RS256 with x5t on request; aud is the exact token URL, iss = sub =
//     client id, a random jti, nbf now, exp ten minutes later, and a fresh
//     assertion for every request.
//   - Microsoft identity platform v2.0 endpoints
//     ({authority}/{tenant}/oauth2/v2.0/token|authorize|devicecode) and the
//     v1.0 token endpoint (resource instead of scope, numbers as strings,
//     expires_on); Microsoft's error body (error_codes, trace and
//     correlation ids, suberror, claims) and plain-text 429 answers with
//     Retry-After (RFC 9110 §10.2.3).
//
// # The TokenSource stack
//
// Like golang.org/x/oauth2, tokens come through layers, each a
// TokenSource-like step:
//
//  1. the cache (Manager.Token): memory, then the Store (so a new process,
//     such as each `mailgate token` run, reuses the token of the last one),
//     then one fetch per (profile, scope set) at a time that every other
//     caller waits for; tokens are replaced a margin before expiry (5
//     minutes, or a fifth of the lifetime for tokens living less than twice
//     that), and a 429/5xx makes later calls fail fast until its
//     Retry-After has passed; a cached token obtained with other profile
//     settings (secret, certificate, authority, tenant, client id, user,
//     scopes: the binding, see binding.go) is not used, and a refresh
//     token issued to another client, tenant or authority is not sent;
//  2. the refresher: for delegated grants, the profile's refresh token
//     from the Store is redeemed; a rotated refresh token is saved to the
//     Store before the new access token is cached or returned, and if that
//     save fails the caller gets the error, not the token;
//  3. the grant: client credentials (or the password grant) when there is
//     no refresh token; for the interactive grants, a LoginRequiredError
//     that says to run `mailgate login`.
//
// Step 2 exists because of the trap in golang/oauth2 issue #84: its
// TokenSource refreshes inside itself and never hands the rotated refresh
// token back, so a program that persisted only the first refresh token
// keeps presenting an old one. Entra keeps old refresh tokens working for a
// while, so such programs run for weeks and then fail together with
// AADSTS700082 ("inactive for 90 days") or 50173. Here the refresh token
// never lives in a TokenSource: it is read from the Store for each refresh
// and written back before anything else happens.
//
// # Use
//
//  1. Build a Profile (cli turns a config profile into one), with
//     HTTPClient from NewHTTPClient when a proxy or extra CA is needed, and
//     check it with Validate; print Warnings.
//  2. Create one Manager per process over the application's Store
//     (NewMemoryStore without a database): NewManager(store, opts).
//  3. For delegated grants, sign in once: Manager.Login (browser on this
//     machine) or Manager.DeviceLogin (code typed elsewhere); a web console
//     uses StartAuthorization, AuthorizationRequest.Code and
//     CompleteAuthorization, then Manager.Accept.
//  4. Call Manager.Token(ctx, profile, scopes) whenever a token is needed
//     (or hand Manager.Source to protocol code); after a server says the
//     token is no longer valid, call Manager.Invalidate and ask again.
//     To prove that the credentials work now (a Test button), call
//     Manager.Fresh: it always asks the server, and its failure leaves
//     the cached token in place for the other callers.
//  5. Show ExplainFor(err, profile) next to an error: for Entra refusals it
//     names the AADSTS meaning and the admin-center path to fix it.
//
// The package-level grant functions (ClientCredentials, Refresh, Password,
// Login, DeviceLogin) perform one exchange without caching, for tests and
// diagnostics.
//
// Secrets never reach logs by construction: Token, Profile,
// ClientCertificate and AuthorizationRequest implement fmt.Stringer,
// fmt.GoStringer and slog.LogValuer with redactions, and only
// Token.AccessToken yields the bearer value.
package oauth
