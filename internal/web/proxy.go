package web

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/proxy"
)

// ProxyRuntime is what a Runtime may also tell of the legacy-client
// proxy: each account's last login (kept in the store across restarts).
type ProxyRuntime interface {
	ProxyLogins() map[string]ProxyLogin
}

// ProxyLogin is an account's last login through a listener.
type ProxyLogin struct {
	At       time.Time `json:"at"`
	Listener string    `json:"listener"`
	Remote   string    `json:"remote"`
	// Result is ok, bad_password, throttled, busy, token or upstream.
	Result string   `json:"result"`
	Advice []string `json:"advice,omitempty"`
}

// ListenerView is a proxy listener as the console and the API show it.
type ListenerView struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	Listen   string `json:"listen"`
	Security string `json:"security"`
	Upstream string `json:"upstream"`
}

// AccountView is a proxy account: its password only as "set" (mailgate
// keeps a bcrypt hash of it and shows neither).
type AccountView struct {
	Username    string   `json:"username"`
	Password    string   `json:"password"`
	Profile     string   `json:"profile"`
	Mailbox     string   `json:"mailbox"`
	Listeners   []string `json:"listeners"`
	AllowedFrom []string `json:"allowed_from"`
	// Rate is the messages a minute through smtp listeners (0: the
	// mailbox's default).
	Rate int `json:"rate"`
	// Source is "file" or "console" (made through the API).
	Source    string      `json:"source"`
	LastLogin *ProxyLogin `json:"last_login"`
}

func (s *Server) listeners() []ListenerView {
	out := []ListenerView{}
	for _, l := range s.cfg().Listeners {
		out = append(out, ListenerView{Name: l.Name, Protocol: l.Protocol, Listen: l.Listen, Security: l.Security,
			Upstream: l.Upstream.Security + "://" + net.JoinHostPort(l.Upstream.Host, strconv.Itoa(l.Upstream.Port))})
	}
	return out
}

func (s *Server) accounts() []AccountView {
	var last map[string]ProxyLogin
	if pr, ok := s.o.Runtime.(ProxyRuntime); ok {
		last = pr.ProxyLogins()
	}
	out := []AccountView{}
	for _, a := range s.cfg().Accounts {
		v := AccountView{Username: a.Username, Password: "not set", Profile: a.Profile, Mailbox: a.Mailbox,
			Listeners: orEmptyList(a.Listeners), AllowedFrom: orEmptyList(a.AllowedFrom), Rate: a.Rate, Source: source(a.Origin)}
		if !a.Password.IsZero() {
			v.Password = "set"
		}
		if l, ok := last[a.Username]; ok {
			v.LastLogin = &l
		}
		out = append(out, v)
	}
	return out
}

func orEmptyList(l []string) []string {
	if l == nil {
		return []string{}
	}
	return slices.Clone(l)
}

func (s *Server) apiListeners(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"listeners": s.listeners()})
}

func (s *Server) apiAccounts(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"accounts": s.accounts()})
}

func (s *Server) apiAccount(w http.ResponseWriter, r *http.Request) {
	for _, a := range s.accounts() {
		if a.Username == r.PathValue("name") {
			writeJSON(w, http.StatusOK, a)
			return
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]any{"error": "no such account"})
}

// proxyPaths describe the proxy's routes for openapi.
func proxyPaths() map[string]any {
	unauth := map[string]any{"$ref": "#/components/responses/Unauthenticated"}
	bad := map[string]any{"description": "the configuration with this change has problems (listed by key path)"}
	name := []any{map[string]any{"name": "name", "in": "path", "required": true, "schema": map[string]any{"type": "string"}}}
	str := map[string]any{"type": "string"}
	list := map[string]any{"type": "array", "items": str}
	accountBody := map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{
		"type": "object", "properties": map[string]any{"username": str, "password": map[string]any{"type": "string", "writeOnly": true},
			"profile": str, "mailbox": str, "listeners": list, "allowed_from": list, "rate": map[string]any{"type": "integer"}}}}}}
	return map[string]any{
		"/api/v1/listeners": map[string]any{"get": map[string]any{"summary": "The legacy-client proxy's listeners (name, protocol, listen, security, upstream)",
			"responses": map[string]any{"200": map[string]any{"description": "{\"listeners\": [...]}"}, "401": unauth}}},
		"/api/v1/accounts": map[string]any{"get": map[string]any{"summary": "The legacy-client proxy's accounts (password only as set / not set) with each one's last login (kept across restarts)",
			"responses": map[string]any{"200": map[string]any{"description": "{\"accounts\": [...]}"}, "401": unauth}},
			"post": map[string]any{"summary": "Create a console account: {username, password, profile, mailbox, listeners, allowed_from}; the password is stored only as its bcrypt hash",
				"requestBody": accountBody,
				"responses":   map[string]any{"201": map[string]any{"description": "the account"}, "422": bad, "401": unauth}}},
		"/api/v1/accounts/{name}": map[string]any{"get": map[string]any{"summary": "One proxy account by username",
			"parameters": name,
			"responses":  map[string]any{"200": map[string]any{"description": "the account"}, "404": map[string]any{"description": "no such account"}, "401": unauth}},
			"put": map[string]any{"summary": "Change a console account (without password: the current one is kept)", "parameters": name, "requestBody": accountBody,
				"responses": map[string]any{"200": map[string]any{"description": "the account"}, "404": map[string]any{"description": "no such account"},
					"409": map[string]any{"description": "the account comes from the config file"}, "422": bad, "401": unauth}},
			"delete": map[string]any{"summary": "Delete a console account", "parameters": name,
				"responses": map[string]any{"204": map[string]any{"description": "deleted"}, "404": map[string]any{"description": "no such account"},
					"409": map[string]any{"description": "the account comes from the config file"}, "401": unauth}}},
	}
}

