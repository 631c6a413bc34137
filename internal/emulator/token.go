package emulator

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const deviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code"

// tokenRequest is one call of a token endpoint being handled.
type tokenRequest struct {
	v1     bool
	form   url.Values
	app    *App
	acr    string // appidacr: 0 public, 1 secret, 2 certificate
	tenant string // the path segment as sent
}

// handleToken serves POST {tenant}/oauth2/v2.0/token (v1 false) and
// {tenant}/oauth2/token (v1 true).
func (s *Server) handleToken(v1 bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.tokenRequests.Add(1)
		if s.applyFault(w, r, "token") {
			return
		}
		if r.Method != http.MethodPost {
			s.writeAAD(w, r, newAAD(400, "invalid_request", 900561, "The endpoint only accepts POST, OPTIONS requests. Received a %s request.", r.Method))
			return
		}
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			s.writeAAD(w, r, errMissingParam("grant_type"))
			return
		}
		if err := readForm(r); err != nil {
			s.writeAAD(w, r, newAAD(400, "invalid_request", 900144, "The request body could not be parsed: %s", err.Error()))
			return
		}
		req := &tokenRequest{v1: v1, form: r.PostForm, tenant: r.PathValue("tenant")}
		if e := s.token(w, r, req); e != nil {
			s.writeAAD(w, r, e)
		}
	}
}

func (s *Server) token(w http.ResponseWriter, r *http.Request, req *tokenRequest) *aadError {
	f := req.form
	grant := f.Get("grant_type")
	if grant == "" {
		return errMissingParam("grant_type")
	}
	switch grant {
	case "client_credentials", "authorization_code", "refresh_token", "password", deviceCodeGrant, "device_code":
	default:
		return errUnsupportedGrant(grant)
	}
	if !req.v1 && f.Has("resource") {
		return errResourceOnV2()
	}
	basicUser, basicPass, hasBasic := r.BasicAuth()
	if hasBasic {
		basicUser, _ = url.QueryUnescape(basicUser)
		basicPass, _ = url.QueryUnescape(basicPass)
	}
	clientID := f.Get("client_id")
	if clientID == "" {
		clientID = basicUser
	}
	if clientID == "" {
		return errMissingParam("client_id")
	}
	seg := strings.ToLower(req.tenant)
	switch {
	case seg == "common" || seg == "consumers":
		if grant == "client_credentials" || grant == "password" {
			return errCommonEndpoint()
		}
	case seg == "organizations":
		if grant == "client_credentials" {
			return errCommonEndpoint()
		}
	case !s.tenant.matches(seg):
		return errTenantNotFound(req.tenant)
	}
	s.tenant.mu.Lock()
	app, ok := s.tenant.apps[strings.ToLower(clientID)]
	s.tenant.mu.Unlock()
	if !ok {
		return errAppNotFound(clientID, s.tenant.id)
	}
	if app.Disabled {
		return errAppDisabled(app.ID)
	}
	req.app = app
	secret := f.Get("client_secret")
	if secret == "" && hasBasic {
		secret = basicPass
	}
	acr, e := s.authenticateClient(r, req, secret)
	if e != nil {
		return e
	}
	req.acr = acr
	switch grant {
	case "client_credentials":
		return s.clientCredentials(w, r, req)
	case "authorization_code":
		return s.redeemCode(w, r, req)
	case "refresh_token":
		return s.refresh(w, r, req)
	case "password":
		return s.password(w, r, req)
	default:
		return s.pollDevice(w, r, req)
	}
}

