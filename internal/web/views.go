package web

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mailgate/mailgate/internal/agent"
	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/redact"
	"github.com/mailgate/mailgate/internal/store"
)

// The views are what the console and the API show of a record: every
// field an administrator needs, and no secret value. A secret is "set" or
// "not set"; URLs lose their password and query values; a command shows
// its program only (its arguments may carry credentials); webhook headers
// show their names only.

const (
	sourceConfig  = "config"  // provisioned from the YAML file: read-only here
	sourceConsole = "console" // made in the console, kept in the store
	secretSet     = "set"
	secretNotSet  = "not set"
)

func source(origin string) string {
	if origin == config.OriginConsole {
		return sourceConsole
	}
	return sourceConfig
}

// displayURL is redact.URL, empty for an empty value.
func displayURL(s string) string {
	if s == "" {
		return ""
	}
	return redact.URL(s)
}

func secretState(s config.Secret) string {
	if s.Reveal() != "" {
		return secretSet
	}
	return secretNotSet
}

// Expiry is a date something stops working, with the warning level the
// console shows: "ok", "warning" (30 days or less), "critical" (7 days or
// less) or "expired".
type Expiry struct {
	Date  string `json:"date"`
	Days  int    `json:"days_left"`
	Level string `json:"level"`
}

func expiry(t, now time.Time) *Expiry {
	if t.IsZero() {
		return nil
	}
	days := int(t.Sub(now).Hours() / 24)
	e := &Expiry{Date: t.UTC().Format(time.DateOnly), Days: days, Level: "ok"}
	switch {
	case !t.After(now):
		e.Level, e.Days = "expired", 0
	case days <= 7:
		e.Level = "critical"
	case days <= 30:
		e.Level = "warning"
	}
	return e
}

// ProfileView is an OAuth profile as shown.
type ProfileView struct {
	Name          string   `json:"name"`
	Source        string   `json:"source"`
	Provider      string   `json:"provider"`
	Grant         string   `json:"grant"`
	Tenant        string   `json:"tenant,omitempty"`
	ClientID      string   `json:"client_id"`
	ClientSecret  string   `json:"client_secret"`
	Certificate   string   `json:"client_certificate"`
	Scopes        []string `json:"scopes"`
	Authority     string   `json:"authority,omitempty"`
	SecretExpires *Expiry  `json:"secret_expires,omitempty"`
	CertExpires   *Expiry  `json:"certificate_expires,omitempty"`
	// LastToken is the outcome of the profile's last token request since
	// mailgate started or, without one, the newest access token in the
	// store's cache (Cached); nil when neither.
	LastToken *TokenView `json:"last_token,omitempty"`
	// Refresh describes the stored refresh token of a profile whose grant
	// uses one (authorization code, device code, password); nil otherwise.
	Refresh *RefreshView `json:"refresh_token_state,omitempty"`

	declared map[string]any // declaredKeys
}

// RefreshView says what is stored of a profile's refresh token, never the
// token. Microsoft revokes a refresh token unused for 90 days (AADSTS700082;
// the window slides with each use), so IdleExpires is when that happens if
// mailgate stops using it — and the dashboard warns 30 and 7 days before.
type RefreshView struct {
	Stored bool `json:"stored"`
	// Saved is when the current refresh token was stored: the sign-in, or
	// the last refresh that rotated it.
	Saved string `json:"saved,omitempty"`
	// LastUsed is when it was last redeemed, if since it was saved.
	LastUsed    string  `json:"last_used,omitempty"`
	IdleExpires *Expiry `json:"idle_expires,omitempty"`
}

// refreshIdleLimit is Entra ID's refresh-token inactivity limit.
const refreshIdleLimit = 90 * 24 * time.Hour

// usesRefreshToken says whether a grant keeps a refresh token.
func usesRefreshToken(grant string) bool {
	switch grant {
	case "authorization_code", "device_code", "password":
		return true
	}
	return false
}

// TokenHealth is the outcome of a profile's last token request.
type TokenHealth struct {
	Result string // ok, refused, throttled, failed
	AADSTS int
	At     time.Time
}

// TokenView is TokenHealth as shown.
type TokenView struct {
	Result string `json:"result"`
	AADSTS int    `json:"aadsts,omitempty"`
	At     string `json:"at"`
	// Cached says the token was not requested by this process but read
	// from the store's cache (another process, or before a restart, got it
	// at At).
	Cached bool `json:"cached,omitempty"`
}

