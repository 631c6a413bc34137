// Package web serves mailgate's console and REST API: the login page and
// sessions, the dashboard, /api/v1 (JSON, described by
// /api/v1/openapi.json), /metrics (Prometheus text), /healthz and /readyz.
//
// Access: every route except /healthz, /readyz, /login and /static/ needs
// an administrator — a browser session (cookie HttpOnly, SameSite=Strict,
// Secure under TLS) or an API token (Authorization: Bearer). Pages answer
// an anonymous request with a redirect to /login, the API and /metrics
// with 401. Cross-origin unsafe requests are refused
// (net/http.CrossOriginProtection, which reads Sec-Fetch-Site and Origin),
// failed logins are throttled per (name, client address) and per address
// with doubling delays (store.BeginLogin), and no
// secret value (client secret, password, token) is ever rendered: secrets
// are shown as "set" or "not set".
//
// Use: build a Server with New and serve it (it is an http.Handler).
package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailgate/mailgate/internal/agent"
	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/metrics"
	"github.com/mailgate/mailgate/internal/store"
)

//go:embed templates/*.html static/*
var assets embed.FS

// staticFiles is the static folder alone: /static/ serves nothing else.
var staticFiles = func() fs.FS {
	sub, err := fs.Sub(assets, "static")
	if err != nil {
		panic(err) // the folder is embedded above
	}
	return sub
}()

// filesOnly hides the directories of a file system, so a file server
// lists none (a directory is 404).
type filesOnly struct{ fs.FS }

func (f filesOnly) Open(name string) (fs.File, error) {
	file, err := f.FS.Open(name)
	if err != nil {
		return nil, err
	}
	if st, err := file.Stat(); err != nil || st.IsDir() {
		file.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return file, nil
}

// SessionCookie is the name of the console's session cookie.
const SessionCookie = "mailgate_session"

// SessionTTL is how long a console session lasts.
const SessionTTL = 12 * time.Hour

// Options configure New.
type Options struct {
	Store   *store.Store
	Config  *config.Config
	Metrics *metrics.Registry
	Log     *slog.Logger
	// Runtime is the running mailgate: its agents, tests and advice (nil:
	// no agents run, no Test button).
	Runtime Runtime
	// Authorizer signs users in for authorization-code profiles (nil: no
	// Authorize button).
	Authorizer Authorizer
	// Editor keeps console-made records (nil: everything comes from the
	// config file and is read-only here).
	Editor Editor
	// Secure marks cookies Secure (the console is served over TLS).
	Secure bool
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Instance is the serve instance's id (shown as "this" among the
	// instances on the store).
	Instance string
}

// Server is the console and API handler.
type Server struct {
	o      Options
	live   atomic.Pointer[live]
	broken atomic.Pointer[[]BrokenRecord]
	liveMu sync.Mutex // serialises SetConfig
	h      http.Handler
	routes []string
	tmpl   *template.Template
	// checkAdmin checks a password (Store.CheckAdmin; tests count the
	// bcrypt evaluations through it).
	checkAdmin func(ctx context.Context, name, password string) error
}

type ctxKey struct{}

// Runtime is what the console asks of the running mailgate (app.App
// implements it for serve). It is asked at each request, so a reload of
// the agents needs nothing here but SetConfig.
type Runtime interface {
	// Statuses returns the agents' state.
	Statuses() []agent.Status
	// Test runs the steps of `mailgate test` on the record of kind
	// (mailboxes, senders, sinks or profiles) named name; found is false
	// when there is none.
	Test(ctx context.Context, kind, name string) (res TestResult, found bool)
	// Explain says what to change for a mailbox's error (nil: nothing
	// known).
	Explain(mailbox string, err error) []string
	// TokenHealth returns the outcome of a profile's last token request.
	TokenHealth(profile string) (TokenHealth, bool)
	// CertExpiry returns when a profile's client certificate expires.
	CertExpiry(profile string) (time.Time, bool)
	// Wake is told when an administrator asked to retry a mailbox's held
	// messages, so that its agent runs now.
	Wake(mailbox string)
}

// live is what changes when the configuration is reloaded.
type live struct {
	cfg *config.Config
}

// SetConfig shows a changed configuration: at once when a console change
// is kept, while the agents that follow it are still being restarted, and
// again once the configuration that runs is known.
func (s *Server) SetConfig(cfg *config.Config) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	s.live.Store(&live{cfg: cfg})
}

// BrokenRecord is a console record kept in the store that serve could not
// use (it no longer fits the config file, or cannot be built: a missing
// certificate file, a command sink the config no longer allows): it is
// shown failing with Reason, and can be fixed or deleted.
type BrokenRecord struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Reason string `json:"error"`
}

// SetBroken shows the console records serve skipped, with their reasons.
func (s *Server) SetBroken(rs []BrokenRecord) {
	rs = slices.Clone(rs)
	s.broken.Store(&rs)
}