// AccountInput is the body that creates or changes a console account.
// Password is write-only: mailgate keeps only its bcrypt hash, and a
// change without one keeps the current hash.
type AccountInput struct {
	Username    string   `json:"username" yaml:"username"`
	Password    string   `json:"password,omitempty" yaml:"password"`
	Profile     string   `json:"profile" yaml:"profile"`
	Mailbox     string   `json:"mailbox" yaml:"mailbox"`
	Listeners   []string `json:"listeners,omitempty" yaml:"listeners,omitempty"`
	AllowedFrom []string `json:"allowed_from,omitempty" yaml:"allowed_from,omitempty"`
	Rate        int      `json:"rate,omitempty" yaml:"rate,omitempty"`
}

// accountFormSubmit saves the console's account form (new or edit) as
// apiSaveAccount does: the password hashed before it is stored, an empty
// password field keeping the current hash.
func (s *Server) accountFormSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	shown := map[string]string{}
	for _, f := range formOf("accounts") {
		if !f.writeOnly() {
			shown[f.Key] = strings.TrimSpace(r.PostFormValue(f.Key))
		}
	}
	in := AccountInput{Username: shown["username"], Password: r.PostFormValue("password"), Profile: shown["profile"],
		Mailbox: shown["mailbox"], Listeners: strings.Fields(shown["listeners"]), AllowedFrom: strings.Fields(shown["allowed_from"])}
	original := r.PostFormValue("original")
	var problems []string
	if v := shown["rate"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			problems = []string{"rate: " + strconv.Quote(v) + " is not a whole number"}
		}
		in.Rate = n
	}
	if problems == nil {
		ctx := context.WithValue(r.Context(), reqKey{}, r)
		_, problems = s.saveAccount(ctx, original, in)
	}
	if problems != nil {
		s.renderForm(w, r, "accounts", original, shown, problems)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// apiSaveAccount creates (POST) or changes (PUT …/{name}) a console
// account; the password is hashed here, before anything is stored.
func (s *Server) apiSaveAccount(w http.ResponseWriter, r *http.Request) {
	var in AccountInput
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"bad_json", "the body must be a JSON object of the account's keys: " + err.Error()})
		return
	}
	original := r.PathValue("name")
	if in.Username == "" {
		in.Username = original
	}
	status, problems := s.saveAccount(r.Context(), original, in)
	if problems != nil {
		writeJSON(w, status, map[string]any{"error": "invalid", "problems": problems})
		return
	}
	for _, a := range s.accounts() {
		if a.Username == in.Username {
			writeJSON(w, status, a)
			return
		}
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"username": in.Username})
}

func (s *Server) saveAccount(ctx context.Context, original string, in AccountInput) (int, []string) {
	if s.o.Editor == nil {
		return http.StatusConflict, []string{"records can only be changed in the config file"}
	}
	for _, v := range append([]string{in.Username, in.Password, in.Profile, in.Mailbox}, append(in.Listeners, in.AllowedFrom...)...) {
		if err := config.SafeValue(v); err != nil {
			return http.StatusUnprocessableEntity, []string{err.Error()}
		}
	}
	status, hashed := http.StatusCreated, false
	if original != "" {
		status = http.StatusOK
		if in.Username != original {
			return http.StatusUnprocessableEntity, []string{"username: an account cannot be renamed; create the new one and delete this one"}
		}
		if src, ok := s.origin("accounts", original); !ok {
			return http.StatusNotFound, []string{"no account " + original}
		} else if src != sourceConsole {
			return http.StatusConflict, []string{original + " comes from the config file: change it there"}
		}
		if in.Password == "" {
			cur, found, err := s.o.Editor.Load(ctx, "accounts", original)
			if err != nil || !found {
				return http.StatusNotFound, []string{"no console account " + original}
			}
			var old AccountInput
			_ = yaml.Unmarshal(cur, &old)
			in.Password, hashed = old.Password, true
		}
	} else if _, taken := s.origin("accounts", in.Username); taken {
		return http.StatusUnprocessableEntity, []string{"username: " + in.Username + " is taken"}
	}
	if in.Password == "" {
		return http.StatusUnprocessableEntity, []string{"password: required"}
	}
	if !hashed {
		h, err := proxy.HashPassword(in.Password)
		if err != nil {
			return http.StatusUnprocessableEntity, []string{"password: " + err.Error()}
		}
		in.Password = h
	}
	y, err := yaml.Marshal(in)
	if err != nil {
		return http.StatusUnprocessableEntity, []string{err.Error()}
	}
	if err := s.o.Editor.Save(ctx, "accounts", in.Username, y); err != nil {
		return http.StatusUnprocessableEntity, config.ProblemLines(err)
	}
	s.o.Log.Info("web: record saved", "kind", "accounts", "name", in.Username, "by", s.admin(ctxRequest(ctx)))
	return status, nil
}

func (s *Server) apiDeleteAccount(w http.ResponseWriter, r *http.Request) {
	status, msg := s.remove(r.Context(), "accounts", r.PathValue("name"))
	if status != http.StatusNoContent {
		writeJSON(w, status, apiError{"refused", msg})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