// MailboxView is a mailbox with its agent's state.
type MailboxView struct {
	Name      string `json:"name"`
	Source    string `json:"source"`
	Protocol  string `json:"protocol"`
	Host      string `json:"host,omitempty"`
	Port      int    `json:"port,omitempty"`
	Username  string `json:"username"`
	Folder    string `json:"folder,omitempty"`
	Profile   string `json:"profile"`
	Sink      string `json:"sink"`
	After     string `json:"after"`
	Mode      string `json:"mode"`
	Enabled   bool   `json:"enabled"`
	State     string `json:"state"` // disabled, waiting (not run yet), ok, failing
	LastRun   string `json:"last_run,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// Fix says what to change in Entra ID, Exchange or the config for the
	// last error, when mailgate knows (AADSTS explanations, Exchange's
	// mailbox permissions with the app's IDs filled in).
	Fix       []string `json:"fix,omitempty"`
	Failures  int      `json:"consecutive_failures"`
	Delivered int      `json:"delivered_since_start"`
	// LastMessage is when the latest message of this mailbox reached its
	// sink; Today counts those since midnight UTC (from the delivery log).
	LastMessage string `json:"last_message,omitempty"`
	Today       int    `json:"messages_today"`
	// Held counts the messages its sink refused that are set aside
	// (/api/v1/held lists them).
	Held int `json:"held"`
	// ServedBy is the serve instance holding the mailbox's lease (with
	// several instances on one store, the one serving it); empty when
	// none holds it.
	ServedBy string `json:"served_by,omitempty"`

	lastRun  time.Time
	declared map[string]any // declaredKeys
}

// SinkView is a sink as shown.
type SinkView struct {
	Name    string   `json:"name"`
	Source  string   `json:"source"`
	Type    string   `json:"type"`
	Path    string   `json:"path,omitempty"`
	URL     string   `json:"url,omitempty"`
	Secret  string   `json:"secret,omitempty"`
	Program string   `json:"program,omitempty" covers:"command"`
	Headers []string `json:"header_names,omitempty" covers:"headers"`

	declared map[string]any // declaredKeys
}

// SenderView is a sender as shown.
type SenderView struct {
	Name            string   `json:"name"`
	Source          string   `json:"source"`
	Protocol        string   `json:"protocol"`
	Host            string   `json:"host,omitempty"`
	Port            int      `json:"port,omitempty"`
	Username        string   `json:"username"`
	Profile         string   `json:"profile"`
	AllowedFrom     []string `json:"allowed_from"`
	Endpoint        string   `json:"endpoint,omitempty"`
	SaveToSentItems bool     `json:"save_to_sent_items"`

	declared map[string]any // declaredKeys
}

func (s *Server) profiles(ctx context.Context) []ProfileView {
	now := s.o.Now()
	infos := map[string]store.TokenInfo{}
	if s.o.Store != nil {
		if all, err := s.o.Store.TokenInfos(ctx); err == nil {
			for _, ti := range all {
				infos[ti.Profile] = ti
			}
		} else {
			s.o.Log.Warn("web: token infos", "err", err)
		}
	}
	var out []ProfileView
	for _, p := range s.cfg().Profiles {
		v := ProfileView{Name: p.Name, Source: source(p.Origin), Provider: p.Provider, Grant: p.Grant, Tenant: p.Tenant,
			ClientID: p.ClientID, ClientSecret: secretState(p.ClientSecret), Certificate: secretNotSet,
			Scopes: slices.Clone(p.Scopes), Authority: displayURL(p.Authority), SecretExpires: expiry(p.SecretExpires.Time, now),
			declared: declaredKeys("profiles", p)}
		if s.o.Runtime != nil {
			if h, ok := s.o.Runtime.TokenHealth(p.Name); ok {
				v.LastToken = &TokenView{Result: h.Result, AADSTS: h.AADSTS, At: h.At.UTC().Format(time.RFC3339)}
			}
		}
		if v.LastToken == nil {
			var newest time.Time
			for _, a := range infos[p.Name].Access {
				if a.Saved.After(newest) {
					newest = a.Saved
				}
			}
			if !newest.IsZero() {
				v.LastToken = &TokenView{Result: "ok", At: newest.UTC().Format(time.RFC3339), Cached: true}
			}
		}
		if usesRefreshToken(p.Grant) {
			v.Refresh = &RefreshView{}
			if ti, ok := infos[p.Name]; ok && ti.RefreshToken {
				v.Refresh.Stored = true
				v.Refresh.Saved = ti.RefreshSaved.UTC().Format(time.RFC3339)
				last := ti.RefreshSaved
				if !ti.RefreshUsed.IsZero() {
					v.Refresh.LastUsed = ti.RefreshUsed.UTC().Format(time.RFC3339)
					last = ti.RefreshUsed
				}
				if p.Provider == "microsoft" {
					v.Refresh.IdleExpires = expiry(last.Add(refreshIdleLimit), now)
				}
			}
		}
		if p.ClientCertificate != nil {
			v.Certificate = secretSet
			if s.o.Runtime != nil {
				if t, ok := s.o.Runtime.CertExpiry(p.Name); ok {
					v.CertExpires = expiry(t, now)
				}
			}
		}
		out = append(out, v)
	}
	return out
}

func (s *Server) mailboxes(ctx context.Context) []MailboxView {
	now := s.o.Now().UTC()
	counts, err := s.o.Store.DeliveryCounts(ctx, time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC))
	if err != nil {
		s.o.Log.Warn("web: delivery counts", "err", err)
	}
	held := s.heldCounts(ctx)
	servedBy := s.servedBy(ctx)
	st := map[string]agent.Status{}
	for _, a := range s.statuses() {
		st[a.Mailbox] = a
	}
	var out []MailboxView
	for _, m := range s.cfg().Mailboxes {
		v := MailboxView{Name: m.Name, Source: source(m.Origin), Protocol: m.Protocol, Host: m.Host, Port: m.Port, Username: m.Username,
			Folder: m.Folder, Profile: m.Profile, Sink: m.Sink, After: m.After, Mode: m.Mode, Enabled: m.Enabled, State: "waiting",
			declared: declaredKeys("mailboxes", m)}
		if m.Protocol == "graph" {
			v.Host, v.Port = redact.URL(m.Endpoint), 0
		}
		if c, ok := counts[m.Name]; ok {
			v.LastMessage, v.Today = c.Last.UTC().Format(time.RFC3339), c.Since
		}
		v.Held, v.ServedBy = held[m.Name], servedBy[m.Name]
		a, ok := st[m.Name]
		switch {
		case !m.Enabled:
			v.State = "disabled"
		case ok && a.LastError != nil:
			v.State = "failing"
		case ok && !a.LastRun.IsZero():
			v.State = "ok"
		}
		if ok {
			v.lastRun, v.Failures, v.Delivered = a.LastRun, a.Failures, a.Total
			if !a.LastRun.IsZero() {
				v.LastRun = a.LastRun.UTC().Format(time.RFC3339)
			}
			if a.LastError != nil {
				v.LastError = a.LastError.Error()
				if s.o.Runtime != nil {
					for _, l := range s.o.Runtime.Explain(m.Name, a.LastError) {
						// a hint the error already carries is not repeated
						if !strings.Contains(v.LastError, strings.TrimPrefix(l, "fix: ")) {
							v.Fix = append(v.Fix, l)
						}
					}
				}
			}
		}
		out = append(out, v)
	}
	return out
}

func (s *Server) sinks() []SinkView {
	var out []SinkView
	for _, k := range s.cfg().Sinks {
		v := SinkView{Name: k.Name, Source: source(k.Origin), Type: k.Type, Path: k.Path, declared: declaredKeys("sinks", k)}
		if k.URL != "" {
			v.URL = redact.URL(k.URL)
			v.Secret = secretState(k.Secret)
		}
		if len(k.Command) > 0 {
			v.Program = k.Command[0]
		}
		for h := range k.Headers {
			v.Headers = append(v.Headers, h)
		}
		slices.Sort(v.Headers)
		out = append(out, v)
	}
	return out
}

func (s *Server) senders() []SenderView {
	var out []SenderView
	for _, d := range s.cfg().Senders {
		v := SenderView{Name: d.Name, Source: source(d.Origin), Protocol: d.Protocol, Host: d.Host, Port: d.Port, Username: d.Username,
			Profile: d.Profile, AllowedFrom: slices.Clone(d.AllowedFrom), SaveToSentItems: d.SaveToSentItems,
			declared: declaredKeys("senders", d)}
		if d.Protocol == "graph" {
			v.Endpoint, v.Host, v.Port = redact.URL(d.Endpoint), "", 0
		}
		out = append(out, v)
	}
	return out
}

func (s *Server) records(ctx context.Context, kind string) []any {
	var out []any
	switch kind {
	case "profiles":
		for _, v := range s.profiles(ctx) {
			out = append(out, v)
		}
	case "mailboxes":
		for _, v := range s.mailboxes(ctx) {
			out = append(out, v)
		}
	case "sinks":
		for _, v := range s.sinks() {
			out = append(out, v)
		}
	case "senders":
		for _, v := range s.senders() {
			out = append(out, v)
		}
	}
	return out
}

func nameOf(v any) string {
	switch v := v.(type) {
	case ProfileView:
		return v.Name
	case MailboxView:
		return v.Name
	case SinkView:
		return v.Name
	case SenderView:
		return v.Name
	}
	return ""
}

func (s *Server) apiList(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		items := s.records(r.Context(), kind)
		if items == nil {
			items = []any{}
		}
		writeJSON(w, http.StatusOK, map[string]any{kind: items})
	}
}

func (s *Server) apiOne(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		for _, v := range s.records(r.Context(), kind) {
			if nameOf(v) == name {
				writeJSON(w, http.StatusOK, v)
				return
			}
		}
		writeJSON(w, http.StatusNotFound, apiError{"not_found", fmt.Sprintf("no %s named %q", singular(kind), name)})
	}
}

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	mbs := s.mailboxes(r.Context())
	if mbs == nil {
		mbs = []MailboxView{}
	}
	var warnings []string
	for _, wn := range profileWarnings(s.profiles(r.Context())) {
		warnings = append(warnings, wn.api)
	}
	failing := s.brokenRecords()
	if failing == nil {
		failing = []BrokenRecord{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"mailboxes": mbs, "warnings": orEmpty(warnings), "failing_records": failing,
		"instance": s.o.Instance, "instances": s.instances(r.Context()), "senders": s.senderViews(r)})
}

// InstanceView is a live serve instance on the store.
type InstanceView struct {
	ID string `json:"instance"`
	// This: the instance answering.
	This bool `json:"this"`
	// LastHeartbeat is when it last beat, HeartbeatAge how many seconds
	// ago (by the database's clock).
	LastHeartbeat string  `json:"last_heartbeat"`
	HeartbeatAge  float64 `json:"heartbeat_age_seconds"`
	Started       string  `json:"started"`
	// Mailboxes is how many mailboxes' leases it holds.
	Mailboxes int `json:"mailboxes"`
}

// instances lists the serve instances that beat within the lease
// (agents.lease): those counted when sharing the mailboxes out.
func (s *Server) instances(ctx context.Context) []InstanceView {
	lease := s.cfg().Agents.Lease.D()
	if lease <= 0 {
		lease = config.DefaultLease.D()
	}
	ins, err := s.o.Store.Instances(ctx, lease)
	if err != nil {
		s.o.Log.Warn("web: instances", "err", err)
	}
	out := []InstanceView{}
	now := s.o.Now().UTC()
	for _, in := range ins {
		out = append(out, InstanceView{ID: in.ID, This: in.ID == s.o.Instance, LastHeartbeat: now.Add(-in.Age).Format(time.RFC3339),
			HeartbeatAge: in.Age.Seconds(), Started: in.Started.UTC().Format(time.RFC3339), Mailboxes: in.Mailboxes})
	}
	return out
}

// servedBy is the holder of each mailbox's live lease.
func (s *Server) servedBy(ctx context.Context) map[string]string {
	ls, err := s.o.Store.Leases(ctx)
	if err != nil {
		s.o.Log.Warn("web: leases", "err", err)
	}
	out := map[string]string{}
	for _, l := range ls {
		if l.Live {
			out[l.Mailbox] = l.Owner
		}
	}
	return out
}

// warning is something about to stop working: a line for the API and a
// sentence with what to do for the dashboard.
type warning struct{ api, page string }

// profileWarnings lists the profiles' secrets, certificates and refresh
// tokens at warning level or worse, ordered by profile.
func profileWarnings(profiles []ProfileView) []warning {
	var out []warning
	for _, p := range profiles {
		for _, x := range []struct {
			what string
			e    *Expiry
		}{{"certificate", p.CertExpires}, {"client secret", p.SecretExpires}} {
			if e := x.e; e != nil && e.Level != "ok" {
				out = append(out, warning{
					api:  fmt.Sprintf("profile %s: %s %s (%s, %d days left)", p.Name, x.what, e.Level, e.Date, e.Days),
					page: fmt.Sprintf("Profile %s: the %s expires %s (%d days left). Create a new one in Entra admin center › App registrations › Certificates & secrets before then.", p.Name, x.what, e.Date, e.Days)})
			}
		}
		if r := p.Refresh; r != nil && r.IdleExpires != nil && r.IdleExpires.Level != "ok" {
			e := r.IdleExpires
			out = append(out, warning{
				api:  fmt.Sprintf("profile %s: refresh token %s by inactivity (%s, %d days left)", p.Name, e.Level, e.Date, e.Days),
				page: fmt.Sprintf("Profile %s: its refresh token has not been used since %s; Entra ID revokes it after 90 days unused (%s, %d days left). Run mailgate serve with a mailbox on this profile, or sign in again with Authorize.", p.Name, orDash(r.LastUsed, r.Saved), e.Date, e.Days)})
		}
	}
	slices.SortStableFunc(out, func(a, b warning) int { return strings.Compare(a.api, b.api) })
	return out
}

func orDash(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	var warnings []string
	profiles := s.profiles(r.Context())
	for _, wn := range profileWarnings(profiles) {
		warnings = append(warnings, wn.page)
	}
	for _, b := range s.brokenRecords() {
		warnings = append(warnings, fmt.Sprintf("Console %s %s is failing and does not run: %s. Edit it, or delete it (mailgate records delete %s %s).", singular(b.Kind), b.Name, b.Reason, b.Kind, b.Name))
	}
	s.render(w, "dashboard.html", map[string]any{
		"Admin": s.admin(r), "Mailboxes": s.mailboxes(r.Context()), "Profiles": profiles, "Sinks": s.sinks(), "Senders": s.senders(),
		"Listeners": s.listeners(), "Accounts": s.accounts(), "Warnings": warnings, "Now": s.o.Now().UTC().Format(time.RFC3339),
		"Instances": s.instances(r.Context()),
	})
}

// Step is one step of a Test: DNS, TCP, TLS, token, authentication,
// folder; Hints say what to change when it failed.
type Step struct {
	Name   string   `json:"step"`
	OK     bool     `json:"ok"`
	Detail string   `json:"detail"`
	Hints  []string `json:"hints,omitempty"`
}

// TestResult is what the Test button shows.
type TestResult struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"` // mailbox or profile
	OK    bool   `json:"ok"`
	Steps []Step `json:"steps"`
}

