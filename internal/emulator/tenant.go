package emulator

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Resource identifiers of the first-party APIs the emulator knows.
const (
	ExchangeAppID = "00000002-0000-0ff1-ce00-000000000000" // Office 365 Exchange Online
	GraphAppID    = "00000003-0000-0000-c000-000000000000" // Microsoft Graph
)

// resource is a first-party API an app can ask a token for.
type resource struct {
	appID     string
	uris      []string // application ID URIs it answers to
	delegated []string // delegated permissions (scp)
	roles     []string // application permissions (roles)
}

var resources = []resource{
	{
		appID: ExchangeAppID,
		uris:  []string{"https://outlook.office365.com", "https://outlook.office.com", "https://ps.outlook.com"},
		delegated: []string{"IMAP.AccessAsUser.All", "POP.AccessAsUser.All", "SMTP.Send", "EWS.AccessAsUser.All",
			"Mail.Read", "Mail.ReadWrite", "Mail.Send"},
		roles: []string{"IMAP.AccessAsApp", "POP.AccessAsApp", "SMTP.SendAsApp", "full_access_as_app"},
	},
	{
		appID: GraphAppID,
		uris:  []string{"https://graph.microsoft.com"},
		delegated: []string{"User.Read", "Mail.Read", "Mail.ReadWrite", "Mail.Send", "Mail.Read.Shared",
			"Mail.ReadWrite.Shared", "Mail.Send.Shared", "offline_access", "openid", "profile", "email"},
		roles: []string{"Mail.Read", "Mail.ReadWrite", "Mail.Send", "User.Read.All"},
	},
}

// findResource resolves an application ID URI (or a resource app id) to
// its resource; ok is false for an unknown one.
func findResource(uri string) (*resource, bool) {
	uri = strings.TrimRight(strings.ToLower(uri), "/")
	for i := range resources {
		r := &resources[i]
		if strings.EqualFold(uri, r.appID) {
			return r, true
		}
		for _, u := range r.uris {
			if u == uri {
				return r, true
			}
		}
	}
	return nil, false
}

// App is an app registration with its enterprise application (service
// principal) in the tenant.
type App struct {
	ID           string   // application (client) id
	Name         string   // display name
	Public       bool     // "Allow public client flows": no credential, delegated grants only
	RedirectURIs []string // registered redirect URIs
	Disabled     bool     // the enterprise application is disabled for sign-in
	ObjectID     string   // service principal object id in Entra (set by AddApp)

	secrets []Secret
	certs   []*x509.Certificate
	roles   map[string][]string // resource app id → granted application permissions
}

// Secret is a client secret ("Certificates & secrets" in the portal): its
// ID is shown next to it, its Value only once, at creation.
type Secret struct {
	ID      string
	Value   string
	Expires time.Time // zero: never
}

// User is a member account of the tenant; it has a mailbox of the same
// address.
type User struct {
	UPN      string
	Name     string
	Password string
	MFA      bool   // conditional access requires MFA: ROPC fails with AADSTS50076
	MFACode  string // the one-time code the sign-in page asks MFA users for
	Disabled bool
	ObjectID string // set by AddUser
}

type refreshToken struct {
	appID    string
	upn      string
	issued   time.Time
	lastUsed time.Time
	rotated  bool
	revoked  bool
	scopes   []string // as requested when issued: the default for the next refresh
}

// Tenant is one emulated directory with its Exchange Online organisation:
// app registrations, users, consent, service principals registered in
// Exchange and mailbox permissions. All methods are safe for concurrent use.
type Tenant struct {
	id     string
	domain string

	mu         sync.Mutex
	apps       map[string]*App
	users      map[string]*User           // by lower-case UPN
	mailboxes  map[string]bool            // lower-case addresses: users' and shared
	consent    map[string]map[string]bool // appID + "|" + upn ("" = admin) → resource appID + "/" + perm
	exoSPs     map[string]string          // appID → service principal id registered in Exchange
	perms      map[string]map[string]bool // lower mailbox → principal (appID or lower UPN) + "|" + right
	rts        map[string]*refreshToken
	rtMaxIdle  time.Duration
	strictRT   bool
	deviceTick time.Duration
	now        func() time.Time
	// graphDenied: application access policies denying an app a mailbox
	graphDenied map[string]bool
}

