package emulator

import (
	"crypto/rand"
	"net/http"
	"strings"
	"time"
)

// deviceGrant is a pending device-code authorization.
type deviceGrant struct {
	app      string
	userCode string
	scopes   []string
	expires  time.Time
	state    string // pending, approved, declined
	upn      string
	tenant   string
}

const deviceLifetime = 15 * time.Minute

// newUserCode returns an 8-letter code without look-alike letters.
func newUserCode() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	out := make([]byte, 9)
	for i := range b {
		out[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(out)
}

// handleDeviceCode serves POST {tenant}/oauth2/v2.0/devicecode.
func (s *Server) handleDeviceCode(w http.ResponseWriter, r *http.Request) {
	s.deviceRequests.Add(1)
	if s.applyFault(w, r, "devicecode") {
		return
	}
	if err := readForm(r); err != nil {
		s.writeAAD(w, r, errMissingParam("client_id"))
		return
	}
	f := r.PostForm
	seg := r.PathValue("tenant")
	if !s.tenant.matches(seg) && !strings.EqualFold(seg, "organizations") && !strings.EqualFold(seg, "common") {
		s.writeAAD(w, r, errTenantNotFound(seg))
		return
	}
	clientID := f.Get("client_id")
	if clientID == "" {
		s.writeAAD(w, r, errMissingParam("client_id"))
		return
	}
	s.tenant.mu.Lock()
	app, ok := s.tenant.apps[strings.ToLower(clientID)]
	s.tenant.mu.Unlock()
	if !ok {
		s.writeAAD(w, r, errAppNotFound(clientID, s.tenant.id))
		return
	}
	if !app.Public {
		s.writeAAD(w, r, newAAD(400, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'. Device code flow needs \"Allow public client flows\" for this app."))
		return
	}
	scopes := strings.Fields(f.Get("scope"))
	if len(scopes) == 0 {
		s.writeAAD(w, r, errMissingParam("scope"))
		return
	}
	for _, sc := range scopes {
		if _, err := parseScope(sc); err != nil {
			s.writeAAD(w, r, errScopeInvalid(sc))
			return
		}
	}
	dc := "DAQABAAEAAA" + randomToken(96)
	g := &deviceGrant{app: app.ID, userCode: newUserCode(), scopes: scopes, expires: s.now().Add(deviceLifetime), state: "pending", tenant: seg}
	s.mu.Lock()
	s.devices[dc] = g
	s.mu.Unlock()
	s.tenant.mu.Lock()
	interval := s.tenant.deviceTick
	s.tenant.mu.Unlock()
	vuri := s.base(r) + "/devicelogin"
	secs := int(interval / time.Second)
	if secs < 1 {
		secs = 1
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"user_code": g.userCode, "device_code": dc, "verification_uri": vuri,
		"expires_in": int(deviceLifetime / time.Second), "interval": secs,
		"message": "To sign in, use a web browser to open the page " + vuri + " and enter the code " + g.userCode + " to authenticate.",
	})
}

// pollDevice is the device_code grant.
func (s *Server) pollDevice(w http.ResponseWriter, r *http.Request, req *tokenRequest) *aadError {
	dc := req.form.Get("device_code")
	if dc == "" {
		return errMissingParam("device_code")
	}
	s.mu.Lock()
	g, ok := s.devices[dc]
	var c deviceGrant
	if ok {
		c = *g
		if c.state == "approved" && !s.now().After(c.expires) {
			delete(s.devices, dc)
		}
	}
	s.mu.Unlock()
	switch {
	case !ok || !strings.EqualFold(c.app, req.app.ID):
		return errBadDeviceCode()
	case s.now().After(c.expires):
		return errDeviceExpired()
	case c.state == "declined":
		return errDeclined()
	case c.state == "pending":
		return errPending()
	}
	s.tenant.mu.Lock()
	u, found := s.tenant.user(c.upn)
	var user User
	if found {
		user = *u
	}
	s.tenant.mu.Unlock()
	if !found {
		return errUserNotFound(s.tenant.domain)
	}
	return s.delegated(w, r, req, &user, c.scopes)
}

// findDevice returns the pending grant with this user code.
func (s *Server) findDevice(userCode string) (*deviceGrant, bool) {
	userCode = strings.ToUpper(strings.TrimSpace(userCode))
	for _, g := range s.devices {
		if g.userCode == userCode && g.state == "pending" && s.now().Before(g.expires) {
			return g, true
		}
	}
	return nil, false
}

// decideDevice approves (after checking consent) or declines a device
// code for upn.
func (s *Server) decideDevice(userCode, upn string, approve bool) *aadError {
	s.mu.Lock()
	g, ok := s.findDevice(userCode)
	s.mu.Unlock()
	if !ok {
		return errBadDeviceCode()
	}
	if approve {
		s.tenant.mu.Lock()
		app := s.tenant.apps[strings.ToLower(g.app)]
		s.tenant.mu.Unlock()
		if missing := s.missingConsent(app, upn, g.scopes); len(missing) > 0 {
			if err := s.tenant.GrantDelegatedConsent(g.app, upn, missing...); err != nil {
				return newAAD(500, "server_error", 90033, "%s", err.Error())
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if approve {
		g.state, g.upn = "approved", upn
	} else {
		g.state = "declined"
	}
	return nil
}

// handleDeviceLogin serves /devicelogin: enter the code, sign in, approve.
// Consent for the requested permissions is given by approving.
func (s *Server) handleDeviceLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		s.render(w, http.StatusOK, page{Title: "Enter code", Action: "/devicelogin",
			Text:    "Enter the code displayed on your app or device.",
			Fields:  []field{{Label: "Code", Type: "text", Name: "otc"}, {Label: "Email", Type: "text", Name: "username"}, {Label: "Password", Type: "password", Name: "password"}, {Label: "MFA code (if asked)", Type: "text", Name: "mfa"}},
			Buttons: []button{{Label: "Sign in and allow", Name: "action", Value: "approve"}, {Label: "Cancel", Name: "action", Value: "decline"}}})
		return
	}
	if err := readForm(r); err != nil {
		s.errorPage(w, newAAD(400, "invalid_request", 900144, "The request body could not be parsed."))
		return
	}
	f := r.PostForm
	s.mu.Lock()
	_, ok := s.findDevice(f.Get("otc"))
	s.mu.Unlock()
	if !ok {
		s.render(w, http.StatusBadRequest, page{Title: "Enter code", Error: errBadDeviceCode().Error()})
		return
	}
	if f.Get("action") == "decline" {
		_ = s.decideDevice(f.Get("otc"), "", false)
		s.render(w, http.StatusOK, page{Title: "Cancelled", Text: "You declined to sign in. You may now close this window."})
		return
	}
	u, e := s.signIn(f.Get("username"), f.Get("password"))
	if e == nil && u.MFA && f.Get("mfa") != u.MFACode {
		e = newAAD(400, "invalid_grant", 50074, "Strong Authentication is required. Enter the code from your authenticator app.")
	}
	if e != nil {
		s.render(w, http.StatusBadRequest, page{Title: "Sign in", Error: e.Error()})
		return
	}
	if e := s.decideDevice(f.Get("otc"), u.UPN, true); e != nil {
		s.render(w, http.StatusBadRequest, page{Title: "Sign in", Error: e.Error()})
		return
	}
	s.render(w, http.StatusOK, page{Title: "Signed in", Text: "You have signed in as " + u.UPN + ". You may now close this window."})
}
