package emulator

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// googleError is a refusal of Google's token endpoint: RFC 6749 fields only.
type googleError struct {
	status     int
	code, desc string
}

func (e *googleError) Error() string { return e.code + ": " + e.desc }

func gErr(status int, code, desc string) *googleError {
	return &googleError{status: status, code: code, desc: desc}
}

func (s *Server) googleRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /google/token", s.handleGoogleToken)
	m.HandleFunc("GET /google/authorize", s.handleGoogleAuthorize)
	m.HandleFunc("POST /google/signin", s.handleGoogleSignIn)
	m.HandleFunc("GET /google/certs/{email}", s.handleGoogleCerts)
}

// handleGoogleCerts publishes a service account's key certificates as
// Google does at client_x509_cert_url: a JSON object of PEM certificates by
// private_key_id.
func (s *Server) handleGoogleCerts(w http.ResponseWriter, r *http.Request) {
	g := s.google
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.accounts[r.PathValue("email")]
	if a == nil || a.deleted {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]any{"code": 404, "message": "Not Found"}})
		return
	}
	out := map[string]string{}
	for kid, der := range a.certs {
		out[kid] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	writeJSON(w, http.StatusOK, out)
}

// handleGoogleToken serves the JWT bearer, authorization-code and refresh
// grants as Google's token endpoint does.
func (s *Server) handleGoogleToken(w http.ResponseWriter, r *http.Request) {
	s.tokenRequests.Add(1)
	if err := readForm(r); err != nil {
		writeJSON(w, 400, map[string]string{"error": "invalid_request", "error_description": "Bad Request"})
		return
	}
	var ans map[string]any
	var ge *googleError
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "urn:ietf:params:oauth:grant-type:jwt-bearer":
		ans, ge = s.googleJWTBearer(s.base(r)+r.URL.Path, r.PostForm.Get("assertion"))
	case "authorization_code":
		ans, ge = s.googleRedeemCode(r.PostForm)
	case "refresh_token":
		ans, ge = s.googleRefresh(r.PostForm)
	case "":
		ge = gErr(400, "unsupported_grant_type", "Invalid grant_type: ")
	default:
		ge = gErr(400, "unsupported_grant_type", "Invalid grant_type: "+gt)
	}
	if ge != nil {
		s.log.Info("emulator: google token refused", "error", ge.code, "description", ge.desc)
		writeJSON(w, ge.status, map[string]string{"error": ge.code, "error_description": ge.desc})
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

// googleJWTBearer checks a service account's assertion step by step as
// Google does and issues a token for its sub.
func (s *Server) googleJWTBearer(tokenURL, assertion string) (map[string]any, *googleError) {
	if assertion == "" {
		return nil, gErr(400, "invalid_request", "Missing required parameter: assertion")
	}
	p, err := splitJWT(assertion)
	if err != nil {
		return nil, gErr(400, "invalid_grant", "Invalid JWT: could not decode the assertion")
	}
	sub := strings.ToLower(p.str("sub"))
	g := s.google
	g.mu.Lock()
	defer g.mu.Unlock()
	g.requests[sub]++
	acct := g.accounts[p.str("iss")]
	if acct == nil || acct.deleted {
		if acct != nil {
			return nil, gErr(401, "deleted_client", "The OAuth client was deleted.")
		}
		return nil, gErr(400, "invalid_grant", gBadSignature)
	}
	if acct.disabled {
		return nil, gErr(401, "disabled_client", "The OAuth client was disabled.")
	}
	if ge := acct.checkSignature(p); ge != nil {
		return nil, ge
	}
	if aud := p.str("aud"); aud != tokenURL {
		return nil, gErr(400, "invalid_grant", "Invalid JWT: Failed audience check. The expected value was "+tokenURL+", the given value was "+aud+".")
	}
	if !s.googleTimely(p) {
		return nil, gErr(400, "invalid_grant", gClock)
	}
	scopes, ge := googleScopeClaim(p.str("scope"))
	if ge != nil {
		return nil, ge
	}
	email := acct.email
	if sub != "" {
		if !g.users[sub] {
			return nil, gErr(400, "invalid_grant", gNoSuchUser)
		}
		delegated := g.delegation[acct.clientID]
		for _, sc := range scopes {
			if !delegated[sc] || g.outside[sub] {
				return nil, gErr(401, "unauthorized_client", gNotDelegated)
			}
		}
		email = sub
	}
	return s.googleAnswer(acct.clientID, email, scopes, "")
}

// checkSignature finds the key named by kid (any key without one) and
// verifies the RS256 signature.
func (a *googleAccount) checkSignature(p *jwtParts) *googleError {
	if alg, _ := p.header["alg"].(string); alg != "RS256" {
		return gErr(400, "invalid_grant", gBadSignature)
	}
	kid, _ := p.header["kid"].(string)
	for id, pub := range a.keys {
		if (kid == "" || kid == id) && p.verify(pub) == nil {
			return nil
		}
	}
	return gErr(400, "invalid_grant", gBadSignature)
}

// googleTimely checks iat and exp: exp after iat by at most an hour, iat
// not in the future and exp not past (five minutes of skew allowed).
func (s *Server) googleTimely(p *jwtParts) bool {
	iat, ok1 := p.numeric("iat")
	exp, ok2 := p.numeric("exp")
	now := s.now()
	const skew = 5 * time.Minute
	return ok1 && ok2 && exp.After(iat) && exp.Sub(iat) <= time.Hour &&
		!iat.After(now.Add(skew)) && exp.After(now.Add(-skew))
}

// googleScopeClaim splits the scope claim: space-separated known scopes.
func googleScopeClaim(claim string) ([]string, *googleError) {
	scopes := strings.Fields(claim)
	if len(scopes) == 0 {
		return nil, gErr(400, "invalid_scope", "Empty or missing scope not allowed.")
	}
	for _, sc := range scopes {
		if !slices.Contains(googleScopes, sc) {
			return nil, gErr(400, "invalid_scope", gBadScope)
		}
	}
	return scopes, nil
}

// googleAnswer issues an access token for email; refresh is added when
// given.
func (s *Server) googleAnswer(clientID, email string, scopes []string, refresh string) (map[string]any, *googleError) {
	life := time.Duration(s.lifetime.Load())
	if life <= 0 {
		life = 3599 * time.Second
	}
	now := s.now()
	jwt, err := s.sign.signJWT(map[string]any{"iss": googleIssuer, "azp": clientID, "aud": clientID, "sub": email,
		"email": email, "scope": strings.Join(scopes, " "), "iat": now.Unix(), "exp": now.Add(life).Unix()})
	if err != nil {
		return nil, gErr(500, "internal_failure", err.Error())
	}
	ans := map[string]any{"access_token": "ya29." + jwt, "expires_in": int(life.Seconds()), "token_type": "Bearer",
		"scope": strings.Join(scopes, " ")}
	if refresh != "" {
		ans["refresh_token"] = refresh
	}
	return ans, nil
}

// googleClient checks the OAuth client's id and secret.
func (g *googleState) googleClient(form url.Values) *googleError {
	if form.Get("client_id") != GoogleClientID {
		return gErr(401, "invalid_client", "The OAuth client was not found.")
	}
	if form.Get("client_secret") != g.secret {
		return gErr(401, "invalid_client", "Unauthorized")
	}
	return nil
}

func (s *Server) googleRedeemCode(form url.Values) (map[string]any, *googleError) {
	g := s.google
	g.mu.Lock()
	defer g.mu.Unlock()
	if ge := g.googleClient(form); ge != nil {
		return nil, ge
	}
	c := g.codes[form.Get("code")]
	delete(g.codes, form.Get("code"))
	switch {
	case c == nil || s.now().After(c.expires):
		return nil, gErr(400, "invalid_grant", "Malformed auth code.")
	case c.redirect != form.Get("redirect_uri"):
		return nil, gErr(400, "redirect_uri_mismatch", "Bad Request")
	case c.challenge != "" && !pkceMatches(c.method, c.challenge, form.Get("code_verifier")):
		return nil, gErr(400, "invalid_grant", "Invalid code verifier.")
	case c.challenge == "" && form.Get("code_verifier") != "":
		return nil, gErr(400, "invalid_grant", "Invalid code verifier.")
	}
	rt := "1//" + randomHex(32)
	g.rts[rt] = &googleRT{user: c.user, clientID: c.clientID, scopes: c.scopes, issued: s.now()}
	return s.googleAnswer(c.clientID, c.user, c.scopes, rt)
}

// googleRefresh redeems a refresh token; Google does not rotate it. An
// app in Testing status loses its refresh tokens after 7 days.
func (s *Server) googleRefresh(form url.Values) (map[string]any, *googleError) {
	g := s.google
	g.mu.Lock()
	defer g.mu.Unlock()
	if ge := g.googleClient(form); ge != nil {
		return nil, ge
	}
	rt := g.rts[form.Get("refresh_token")]
	if rt == nil || rt.revoked || (g.testing && s.now().Sub(rt.issued) >= googleTestingRTLife) {
		return nil, gErr(400, "invalid_grant", gExpired)
	}
	return s.googleAnswer(rt.clientID, rt.user, rt.scopes, "")
}

// handleGoogleAuthorize shows the sign-in page of an authorization request.
func (s *Server) handleGoogleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != GoogleClientID {
		s.render(w, 401, page{Title: "Sign in with Google", Error: "Error 401: invalid_client. The OAuth client was not found."})
		return
	}
	if q.Get("response_type") != "code" || q.Get("redirect_uri") == "" {
		s.render(w, 400, page{Title: "Sign in with Google", Error: "Error 400: invalid_request"})
		return
	}
	if _, ge := googleScopeClaim(q.Get("scope")); ge != nil {
		s.render(w, 400, page{Title: "Sign in with Google", Error: "Error 400: invalid_scope. " + ge.desc})
		return
	}
	id := randomHex(16)
	g := s.google
	g.mu.Lock()
	g.pending[id] = q
	g.mu.Unlock()
	s.render(w, http.StatusOK, page{Title: "Sign in with Google", App: "mailgate", Scopes: strings.Fields(q.Get("scope")),
		Action: "/google/signin", Req: id, Fields: []field{{Label: "Email", Type: "text", Name: "email"}},
		Buttons: []button{{Label: "Allow", Name: "decision", Value: "allow"}, {Label: "Cancel", Name: "decision", Value: "deny"}}})
}

