package emulator

import (
	"crypto/sha256"
	"crypto/subtle"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// authRequest is an authorize request waiting for sign-in and consent.
type authRequest struct {
	id           string
	v1           bool
	tenant       string
	app          *App
	redirectURI  string
	state        string
	scopes       []string
	challenge    string
	method       string
	responseMode string
	nonce        string
	prompt       string
	loginHint    string
	upn          string // signed in (after password, and MFA code when needed)
	mfaPending   bool
	expires      time.Time
}

// authCode is an issued authorization code.
type authCode struct {
	app         string
	upn         string
	redirectURI string
	scopes      []string
	challenge   string
	method      string
	nonce       string
	expires     time.Time
	used        bool
}

const codeLifetime = 10 * time.Minute

// redirectAllowed applies Entra's redirect URI rule: an exact match of a
// registered URI, except that for http://localhost and http://127.0.0.1 the
// port is ignored; a missing path is "/".
func redirectAllowed(app *App, raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Fragment != "" {
		return false
	}
	norm := func(u *url.URL) string {
		p := u.Path
		if p == "" {
			p = "/"
		}
		host := u.Host
		if u.Scheme == "http" && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1" || u.Hostname() == "::1") {
			host = u.Hostname()
		}
		return strings.ToLower(u.Scheme) + "://" + strings.ToLower(host) + p
	}
	got := norm(u)
	for _, reg := range app.RedirectURIs {
		ru, err := url.Parse(reg)
		if err != nil {
			continue
		}
		if norm(ru) == got {
			return true
		}
	}
	return false
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} – mailgate Entra ID emulator</title>
<style>body{font-family:sans-serif;max-width:32rem;margin:3rem auto}label{display:block;margin:.6rem 0}
input[type=text],input[type=password]{width:100%;padding:.4rem}.err{color:#a00}</style></head>
<body><h1>{{.Title}}</h1>
<p><small>mailgate Entra ID emulator · tenant {{.Tenant}}</small></p>
{{if .Error}}<p class="err" id="error">{{.Error}}</p>{{end}}
{{if .Text}}<p id="message">{{.Text}}</p>{{end}}
{{if .Scopes}}<p><b>{{.App}}</b> asks for:</p><ul>{{range .Scopes}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .Action}}<form method="post" action="{{.Action}}" id="form">
<input type="hidden" name="req" value="{{.Req}}">
{{range .Fields}}<label>{{.Label}} <input type="{{.Type}}" name="{{.Name}}" value="{{.Value}}" autocomplete="off"></label>{{end}}
{{range .Buttons}}<button type="submit" name="{{.Name}}" value="{{.Value}}">{{.Label}}</button> {{end}}
</form>{{end}}
{{if .AutoPost}}<form method="post" action="{{.AutoPost}}" id="autopost">{{range $k, $v := .PostFields}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}</form>
<script>document.getElementById('autopost').submit()</script>{{end}}
</body></html>`))

type field struct{ Label, Type, Name, Value string }
type button struct{ Label, Name, Value string }

type page struct {
	Title, Tenant, Error, Text, App, Action, Req, AutoPost string
	Scopes                                                 []string
	Fields                                                 []field
	Buttons                                                []button
	PostFields                                             map[string]string
}

func (s *Server) render(w http.ResponseWriter, status int, p page) {
	p.Tenant = s.tenant.domain
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, p)
}

// errorPage shows an AADSTS error to the user without redirecting, as Entra
// does when it cannot trust the redirect URI.
func (s *Server) errorPage(w http.ResponseWriter, e *aadError) {
	s.render(w, e.status, page{Title: "Sign in", Error: e.Error()})
}

// handleAuthorize serves GET {tenant}/oauth2/v2.0/authorize (and v1).
func (s *Server) handleAuthorize(v1 bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.applyFault(w, r, "authorize") {
			return
		}
		q := r.URL.Query()
		if r.Method == http.MethodPost {
			if err := readForm(r); err == nil {
				q = r.Form
			}
		}
		seg := r.PathValue("tenant")
		if !s.tenant.matches(seg) && !slices.Contains([]string{"common", "organizations"}, strings.ToLower(seg)) {
			s.errorPage(w, errTenantNotFound(seg))
			return
		}
		clientID := q.Get("client_id")
		if clientID == "" {
			s.errorPage(w, errMissingParam("client_id"))
			return
		}
		s.tenant.mu.Lock()
		app, ok := s.tenant.apps[strings.ToLower(clientID)]
		s.tenant.mu.Unlock()
		if !ok {
			s.errorPage(w, errAppNotFound(clientID, s.tenant.id))
			return
		}
		redirect := q.Get("redirect_uri")
		if redirect == "" && len(app.RedirectURIs) > 0 {
			redirect = app.RedirectURIs[0]
		}
		if !redirectAllowed(app, redirect) {
			s.errorPage(w, newAAD(400, "invalid_request", 50011, "The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.", redirect, app.ID))
			return
		}
		ar := &authRequest{id: randomToken(18), v1: v1, tenant: seg, app: app, redirectURI: redirect,
			state: q.Get("state"), challenge: q.Get("code_challenge"), method: q.Get("code_challenge_method"),
			responseMode: q.Get("response_mode"), nonce: q.Get("nonce"), prompt: q.Get("prompt"),
			loginHint: q.Get("login_hint"), expires: s.now().Add(15 * time.Minute)}
		if app.Disabled {
			s.redirectError(w, r, ar, "unauthorized_client", errAppDisabled(app.ID))
			return
		}
		if rt := q.Get("response_type"); rt != "code" {
			s.redirectError(w, r, ar, "unsupported_response_type", newAAD(400, "unsupported_response_type", 70005, "response_type '%s' is not enabled for the application.", rt))
			return
		}
		if v1 {
			res := q.Get("resource")
			if res == "" {
				res = "https://graph.microsoft.com"
			}
			ar.scopes = []string{strings.TrimRight(res, "/") + "/.default"}
		} else {
			ar.scopes = strings.Fields(q.Get("scope"))
			if len(ar.scopes) == 0 {
				s.redirectError(w, r, ar, "invalid_request", errMissingParam("scope"))
				return
			}
			for _, sc := range ar.scopes {
				if _, err := parseScope(sc); err != nil {
					s.redirectError(w, r, ar, "invalid_scope", errScopeInvalid(sc))
					return
				}
			}
		}
		if ar.challenge != "" && ar.method == "" {
			ar.method = "plain"
		}
		if ar.method != "" && ar.method != "S256" && ar.method != "plain" {
			s.redirectError(w, r, ar, "invalid_request", newAAD(400, "invalid_request", 50027, "Invalid code_challenge_method '%s'.", ar.method))
			return
		}
		if ar.prompt == "none" {
			s.redirectError(w, r, ar, "login_required", newAAD(400, "login_required", 50058, "A silent sign-in request was sent but no user is signed in."))
			return
		}
		s.mu.Lock()
		s.pending[ar.id] = ar
		s.mu.Unlock()
		s.loginPage(w, ar, "")
	}
}

func (s *Server) loginPage(w http.ResponseWriter, ar *authRequest, msg string) {
	s.render(w, http.StatusOK, page{Title: "Sign in", Error: msg, App: ar.app.Name, Action: "/" + ar.tenant + "/login", Req: ar.id,
		Text: "Sign in to continue to " + ar.app.Name + ".",
		Fields: []field{{Label: "Email", Type: "text", Name: "username", Value: ar.loginHint},
			{Label: "Password", Type: "password", Name: "password"}},
		Buttons: []button{{Label: "Sign in", Name: "action", Value: "signin"}}})
}

// pendingRequest finds the authorize request named by the form's req.
func (s *Server) pendingRequest(w http.ResponseWriter, r *http.Request) (*authRequest, bool) {
	if err := readForm(r); err != nil {
		s.errorPage(w, newAAD(400, "invalid_request", 900144, "The request body could not be parsed."))
		return nil, false
	}
	s.mu.Lock()
	ar, ok := s.pending[r.PostForm.Get("req")]
	s.mu.Unlock()
	if !ok || s.now().After(ar.expires) {
		s.errorPage(w, newAAD(400, "invalid_request", 50058, "The sign-in request is unknown or expired. Start again from the application."))
		return nil, false
	}
	return ar, true
}

// handleLogin serves the sign-in form's POST: password, then the MFA code
// for users who need one, then consent when the app lacks it.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	ar, ok := s.pendingRequest(w, r)
	if !ok {
		return
	}
	f := r.PostForm
	if ar.mfaPending {
		s.tenant.mu.Lock()
		u, _ := s.tenant.user(ar.upn)
		code := ""
		if u != nil {
			code = u.MFACode
		}
		s.tenant.mu.Unlock()
		if subtle.ConstantTimeCompare([]byte(f.Get("otc")), []byte(code)) != 1 {
			s.mfaPage(w, ar, "AADSTS50074: Strong Authentication is required. The code you entered is not correct.")
			return
		}
		ar.mfaPending = false
		s.afterSignIn(w, r, ar)
		return
	}
	u, e := s.signIn(f.Get("username"), f.Get("password"))
	if e != nil {
		ar.loginHint = f.Get("username")
		s.loginPage(w, ar, e.Error())
		return
	}
	ar.upn = u.UPN
	if u.MFA {
		ar.mfaPending = true
		s.mfaPage(w, ar, "")
		return
	}
	s.afterSignIn(w, r, ar)
}

func (s *Server) mfaPage(w http.ResponseWriter, ar *authRequest, msg string) {
	s.render(w, http.StatusOK, page{Title: "Verify your identity", Error: msg, Action: "/" + ar.tenant + "/login", Req: ar.id,
		Text:    "Enter the code from your authenticator app.",
		Fields:  []field{{Label: "Code", Type: "text", Name: "otc"}},
		Buttons: []button{{Label: "Verify", Name: "action", Value: "verify"}}})
}

// missingConsent lists the requested permissions (app, user) lacks.
func (s *Server) missingConsent(app *App, upn string, scopes []string) []string {
	s.tenant.mu.Lock()
	defer s.tenant.mu.Unlock()
	var missing []string
	for _, raw := range scopes {
		sc, err := parseScope(raw)
		if err != nil || sc.oidc {
			continue
		}
		granted := s.tenant.consented(app.ID, upn, sc.res)
		if sc.perm == ".default" && len(granted) == 0 || sc.perm != ".default" && !slices.Contains(granted, sc.perm) {
			missing = append(missing, raw)
		}
	}
	return missing
}

func (s *Server) afterSignIn(w http.ResponseWriter, r *http.Request, ar *authRequest) {
	missing := s.missingConsent(ar.app, ar.upn, ar.scopes)
	if len(missing) == 0 && ar.prompt != "consent" {
		s.issueCode(w, r, ar)
		return
	}
	if len(missing) == 0 {
		missing = ar.scopes
	}
	s.render(w, http.StatusOK, page{Title: "Permissions requested", App: ar.app.Name, Scopes: missing,
		Action: "/" + ar.tenant + "/consent", Req: ar.id,
		Text:    "Signed in as " + ar.upn + ". Accept to let the app use these permissions.",
		Buttons: []button{{Label: "Accept", Name: "consent", Value: "accept"}, {Label: "Cancel", Name: "consent", Value: "decline"}}})
}

// handleConsent serves the consent form's POST.
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	ar, ok := s.pendingRequest(w, r)
	if !ok {
		return
	}
	if ar.upn == "" || ar.mfaPending {
		s.loginPage(w, ar, "Sign in first.")
		return
	}
	if r.PostForm.Get("consent") != "accept" {
		s.redirectError(w, r, ar, "access_denied", newAAD(400, "access_denied", 65004, "User declined to consent to access the app."))
		return
	}
	var perms []string
	for _, sc := range ar.scopes {
		if p, err := parseScope(sc); err == nil && !p.oidc && p.perm != ".default" {
			perms = append(perms, sc)
		}
	}
	if err := s.tenant.GrantDelegatedConsent(ar.app.ID, ar.upn, perms...); err != nil {
		s.redirectError(w, r, ar, "server_error", newAAD(500, "server_error", 90033, "%s", err.Error()))
		return
	}
	s.issueCode(w, r, ar)
}

// issueCode finishes an authorize request with a code.
func (s *Server) issueCode(w http.ResponseWriter, r *http.Request, ar *authRequest) {
	code := "1.A" + randomToken(96)
	s.mu.Lock()
	delete(s.pending, ar.id)
	s.codes[code] = &authCode{app: ar.app.ID, upn: ar.upn, redirectURI: ar.redirectURI, scopes: ar.scopes,
		challenge: ar.challenge, method: ar.method, nonce: ar.nonce, expires: s.now().Add(codeLifetime)}
	s.mu.Unlock()
	s.log.Info("emulator: code issued", "app", ar.app.ID, "user", ar.upn)
	s.respond(w, r, ar, url.Values{"code": {code}, "session_state": {newGUID()}})
}

// redirectError sends an error back to the (validated) redirect URI.
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, ar *authRequest, code string, e *aadError) {
	s.mu.Lock()
	delete(s.pending, ar.id)
	s.mu.Unlock()
	s.respond(w, r, ar, url.Values{"error": {code}, "error_description": {e.Error()},
		"error_codes": {itoa(e.aadsts)}, "error_uri": {"https://login.microsoftonline.com/error?code=" + itoa(e.aadsts)}})
}

// respond returns params to the client by query redirect or form_post.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, ar *authRequest, params url.Values) {
	if ar.state != "" {
		params.Set("state", ar.state)
	}
	if ar.responseMode == "form_post" {
		fields := map[string]string{}
		for k := range params {
			fields[k] = params.Get(k)
		}
		s.render(w, http.StatusOK, page{Title: "Continue", AutoPost: ar.redirectURI, PostFields: fields})
		return
	}
	u, _ := url.Parse(ar.redirectURI)
	q := u.Query()
	for k := range params {
		q.Set(k, params.Get(k))
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// redeemCode is the authorization_code grant.
func (s *Server) redeemCode(w http.ResponseWriter, r *http.Request, req *tokenRequest) *aadError {
	f := req.form
	code := f.Get("code")
	if code == "" {
		return errMissingParam("code")
	}
	s.mu.Lock()
	c, ok := s.codes[code]
	var snapshot authCode
	var wasUsed bool
	if ok {
		snapshot, wasUsed = *c, c.used
		c.used = true
	}
	s.mu.Unlock()
	switch {
	case !ok:
		return errBadGrant("code")
	case wasUsed:
		return errCodeRedeemed()
	case !strings.EqualFold(snapshot.app, req.app.ID):
		return newAAD(400, "invalid_grant", 70000, "The provided value for the 'code' parameter is not valid. The code was issued to a different client.")
	case s.now().After(snapshot.expires):
		return errCodeExpired()
	}
	if ru := f.Get("redirect_uri"); ru != snapshot.redirectURI {
		if ru == "" {
			return errMissingParam("redirect_uri")
		}
		return errRedirectMismatch(ru, req.app.ID)
	}
	if snapshot.challenge != "" {
		v := f.Get("code_verifier")
		if v == "" {
			return errMissingParam("code_verifier")
		}
		if !pkceMatches(snapshot.method, snapshot.challenge, v) {
			return errPKCE()
		}
	}
	s.tenant.mu.Lock()
	u, found := s.tenant.user(snapshot.upn)
	var user User
	if found {
		user = *u
	}
	s.tenant.mu.Unlock()
	if !found {
		return errUserNotFound(s.tenant.domain)
	}
	if snapshot.nonce != "" && !f.Has("nonce") {
		req.form.Set("nonce", snapshot.nonce)
	}
	scopes := strings.Fields(f.Get("scope"))
	if len(scopes) == 0 || req.v1 {
		scopes = snapshot.scopes
	}
	if req.v1 && !f.Has("resource") {
		for _, sc := range snapshot.scopes {
			if p, err := parseScope(sc); err == nil && !p.oidc {
				req.form.Set("resource", p.uri)
			}
		}
	}
	return s.delegated(w, r, req, &user, scopes)
}

// pkceMatches checks a code_verifier against the challenge (RFC 7636 §4.6).
func pkceMatches(method, challenge, verifier string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	want := verifier
	if method == "S256" {
		sum := sha256.Sum256([]byte(verifier))
		want = b64url.EncodeToString(sum[:])
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}