// authenticateClient checks the client's credential: none for public
// clients; a secret or an assertion for confidential ones.
func (s *Server) authenticateClient(r *http.Request, req *tokenRequest, secret string) (string, *aadError) {
	f, app := req.form, req.app
	assertion, atype := f.Get("client_assertion"), f.Get("client_assertion_type")
	if app.Public {
		if secret != "" || assertion != "" {
			return "", errPublicWithCredential()
		}
		if f.Get("grant_type") == "client_credentials" {
			return "", errNoCredential()
		}
		return "0", nil
	}
	switch {
	case secret != "":
		s.tenant.mu.Lock()
		defer s.tenant.mu.Unlock()
		for _, sec := range app.secrets {
			if subtle.ConstantTimeCompare([]byte(sec.Value), []byte(secret)) == 1 {
				if !sec.Expires.IsZero() && !s.now().Before(sec.Expires) {
					return "", errSecretExpired(app.ID)
				}
				return "1", nil
			}
		}
		return "", errBadSecret(app.ID)
	case assertion != "" || atype != "":
		if atype == "" {
			return "", errAssertionType()
		}
		if atype != jwtBearer {
			return "", newAAD(400, "invalid_request", 50027, "Invalid client_assertion_type '%s'. Expected '%s'.", atype, jwtBearer)
		}
		if assertion == "" {
			return "", errMissingParam("client_assertion")
		}
		if e := s.checkAssertion(r, app, assertion); e != nil {
			return "", e
		}
		return "2", nil
	}
	return "", errNoCredential()
}

// clientCredentials issues an app-only token: exactly one
// {resource}/.default on v2, a resource on v1.
func (s *Server) clientCredentials(w http.ResponseWriter, r *http.Request, req *tokenRequest) *aadError {
	var res *resource
	var aud string
	if req.v1 {
		raw := req.form.Get("resource")
		if raw == "" {
			return errMissingParam("resource")
		}
		var ok bool
		if res, ok = findResource(raw); !ok {
			return errResourceNotFound(raw, s.tenant.id)
		}
		aud = strings.TrimRight(raw, "/")
	} else {
		raw := req.form.Get("scope")
		if raw == "" {
			return errMissingParam("scope")
		}
		var defaults []string
		for _, sc := range strings.Fields(raw) {
			switch sc {
			case "openid", "profile", "email", "offline_access":
				continue
			}
			if !strings.HasSuffix(sc, "/.default") {
				return errDefaultScopeRequired(raw)
			}
			defaults = append(defaults, sc)
		}
		switch len(defaults) {
		case 0:
			return errDefaultScopeRequired(raw)
		case 1:
		default:
			return errMultiResource(raw)
		}
		uri := strings.TrimSuffix(defaults[0], "/.default")
		var ok bool
		if res, ok = findResource(uri); !ok {
			return errResourceNotFound(uri, s.tenant.id)
		}
		aud = strings.ToLower(strings.TrimRight(uri, "/"))
	}
	if aud == strings.ToLower(res.appID) {
		aud = res.uris[0]
	}
	s.tenant.mu.Lock()
	roles := slices.Clone(req.app.roles[res.appID])
	oid := req.app.ObjectID
	s.tenant.mu.Unlock()
	now := s.now()
	life := s.tokenLifetime()
	claims := s.baseClaims(req, aud, now, life)
	claims["idtyp"] = "app"
	claims["oid"] = oid
	claims["sub"] = oid
	if len(roles) > 0 {
		claims["roles"] = roles
	}
	at, err := s.sign.signJWT(claims)
	if err != nil {
		return newAAD(500, "server_error", 90033, "signing failed")
	}
	s.log.Info("emulator: token issued", "grant", "client_credentials", "app", req.app.ID, "aud", aud, "acr", req.acr)
	s.writeTokens(w, req, tokenResult{access: at, life: life, now: now, resource: aud})
	return nil
}

// baseClaims are the claims every access token carries.
func (s *Server) baseClaims(req *tokenRequest, aud string, now time.Time, life time.Duration) map[string]any {
	issued := now.Add(-5 * time.Minute)
	return map[string]any{
		"aud": aud, "iss": "https://sts.windows.net/" + s.tenant.id + "/",
		"iat": issued.Unix(), "nbf": issued.Unix(), "exp": now.Add(life).Unix(),
		"aio": randomToken(24), "app_displayname": req.app.Name, "appid": req.app.ID, "appidacr": req.acr,
		"idp": "https://sts.windows.net/" + s.tenant.id + "/", "rh": "0." + randomToken(32),
		"tid": s.tenant.id, "uti": randomToken(16), "ver": "1.0",
	}
}

type tokenResult struct {
	access, refresh, id string
	scope               string // granted scopes (v2 "scope")
	resource            string // v1 "resource"
	life                time.Duration
	now                 time.Time
	clientInfo          string
}