func newTenant(id, domain string, now func() time.Time) *Tenant {
	return &Tenant{
		id: id, domain: domain,
		apps: map[string]*App{}, users: map[string]*User{}, mailboxes: map[string]bool{},
		consent: map[string]map[string]bool{}, exoSPs: map[string]string{}, perms: map[string]map[string]bool{},
		rts: map[string]*refreshToken{}, rtMaxIdle: 90 * 24 * time.Hour, deviceTick: 5 * time.Second, now: now,
	}
}

// ID returns the tenant id (a GUID).
func (t *Tenant) ID() string { return t.id }

// Domain returns the tenant's verified domain.
func (t *Tenant) Domain() string { return t.domain }

// matches reports whether the path segment names this tenant.
func (t *Tenant) matches(seg string) bool {
	return strings.EqualFold(seg, t.id) || strings.EqualFold(seg, t.domain)
}

// AddApp registers an app (and its service principal in Entra). The app has
// no credential and no permission until they are added.
func (t *Tenant) AddApp(a App) *App {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := a
	if c.ObjectID == "" {
		c.ObjectID = newGUID()
	}
	c.roles = map[string][]string{}
	t.apps[strings.ToLower(c.ID)] = &c
	return &c
}

// App returns a copy of the registration of appID.
func (t *Tenant) App(appID string) (App, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, ok := t.apps[strings.ToLower(appID)]
	if !ok {
		return App{}, false
	}
	return *a, true
}

func (t *Tenant) app(appID string) (*App, error) {
	a, ok := t.apps[strings.ToLower(appID)]
	if !ok {
		return nil, fmt.Errorf("emulator: no app %q", appID)
	}
	return a, nil
}

// SetAppDisabled disables or enables sign-in for an app.
func (t *Tenant) SetAppDisabled(appID string, disabled bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, err := t.app(appID)
	if err != nil {
		return err
	}
	a.Disabled = disabled
	return nil
}

// AddSecret adds a client secret to an app.
func (t *Tenant) AddSecret(appID string, s Secret) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, err := t.app(appID)
	if err != nil {
		return err
	}
	a.secrets = append(a.secrets, s)
	return nil
}

// RemoveSecrets deletes every client secret of an app.
func (t *Tenant) RemoveSecrets(appID string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, err := t.app(appID)
	if err != nil {
		return err
	}
	a.secrets = nil
	return nil
}

// AddCertificate uploads a certificate (public key) to an app.
func (t *Tenant) AddCertificate(appID string, cert *x509.Certificate) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, err := t.app(appID)
	if err != nil {
		return err
	}
	a.certs = append(a.certs, cert)
	return nil
}

// RemoveCertificates deletes every certificate of an app.
func (t *Tenant) RemoveCertificates(appID string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, err := t.app(appID)
	if err != nil {
		return err
	}
	a.certs = nil
	return nil
}

// findCert looks a registered certificate up by SHA-1 or SHA-256
// thumbprint (raw bytes).
func (a *App) findCert(sha1Thumb, sha256Thumb []byte) *x509.Certificate {
	for _, c := range a.certs {
		if sha1Thumb != nil {
			sum := sha1.Sum(c.Raw)
			if string(sum[:]) == string(sha1Thumb) {
				return c
			}
		}
		if sha256Thumb != nil {
			sum := sha256.Sum256(c.Raw)
			if string(sum[:]) == string(sha256Thumb) {
				return c
			}
		}
	}
	return nil
}

// AddUser creates a user with a mailbox.
func (t *Tenant) AddUser(u User) *User {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := u
	if c.ObjectID == "" {
		c.ObjectID = newGUID()
	}
	if c.Name == "" {
		c.Name = c.UPN
	}
	key := strings.ToLower(c.UPN)
	t.users[key] = &c
	t.mailboxes[key] = true
	return &c
}

// SetUserDisabled blocks or allows sign-in for a user.
func (t *Tenant) SetUserDisabled(upn string, disabled bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	u, ok := t.users[strings.ToLower(upn)]
	if !ok {
		return fmt.Errorf("emulator: no user %q", upn)
	}
	u.Disabled = disabled
	return nil
}

func (t *Tenant) user(upn string) (*User, bool) {
	u, ok := t.users[strings.ToLower(upn)]
	return u, ok
}

// AddSharedMailbox creates a shared mailbox (no sign-in of its own).
func (t *Tenant) AddSharedMailbox(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mailboxes[strings.ToLower(addr)] = true
}