// handleGoogleSignIn completes the sign-in and redirects with a code (or
// access_denied).
func (s *Server) handleGoogleSignIn(w http.ResponseWriter, r *http.Request) {
	if err := readForm(r); err != nil {
		http.Error(w, "bad form", 400)
		return
	}
	g := s.google
	g.mu.Lock()
	q := url.Values(g.pending[r.PostForm.Get("req")])
	delete(g.pending, r.PostForm.Get("req"))
	email := strings.ToLower(strings.TrimSpace(r.PostForm.Get("email")))
	known := g.users[email]
	g.mu.Unlock()
	if q == nil {
		s.render(w, 400, page{Title: "Sign in with Google", Error: "This sign-in has expired; start again."})
		return
	}
	if r.PostForm.Get("decision") != "allow" {
		googleRedirect(w, r, q, url.Values{"error": {"access_denied"}})
		return
	}
	if !known {
		s.render(w, 400, page{Title: "Sign in with Google", Error: "Couldn't find your Google Account"})
		return
	}
	code := "4/0A" + randomHex(24)
	g.mu.Lock()
	g.codes[code] = &googleCode{user: email, clientID: q.Get("client_id"), redirect: q.Get("redirect_uri"),
		challenge: q.Get("code_challenge"), method: q.Get("code_challenge_method"), scopes: strings.Fields(q.Get("scope")),
		expires: s.now().Add(10 * time.Minute)}
	g.mu.Unlock()
	googleRedirect(w, r, q, url.Values{"code": {code}, "scope": {q.Get("scope")}})
}

// googleRedirect sends the browser back to the client's redirect URI with
// the state and vals.
func googleRedirect(w http.ResponseWriter, r *http.Request, q url.Values, vals url.Values) {
	if st := q.Get("state"); st != "" {
		vals.Set("state", st)
	}
	sep := "?"
	if strings.Contains(q.Get("redirect_uri"), "?") {
		sep = "&"
	}
	http.Redirect(w, r, q.Get("redirect_uri")+sep+vals.Encode(), http.StatusFound)
}

// randomHex returns n random bytes, hex encoded: Google-style key ids,
// codes and refresh tokens.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