// brokenRecords are the console records serve skipped.
func (s *Server) brokenRecords() []BrokenRecord {
	if p := s.broken.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *Server) cfg() *config.Config { return s.live.Load().cfg }

// statuses are the agents' states (none when nothing runs).
func (s *Server) statuses() []agent.Status {
	if s.o.Runtime == nil {
		return nil
	}
	return s.o.Runtime.Statuses()
}

// New builds the handler.
func New(o Options) *Server {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{o: o, checkAdmin: o.Store.CheckAdmin}
	s.SetConfig(o.Config)
	s.tmpl = template.Must(template.New("").Funcs(template.FuncMap{
		"ago": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return o.Now().Sub(t).Round(time.Second).String() + " ago"
		},
	}).ParseFS(assets, "templates/*.html"))
	mux := http.NewServeMux()
	handle := func(pattern string, public bool, h http.HandlerFunc) {
		s.routes = append(s.routes, pattern)
		if public {
			mux.Handle(pattern, h)
			return
		}
		mux.Handle(pattern, s.authed(h))
	}
	handle("GET /healthz", true, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	handle("GET /readyz", true, s.ready)
	handle("GET /login", true, s.loginPage)
	handle("POST /login", true, s.login)
	handle("GET /static/", true, http.StripPrefix("/static", http.FileServerFS(filesOnly{staticFiles})).ServeHTTP)
	handle("GET "+callbackPath, true, s.callback)
	handle("POST /authorize/{name}", false, s.authorize)
	handle("POST /oauth/paste", false, s.pasted)
	handle("POST /logout", false, s.logout)
	handle("GET /{$}", false, s.dashboard)
	handle("GET /metrics", false, s.metrics)
	handle("GET /api/v1/openapi.json", false, s.openapi)
	handle("GET /api/v1/status", false, s.apiStatus)
	for _, kind := range config.Kinds {
		handle("GET /api/v1/"+kind, false, s.apiList(kind))
		handle("GET /api/v1/"+kind+"/{name}", false, s.apiOne(kind))
		handle("POST /api/v1/"+kind+"/{name}/test", false, s.apiTest(kind))
	}
	handle("POST /test/{name}", false, s.testPage)
	for _, kind := range config.Kinds {
		handle("POST /api/v1/"+kind, false, s.apiSave(kind))
		handle("PUT /api/v1/"+kind+"/{name}", false, s.apiSave(kind))
		handle("DELETE /api/v1/"+kind+"/{name}", false, s.apiDelete(kind))
		handle("GET /"+kind+"/new", false, s.formPage(kind))
		handle("GET /"+kind+"/{name}/edit", false, s.formPage(kind))
		handle("POST /"+kind, false, s.formSubmit(kind))
		handle("POST /"+kind+"/{name}/delete", false, s.formDelete(kind))
	}
	handle("GET /api/v1/listeners", false, s.apiListeners)
	handle("GET /api/v1/accounts", false, s.apiAccounts)
	handle("GET /api/v1/accounts/{name}", false, s.apiAccount)
	handle("POST /api/v1/accounts", false, s.apiSaveAccount)
	handle("PUT /api/v1/accounts/{name}", false, s.apiSaveAccount)
	handle("DELETE /api/v1/accounts/{name}", false, s.apiDeleteAccount)
	handle("GET /accounts/new", false, s.formPage("accounts"))
	handle("GET /accounts/{name}/edit", false, s.formPage("accounts"))
	handle("POST /accounts", false, s.accountFormSubmit)
	handle("POST /accounts/{name}/delete", false, s.formDelete("accounts"))
	handle("GET /api/v1/outbox", false, apiList(s, "outbox", s.outbox))
	handle("GET /api/v1/messages", false, apiList(s, "messages", s.messages))
	handle("GET /api/v1/messages/{id}/eml", false, s.eml)
	handle("GET /outbox", false, s.outboxPage)
	handle("GET /deliveries", false, s.deliveriesPage)
	handle("GET /api/v1/deliveries", false, apiList(s, "deliveries", s.deliveries))
	handle("GET /messages", false, s.messagesPage)
	handle("GET /messages/{id}/eml", false, s.eml)
	// refused messages; {key} is path-escaped (keys hold slashes)
	handle("GET /api/v1/held", false, apiList(s, "held", s.held))
	handle("POST /api/v1/held/{mailbox}/retry", false, s.apiHeld(false))
	handle("POST /api/v1/held/{mailbox}/{key}/retry", false, s.apiHeld(false))
	handle("POST /api/v1/held/{mailbox}/{key}/drop", false, s.apiHeld(true))
	handle("DELETE /api/v1/held/{mailbox}/{key}", false, s.apiHeld(true))
	handle("GET /held", false, s.heldPage)
	handle("POST /held/{mailbox}/{key}/retry", false, s.heldForm(false))
	handle("POST /held/{mailbox}/{key}/drop", false, s.heldForm(true))
	s.h = http.NewCrossOriginProtection().Handler(securityHeaders(mux))
	return s
}