// writeTokens answers a successful token request: numbers in v2, strings
// and expires_on/not_before/resource in v1.
func (s *Server) writeTokens(w http.ResponseWriter, req *tokenRequest, t tokenResult) {
	secs := int64(t.life / time.Second)
	body := map[string]any{"token_type": "Bearer", "access_token": t.access}
	if req.v1 {
		body["expires_in"] = strconv.FormatInt(secs, 10)
		body["ext_expires_in"] = strconv.FormatInt(secs, 10)
		body["expires_on"] = strconv.FormatInt(t.now.Unix()+secs, 10)
		body["not_before"] = strconv.FormatInt(t.now.Add(-5*time.Minute).Unix(), 10)
		body["resource"] = t.resource
		if t.scope != "" {
			body["scope"] = t.scope
		}
	} else {
		body["expires_in"] = secs
		body["ext_expires_in"] = secs
		if t.scope != "" {
			body["scope"] = t.scope
		}
	}
	if t.refresh != "" {
		body["refresh_token"] = t.refresh
	}
	if t.id != "" {
		body["id_token"] = t.id
	}
	if t.clientInfo != "" {
		body["client_info"] = t.clientInfo
	}
	writeJSON(w, http.StatusOK, body)
}

// delegated issues a user token for scopes (v2) or the form's resource (v1)
// after checking consent; it issues a refresh token when offline_access was
// asked for (always on v1) and an ID token when openid was.
func (s *Server) delegated(w http.ResponseWriter, r *http.Request, req *tokenRequest, u *User, scopes []string) *aadError {
	var res *resource
	var aud string
	var wanted []string // requested permissions of res, ".default" for all consented
	want := map[string]bool{}
	if req.v1 {
		raw := req.form.Get("resource")
		if raw == "" {
			raw = "https://graph.microsoft.com"
		}
		var ok bool
		if res, ok = findResource(raw); !ok {
			return errResourceNotFound(raw, s.tenant.id)
		}
		aud = strings.TrimRight(raw, "/")
		wanted = []string{".default"}
		want["offline_access"] = true
		for _, sc := range strings.Fields(req.form.Get("scope")) {
			want[sc] = true
		}
	} else {
		for _, raw := range scopes {
			sc, err := parseScope(raw)
			if err != nil {
				if sc.res == nil && !sc.oidc {
					return errResourceNotFound(sc.uri, s.tenant.id)
				}
				return errScopeInvalid(raw)
			}
			if sc.oidc {
				want[sc.raw] = true
				continue
			}
			if res != nil && res != sc.res {
				return errMultiResource(strings.Join(scopes, " "))
			}
			res, aud = sc.res, sc.uri
			wanted = append(wanted, sc.perm)
		}
		if res == nil {
			res, aud = &resources[1], "https://graph.microsoft.com"
			wanted = []string{"User.Read"}
		}
	}
	s.tenant.mu.Lock()
	granted := s.tenant.consented(req.app.ID, u.UPN, res)
	s.tenant.mu.Unlock()
	for _, p := range wanted {
		if p == ".default" && len(granted) == 0 || p != ".default" && !slices.Contains(granted, p) {
			return errConsent(req.app)
		}
	}
	now := s.now()
	life := s.tokenLifetime()
	claims := s.baseClaims(req, aud, now, life)
	claims["idtyp"] = "user"
	claims["oid"] = u.ObjectID
	claims["sub"] = u.ObjectID
	claims["upn"] = u.UPN
	claims["unique_name"] = u.UPN
	claims["name"] = u.Name
	claims["scp"] = strings.Join(granted, " ")
	claims["amr"] = []string{"pwd"}
	if u.MFA {
		claims["amr"] = []string{"pwd", "mfa"}
	}
	at, err := s.sign.signJWT(claims)
	if err != nil {
		return newAAD(500, "server_error", 90033, "signing failed")
	}
	res2 := tokenResult{access: at, life: life, now: now, resource: aud}
	var shown []string
	for _, g := range granted {
		if res.appID == GraphAppID {
			shown = append(shown, g)
		} else {
			shown = append(shown, aud+"/"+g)
		}
	}
	for _, o := range []string{"openid", "profile", "email"} {
		if want[o] {
			shown = append(shown, o)
		}
	}
	res2.scope = strings.Join(shown, " ")
	if want["offline_access"] {
		s.tenant.mu.Lock()
		res2.refresh = s.tenant.issueRT(req.app.ID, u.UPN, scopes)
		s.tenant.mu.Unlock()
		if !req.v1 {
			res2.scope += " offline_access"
		}
	}
	if want["openid"] {
		id, err := s.idToken(r, req, u, now)
		if err != nil {
			return newAAD(500, "server_error", 90033, "signing failed")
		}
		res2.id = id
	}
	if req.form.Get("client_info") == "1" {
		ci, _ := json.Marshal(map[string]string{"uid": u.ObjectID, "utid": s.tenant.id})
		res2.clientInfo = b64url.EncodeToString(ci)
	}
	s.log.Info("emulator: token issued", "grant", req.form.Get("grant_type"), "app", req.app.ID, "user", u.UPN, "aud", aud)
	s.writeTokens(w, req, res2)
	return nil
}