// HasMailbox reports whether addr is a mailbox of the tenant.
func (t *Tenant) HasMailbox(addr string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mailboxes[strings.ToLower(addr)]
}

// GrantAppRoles grants application permissions of a resource (an
// application ID URI such as https://outlook.office365.com, or its app id)
// with admin consent.
func (t *Tenant) GrantAppRoles(appID, resourceURI string, roles ...string) error {
	res, ok := findResource(resourceURI)
	if !ok {
		return fmt.Errorf("emulator: unknown resource %q", resourceURI)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	a, err := t.app(appID)
	if err != nil {
		return err
	}
	for _, r := range roles {
		if !slices.Contains(res.roles, r) {
			return fmt.Errorf("emulator: %s has no application permission %q", resourceURI, r)
		}
		if !slices.Contains(a.roles[res.appID], r) {
			a.roles[res.appID] = append(a.roles[res.appID], r)
		}
	}
	return nil
}

// RevokeAppRoles removes granted application permissions of a resource.
func (t *Tenant) RevokeAppRoles(appID, resourceURI string, roles ...string) error {
	res, ok := findResource(resourceURI)
	if !ok {
		return fmt.Errorf("emulator: unknown resource %q", resourceURI)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	a, err := t.app(appID)
	if err != nil {
		return err
	}
	a.roles[res.appID] = slices.DeleteFunc(a.roles[res.appID], func(r string) bool { return slices.Contains(roles, r) })
	return nil
}

// GrantDelegatedConsent records consent of delegated permissions: for one
// user, or with upn "" admin consent for every user. Scopes are full
// (https://outlook.office.com/IMAP.AccessAsUser.All) or Graph short names.
func (t *Tenant) GrantDelegatedConsent(appID, upn string, scopes ...string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.app(appID); err != nil {
		return err
	}
	key := strings.ToLower(appID) + "|" + strings.ToLower(upn)
	if t.consent[key] == nil {
		t.consent[key] = map[string]bool{}
	}
	for _, s := range scopes {
		sc, err := parseScope(s)
		if err != nil {
			return err
		}
		if sc.oidc {
			continue
		}
		t.consent[key][sc.res.appID+"/"+sc.perm] = true
	}
	return nil
}

// consented returns the permissions of res consented for (app, upn),
// counting admin consent.
func (t *Tenant) consented(appID, upn string, res *resource) []string {
	var out []string
	for _, k := range []string{strings.ToLower(appID) + "|", strings.ToLower(appID) + "|" + strings.ToLower(upn)} {
		for p := range t.consent[k] {
			rest, ok := strings.CutPrefix(p, res.appID+"/")
			if ok && !slices.Contains(out, rest) {
				out = append(out, rest)
			}
		}
	}
	slices.Sort(out)
	return out
}

// RegisterServicePrincipal does what New-ServicePrincipal does in Exchange
// Online PowerShell: it makes the app's service principal known to Exchange
// so mailbox permissions can be granted to it. It returns the id Exchange
// knows it by.
func (t *Tenant) RegisterServicePrincipal(appID string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, err := t.app(appID)
	if err != nil {
		return "", err
	}
	t.exoSPs[strings.ToLower(appID)] = a.ObjectID
	return a.ObjectID, nil
}

// RemoveServicePrincipal undoes RegisterServicePrincipal (Remove-ServicePrincipal).
func (t *Tenant) RemoveServicePrincipal(appID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.exoSPs, strings.ToLower(appID))
}

// AddMailboxPermission grants right ("FullAccess" or "SendAs") on mailbox
// to a principal: an app id (its service principal must be registered) or a
// user's UPN, as Add-MailboxPermission / Add-RecipientPermission do.
func (t *Tenant) AddMailboxPermission(mailbox, principal, right string) error {
	if right != "FullAccess" && right != "SendAs" {
		return fmt.Errorf("emulator: right %q: want FullAccess or SendAs", right)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	mb := strings.ToLower(mailbox)
	if !t.mailboxes[mb] {
		return fmt.Errorf("emulator: no mailbox %q", mailbox)
	}
	p := strings.ToLower(principal)
	if _, isApp := t.apps[p]; isApp {
		if _, ok := t.exoSPs[p]; !ok {
			return fmt.Errorf("emulator: the service principal of app %s is not registered in Exchange (New-ServicePrincipal)", principal)
		}
	} else if _, isUser := t.users[p]; !isUser {
		return fmt.Errorf("emulator: no principal %q", principal)
	}
	if t.perms[mb] == nil {
		t.perms[mb] = map[string]bool{}
	}
	t.perms[mb][p+"|"+right] = true
	return nil
}

// RemoveMailboxPermission revokes a right granted by AddMailboxPermission.
func (t *Tenant) RemoveMailboxPermission(mailbox, principal, right string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.perms[strings.ToLower(mailbox)], strings.ToLower(principal)+"|"+right)
}

func (t *Tenant) hasPerm(mailbox, principal, right string) bool {
	return t.perms[strings.ToLower(mailbox)][strings.ToLower(principal)+"|"+right]
}

// RevokeRefreshTokens revokes every refresh token of a user (the admin
// center's "Revoke sessions"); their next use fails with AADSTS50173.
func (t *Tenant) RevokeRefreshTokens(upn string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, rt := range t.rts {
		if strings.EqualFold(rt.upn, upn) {
			rt.revoked = true
		}
	}
}

// ExpireRefreshTokens makes every refresh token of a user look unused for
// longer than the inactivity limit, so its next use fails with AADSTS700082.
func (t *Tenant) ExpireRefreshTokens(upn string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, rt := range t.rts {
		if strings.EqualFold(rt.upn, upn) {
			rt.lastUsed = t.now().Add(-t.rtMaxIdle - time.Hour)
		}
	}
}

// SetRefreshTokenMaxInactive sets the inactivity limit of refresh tokens
// (Entra: 90 days).
func (t *Tenant) SetRefreshTokenMaxInactive(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rtMaxIdle = d
}

// SetRotationRevokesOld switches strict rotation on: a refresh token stops
// working once it has been exchanged. Entra does not do this (the old token
// stays valid); strict mode lets tests prove a client keeps the newest one.
func (t *Tenant) SetRotationRevokesOld(strict bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.strictRT = strict
}

// SetDeviceInterval sets the polling interval the device-code endpoint
// announces (Entra: 5 s).
func (t *Tenant) SetDeviceInterval(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.deviceTick = d
}

// RefreshTokenCount returns how many refresh tokens were issued to upn.
func (t *Tenant) RefreshTokenCount(upn string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, rt := range t.rts {
		if strings.EqualFold(rt.upn, upn) {
			n++
		}
	}
	return n
}

func (t *Tenant) issueRT(appID, upn string, scopes []string) string {
	v := "0." + randomToken(96)
	now := t.now()
	t.rts[v] = &refreshToken{appID: appID, upn: upn, issued: now, lastUsed: now, scopes: slices.Clone(scopes)}
	return v
}

// useRT checks a refresh token and marks it used.
func (t *Tenant) useRT(v, appID string) (*refreshToken, *aadError) {
	rt, ok := t.rts[v]
	if !ok {
		return nil, errBadGrant("refresh_token")
	}
	if !strings.EqualFold(rt.appID, appID) {
		return nil, errWrongApp()
	}
	if rt.revoked || (rt.rotated && t.strictRT) {
		return nil, errRTRevoked()
	}
	now := t.now()
	if idle := now.Sub(rt.lastUsed); idle > t.rtMaxIdle {
		return nil, errRTInactive(rt.issued, t.rtMaxIdle)
	}
	rt.lastUsed = now
	rt.rotated = true
	return rt, nil
}

// scope is one parsed v2 scope.
type scope struct {
	raw  string
	oidc bool
	res  *resource
	uri  string // the application ID URI as requested (decides aud)
	perm string // permission name or ".default"
}

var errUnknownResource = errors.New("unknown resource")

func parseScope(s string) (scope, error) {
	switch s {
	case "openid", "profile", "email", "offline_access":
		return scope{raw: s, oidc: true}, nil
	}
	uri, perm := "https://graph.microsoft.com", s
	if i := strings.LastIndex(s, "/"); i >= 0 {
		uri, perm = s[:i], s[i+1:]
	}
	res, ok := findResource(uri)
	if !ok {
		return scope{raw: s, uri: uri, perm: perm}, fmt.Errorf("%w %s", errUnknownResource, uri)
	}
	if perm != ".default" && !slices.Contains(res.delegated, perm) {
		return scope{raw: s, res: res, uri: uri, perm: perm}, fmt.Errorf("scope %s is not a permission of %s", s, uri)
	}
	return scope{raw: s, res: res, uri: strings.TrimRight(strings.ToLower(uri), "/"), perm: perm}, nil
}