// Routes lists every registered route pattern (for tests and docs).
func (s *Server) Routes() []string { return s.routes }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.ServeHTTP(w, r) }

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "same-origin")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		h.ServeHTTP(w, r)
	})
}

// admin returns the authenticated administrator of a request.
func (s *Server) admin(r *http.Request) string {
	a, _ := r.Context().Value(ctxKey{}).(string)
	return a
}

// authed lets a request through with a session or an API token.
func (s *Server) authed(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var admin string
		var err error
		stale := false
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			admin, err = s.o.Store.APITokenAdmin(r.Context(), strings.TrimSpace(tok))
		} else if c, cerr := r.Cookie(SessionCookie); cerr == nil {
			admin, err = s.o.Store.SessionAdmin(r.Context(), c.Value)
			stale = true
		}
		if err != nil {
			s.o.Log.Error("web: authentication lookup", "err", err)
			http.Error(w, "store unavailable", http.StatusServiceUnavailable)
			return
		}
		if admin == "" {
			if isAPI(r) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="mailgate"`)
				writeJSON(w, http.StatusUnauthorized, apiError{"unauthenticated", "log in or send Authorization: Bearer <token> (mailgate admin token NAME)"})
				return
			}
			if stale {
				http.Redirect(w, r, "/login?e="+loginExpired, http.StatusSeeOther)
				return
			}
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, admin)))
	})
}

func isAPI(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/metrics"
}

type apiError struct {
	Code    string `json:"error"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // JSON with nosniff: Message-IDs stay readable
	_ = enc.Encode(v)
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if err := s.o.Store.Ping(r.Context()); err != nil {
		// the driver's text (paths, hosts, users) is for the log only
		s.o.Log.Error("web: readyz: the store does not answer", "err", err)
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	if s.o.Metrics != nil {
		_, _ = s.o.Metrics.WriteTo(w)
	}
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// The login page's messages, chosen by a code in ?e= (the query's text is
// never shown).
const loginExpired = "expired"

var loginMessages = map[string]string{
	loginExpired: "Your session has ended: sign in again.",
}

// throttleAddress is the client address the sign-in throttle counts: the
// IPv4 address, or an IPv6 address's /64 (one subscriber's network: a
// client holding a /64 must not get 2^64 fresh addresses).
func throttleAddress(r *http.Request) string {
	ip := clientIP(r)
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if a = a.Unmap(); a.Is4() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, "login.html", map[string]any{"Error": loginMessages[r.URL.Query().Get("e")]})
}

// maxLoginName bounds the names the throttle keeps (an administrator's
// name is short; longer ones are refused unchecked).
const maxLoginName = 256

// login signs an administrator in. The attempt is counted for (name,
// client address) before the password is checked (Store.BeginLogin), so
// concurrent guesses cannot all reach bcrypt; while the address's delay
// runs, the answer is 429 with Retry-After and bcrypt does not run.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	name, pw := r.PostFormValue("name"), r.PostFormValue("password")
	from := throttleAddress(r)
	if name == "" || len(name) > maxLoginName {
		w.WriteHeader(http.StatusUnauthorized)
		s.render(w, "login.html", map[string]any{"Error": "Wrong name or password."})
		return
	}
	if err := s.o.Store.BeginLogin(r.Context(), name, from, s.o.Now()); err != nil {
		var te *store.ThrottledError
		if errors.As(err, &te) {
			s.o.Log.Warn("web: login throttled", "name", name, "from", from, "wait", te.Seconds().String())
			w.Header().Set("Retry-After", strconv.Itoa(int(te.Seconds()/time.Second)))
			w.WriteHeader(http.StatusTooManyRequests)
			s.render(w, "login.html", map[string]any{"Error": "Too many failed sign-ins from this address: wait " + te.Seconds().String() + " before trying again."})
			return
		}
		s.o.Log.Error("web: login throttle", "err", err)
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	err := s.checkAdmin(r.Context(), name, pw)
	if errors.Is(err, store.ErrBadLogin) {
		s.o.Log.Warn("web: failed login", "name", name, "from", from)
		w.WriteHeader(http.StatusUnauthorized)
		s.render(w, "login.html", map[string]any{"Error": "Wrong name or password."})
		return
	}
	if err == nil {
		err = s.o.Store.LoginSucceeded(r.Context(), name, from, s.o.Now())
	}
	if err != nil {
		s.o.Log.Error("web: login", "err", err)
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	id, err := s.o.Store.NewSession(r.Context(), name, SessionTTL)
	if err != nil {
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: "/", HttpOnly: true, Secure: s.o.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(SessionTTL / time.Second)})
	s.o.Log.Info("web: login", "name", name, "from", from)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		_ = s.o.Store.EndSession(r.Context(), c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: s.o.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.tmpl.ExecuteTemplate(w, name, data); err != nil {
		s.o.Log.Error("web: template", "name", name, "err", err)
	}
}
