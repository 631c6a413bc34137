package web

import (
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// ProxyRuntime is what a Runtime may also tell of the legacy-client
// proxy: each account's last login since serve started.
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
	Username    string      `json:"username"`
	Password    string      `json:"password"`
	Profile     string      `json:"profile"`
	Mailbox     string      `json:"mailbox"`
	Listeners   []string    `json:"listeners"`
	AllowedFrom []string    `json:"allowed_from"`
	LastLogin   *ProxyLogin `json:"last_login"`
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
			Listeners: orEmptyList(a.Listeners), AllowedFrom: orEmptyList(a.AllowedFrom)}
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
	return map[string]any{
		"/api/v1/listeners": map[string]any{"get": map[string]any{"summary": "The legacy-client proxy's listeners (name, protocol, listen, security, upstream)",
			"responses": map[string]any{"200": map[string]any{"description": "{\"listeners\": [...]}"}, "401": unauth}}},
		"/api/v1/accounts": map[string]any{"get": map[string]any{"summary": "The legacy-client proxy's accounts (password only as set / not set) with each one's last login since serve started",
			"responses": map[string]any{"200": map[string]any{"description": "{\"accounts\": [...]}"}, "401": unauth}}},
		"/api/v1/accounts/{name}": map[string]any{"get": map[string]any{"summary": "One proxy account by username",
			"parameters": []any{map[string]any{"name": "name", "in": "path", "required": true, "schema": map[string]any{"type": "string"}}},
			"responses":  map[string]any{"200": map[string]any{"description": "the account"}, "404": map[string]any{"description": "no such account"}, "401": unauth}}},
	}
}
