package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// routes is the mux both listeners serve.
func (s *Server) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("/{tenant}/oauth2/v2.0/token", s.handleToken(false))
	m.HandleFunc("/{tenant}/oauth2/token", s.handleToken(true))
	m.HandleFunc("/{tenant}/oauth2/v2.0/authorize", s.handleAuthorize(false))
	m.HandleFunc("/{tenant}/oauth2/authorize", s.handleAuthorize(true))
	m.HandleFunc("POST /{tenant}/oauth2/v2.0/devicecode", s.handleDeviceCode)
	m.HandleFunc("POST /{tenant}/oauth2/devicecode", s.handleDeviceCode)
	m.HandleFunc("POST /{tenant}/login", s.handleLogin)
	m.HandleFunc("POST /{tenant}/consent", s.handleConsent)
	m.HandleFunc("/devicelogin", s.handleDeviceLogin)
	m.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.handleOpenID(false))
	m.HandleFunc("GET /{tenant}/.well-known/openid-configuration", s.handleOpenID(true))
	m.HandleFunc("GET /{tenant}/discovery/v2.0/keys", s.handleKeys)
	m.HandleFunc("GET /{tenant}/discovery/keys", s.handleKeys)
	m.HandleFunc("GET /common/discovery/instance", s.handleInstance)
	m.HandleFunc("GET /common/userrealm/{user}", s.handleUserRealm)
	m.HandleFunc("GET /common/UserRealm/{user}", s.handleUserRealm)

	s.graphRoutes(m)
	s.googleRoutes(m)

	m.Handle("GET /_emulator/stats", s.loopbackOnly(s.handleStats))
	m.Handle("POST /_emulator/faults", s.loopbackOnly(s.handleAddFault))
	m.Handle("DELETE /_emulator/faults", s.loopbackOnly(func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	}))
	m.Handle("POST /_emulator/token-lifetime", s.loopbackOnly(s.handleLifetime))
	m.Handle("POST /_emulator/device/approve", s.loopbackOnly(s.handleDeviceDecision(true)))
	m.Handle("POST /_emulator/device/decline", s.loopbackOnly(s.handleDeviceDecision(false)))
	m.Handle("POST /_emulator/exchange/check", s.loopbackOnly(s.handleExchangeCheck))
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s.render(w, http.StatusOK, page{Title: "Entra ID emulator",
			Text: "Tenant " + s.tenant.id + " (" + s.tenant.domain + "). Token endpoint: " + s.base(r) + "/" + s.tenant.id + "/oauth2/v2.0/token"})
	})
	return m
}

// loopbackOnly refuses control requests from non-loopback peers.
func (s *Server) loopbackOnly(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			http.Error(w, "control routes answer loopback peers only", http.StatusForbidden)
			return
		}
		h(w, r)
	})
}

func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	faults := len(s.faults)
	s.mu.Unlock()
	s.google.mu.Lock()
	google := maps.Clone(s.google.requests)
	s.google.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"google_token_requests": google, // JWT bearer requests by subject
		"token_requests":        s.tokenRequests.Load(),
		"devicecode_requests":   s.deviceRequests.Load(),
		"faults":                faults,
		"tenant":                s.tenant.id,
	})
}

// faultJSON is Fault on the wire: durations in seconds.
type faultJSON struct {
	Status     int     `json:"status"`
	RetryAfter float64 `json:"retry_after"`
	PlainText  bool    `json:"plain_text"`
	Delay      float64 `json:"delay"`
	Count      int     `json:"count"`
	Route      string  `json:"route"`
}