// TestTimeout cuts a Test button run, so its answer is written within the
// HTTP server's write timeout.
const TestTimeout = 90 * time.Second

// runTest runs a Test of a configured record of kind.
func (s *Server) runTest(r *http.Request, kind, name string) (TestResult, int) {
	_, known := s.cfg().Origin(kind, name)
	if !known || s.o.Runtime == nil {
		return TestResult{}, http.StatusNotFound
	}
	ctx, cancel := context.WithTimeout(r.Context(), TestTimeout)
	defer cancel()
	res, found := s.o.Runtime.Test(ctx, kind, name)
	if !found {
		return TestResult{}, http.StatusNotFound
	}
	s.o.Log.Info("web: test", "name", name, "ok", res.OK, "by", s.admin(r))
	return res, http.StatusOK
}

func (s *Server) apiTest(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res, status := s.runTest(r, kind, r.PathValue("name"))
		if status != http.StatusOK {
			writeJSON(w, status, apiError{"not_found", fmt.Sprintf("no %s named %q to test", singular(kind), r.PathValue("name"))})
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}

// testPage serves the console's Test button (a form POST from the
// dashboard) and shows the steps.
func (s *Server) testPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	kind := r.URL.Query().Get("kind") // the dashboard says which record's button it was
	var res TestResult
	status := http.StatusNotFound
	// without kind, a name is looked for among mailboxes first, then
	// senders, sinks and profiles: a preference, not the list of kinds
	for _, k := range []string{"mailboxes", "senders", "sinks", "profiles"} {
		if kind == "" || kind == k {
			if res, status = s.runTest(r, k, name); status == http.StatusOK {
				kind = k
				break
			}
		}
	}
	if status != http.StatusOK {
		http.Error(w, "no mailbox, sender, sink or profile "+name, http.StatusNotFound)
		return
	}
	s.render(w, "test.html", map[string]any{"Admin": s.admin(r), "Result": res, "Kind": kind})
}