// idToken is a v2.0 ID token for the app.
func (s *Server) idToken(r *http.Request, req *tokenRequest, u *User, now time.Time) (string, error) {
	return s.sign.signJWT(map[string]any{
		"aud": req.app.ID, "iss": s.base(r) + "/" + s.tenant.id + "/v2.0",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"name": u.Name, "oid": u.ObjectID, "preferred_username": u.UPN, "sub": u.ObjectID,
		"tid": s.tenant.id, "ver": "2.0", "nonce": req.form.Get("nonce"),
	})
}

// password is the resource-owner password credentials grant.
func (s *Server) password(w http.ResponseWriter, r *http.Request, req *tokenRequest) *aadError {
	name, pw := req.form.Get("username"), req.form.Get("password")
	if name == "" {
		return errMissingParam("username")
	}
	if pw == "" {
		return errMissingParam("password")
	}
	u, e := s.signIn(name, pw)
	if e != nil {
		return e
	}
	scopes := strings.Fields(req.form.Get("scope"))
	if u.MFA {
		res := "https://graph.microsoft.com"
		for _, sc := range scopes {
			if p, err := parseScope(sc); err == nil && !p.oidc {
				res = p.res.appID
				break
			}
		}
		return errMFA(res)
	}
	return s.delegated(w, r, req, u, scopes)
}

// signIn checks a user's password.
func (s *Server) signIn(name, pw string) (*User, *aadError) {
	s.tenant.mu.Lock()
	u, ok := s.tenant.user(name)
	var c User
	if ok {
		c = *u
	}
	s.tenant.mu.Unlock()
	if !ok {
		return nil, errUserNotFound(s.tenant.domain)
	}
	if c.Disabled {
		return nil, errUserDisabled()
	}
	if subtle.ConstantTimeCompare([]byte(c.Password), []byte(pw)) != 1 {
		return nil, errBadPassword()
	}
	return &c, nil
}

// refresh redeems a refresh token: a new access token and a new refresh
// token; the old one stays valid unless strict rotation is on.
func (s *Server) refresh(w http.ResponseWriter, r *http.Request, req *tokenRequest) *aadError {
	v := req.form.Get("refresh_token")
	if v == "" {
		return errMissingParam("refresh_token")
	}
	s.tenant.mu.Lock()
	rt, e := s.tenant.useRT(v, req.app.ID)
	var u User
	var found bool
	var prev []string
	if e == nil {
		var p *User
		p, found = s.tenant.user(rt.upn)
		if found {
			u = *p
		}
		prev = rt.scopes
	}
	s.tenant.mu.Unlock()
	if e != nil {
		return e
	}
	if !found {
		return errUserNotFound(s.tenant.domain)
	}
	if u.Disabled {
		return errUserDisabled()
	}
	scopes := strings.Fields(req.form.Get("scope"))
	if len(scopes) == 0 {
		scopes = prev
	}
	if !slices.Contains(scopes, "offline_access") {
		scopes = append(scopes, "offline_access")
	}
	return s.delegated(w, r, req, &u, scopes)
}