func (s *Server) handleAddFault(w http.ResponseWriter, r *http.Request) {
	var f faultJSON
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&f); err != nil {
		http.Error(w, "fault: "+err.Error(), http.StatusBadRequest)
		return
	}
	if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
		http.Error(w, "fault: status must be 400..599 or 0", http.StatusBadRequest)
		return
	}
	s.InjectFault(Fault{Status: f.Status, RetryAfter: time.Duration(f.RetryAfter * float64(time.Second)), PlainText: f.PlainText,
		Delay: time.Duration(f.Delay * float64(time.Second)), Count: f.Count, Route: f.Route})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleLifetime(w http.ResponseWriter, r *http.Request) {
	if err := readForm(r); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	secs, err := strconv.Atoi(r.PostForm.Get("seconds"))
	if err != nil || secs < 0 {
		http.Error(w, "seconds: want a whole number ≥ 0", http.StatusBadRequest)
		return
	}
	s.SetTokenLifetime(time.Duration(secs) * time.Second)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleDeviceDecision(approve bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := readForm(r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		upn := r.PostForm.Get("upn")
		if upn == "" {
			upn = DemoUser
		}
		if e := s.decideDevice(r.PostForm.Get("user_code"), upn, approve); e != nil {
			s.writeAAD(w, r, e)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// ApproveDevice approves a device code as upn would on /devicelogin.
func (s *Server) ApproveDevice(userCode, upn string) error {
	if e := s.decideDevice(userCode, upn, true); e != nil {
		return fmt.Errorf("emulator: %w", e)
	}
	return nil
}

// DeclineDevice declines a device code.
func (s *Server) DeclineDevice(userCode string) error {
	if e := s.decideDevice(userCode, "", false); e != nil {
		return fmt.Errorf("emulator: %w", e)
	}
	return nil
}

// handleExchangeCheck answers Dovecot's check script: may this token open
// this mailbox over this protocol?
func (s *Server) handleExchangeCheck(w http.ResponseWriter, r *http.Request) {
	if err := readForm(r); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f := r.PostForm
	user, token, service := strings.TrimSpace(f.Get("user")), strings.TrimSpace(f.Get("token")), f.Get("service")
	if err := s.CheckMailboxAccess(token, user, service); err != nil {
		s.log.Info("emulator: exchange refused", "user", user, "service", service, "reason", err.Error())
		writeJSON(w, http.StatusOK, map[string]any{"active": false, "reason": err.Error()})
		return
	}
	s.log.Info("emulator: exchange allowed", "user", user, "service", service)
	writeJSON(w, http.StatusOK, map[string]any{"active": true, "username": strings.ToLower(user)})
}

var exchangeAudiences = []string{"https://outlook.office365.com", "https://outlook.office.com", "https://ps.outlook.com", ExchangeAppID}

// CheckMailboxAccess applies Exchange Online's rule for IMAP, POP and SMTP
// AUTH (service "imap", "pop3" or "submission"/"smtp"): a valid token of this
// tenant for Exchange; an app-only token needs the protocol's application
// permission, the app's service principal registered in Exchange and
// FullAccess on the mailbox; a delegated token needs the protocol's
// delegated permission and must be the mailbox's owner or hold FullAccess
// on it. The error says what is missing in Exchange's terms.
func (s *Server) CheckMailboxAccess(token, mailbox, service string) error {
	if token == "" {
		return errors.New("no token presented")
	}
	c, err := s.VerifyAccessToken(token)
	if err != nil {
		return err
	}
	if c.Tid != s.tenant.id {
		return fmt.Errorf("the token was issued by tenant %s, not this organisation (%s)", c.Tid, s.tenant.id)
	}
	if !slices.Contains(exchangeAudiences, strings.TrimRight(c.Aud, "/")) {
		return fmt.Errorf("the token is for %s, not Exchange Online: request scope https://outlook.office365.com/.default (app-only) or https://outlook.office.com/... (delegated)", c.Aud)
	}
	var role, scp string
	switch service {
	case "imap":
		role, scp = "IMAP.AccessAsApp", "IMAP.AccessAsUser.All"
	case "pop3", "pop":
		role, scp = "POP.AccessAsApp", "POP.AccessAsUser.All"
	case "submission", "smtp":
		role, scp = "SMTP.SendAsApp", "SMTP.Send"
	default:
		return fmt.Errorf("unknown service %q: want imap, pop3 or submission", service)
	}
	t := s.tenant
	t.mu.Lock()
	defer t.mu.Unlock()
	mb := strings.ToLower(mailbox)
	if !t.mailboxes[mb] {
		return fmt.Errorf("mailbox %s does not exist in %s", mailbox, t.domain)
	}
	if c.Idtyp == "app" {
		if !slices.Contains(c.Roles, role) {
			return fmt.Errorf("the app-only token has no %s role: add the Office 365 Exchange Online application permission %s to app %s and grant admin consent", role, role, c.AppID)
		}
		sp, ok := t.exoSPs[strings.ToLower(c.AppID)]
		if !ok {
			app := t.apps[strings.ToLower(c.AppID)]
			oid := "<enterprise application object id>"
			if app != nil {
				oid = app.ObjectID
			}
			return fmt.Errorf("the service principal of app %s is not registered in Exchange Online: New-ServicePrincipal -AppId %s -ObjectId %s", c.AppID, c.AppID, oid)
		}
		if !t.hasPerm(mb, c.AppID, "FullAccess") {
			return fmt.Errorf("app %s has no access to mailbox %s: Add-MailboxPermission -Identity %s -User %s -AccessRights FullAccess", c.AppID, mailbox, mailbox, sp)
		}
		return nil
	}
	if !slices.Contains(c.Scopes(), scp) {
		return fmt.Errorf("the delegated token has no %s permission: request scope https://outlook.office.com/%s", scp, scp)
	}
	if u, ok := t.user(c.Upn); !ok || u.Disabled {
		return fmt.Errorf("user %s cannot sign in", c.Upn)
	}
	if strings.EqualFold(c.Upn, mailbox) || t.hasPerm(mb, c.Upn, "FullAccess") {
		return nil
	}
	return fmt.Errorf("user %s has no access to mailbox %s: Add-MailboxPermission -Identity %s -User %s -AccessRights FullAccess", c.Upn, mailbox, mailbox, c.Upn)
}

// CheckSendAs applies Exchange's SendAs rule for SMTP submission: may the
// token's principal send as from? (554 5.2.252 SendAsDenied otherwise.)
func (s *Server) CheckSendAs(token, from string) error {
	c, err := s.VerifyAccessToken(token)
	if err != nil {
		return err
	}
	t := s.tenant
	t.mu.Lock()
	defer t.mu.Unlock()
	principal := c.Upn
	if c.Idtyp == "app" {
		principal = c.AppID
	}
	if strings.EqualFold(principal, from) || t.hasPerm(from, principal, "SendAs") {
		return nil
	}
	return fmt.Errorf("%s not allowed to send as %s: Add-RecipientPermission -Identity %s -Trustee %s -AccessRights SendAs", principal, from, from, principal)
}
