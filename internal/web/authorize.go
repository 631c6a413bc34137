package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// Authorizer runs a profile's authorization-code sign-in (with PKCE and
// state) through the console: Start returns the provider's sign-in URL
// for a redirect back to the console; Finish redeems the code the browser
// brings back, stores the refresh token, and says for which profile.
type Authorizer interface {
	Start(ctx context.Context, profile, redirectURI string) (authURL string, err error)
	Finish(ctx context.Context, query url.Values) (profile string, err error)
}

// callbackPath is where the provider sends the browser back; register
// SCHEME://HOST/oauth/callback on the app (loopback hosts match any port).
const callbackPath = "/oauth/callback"

// authorize starts a sign-in for a profile (a form POST from the
// dashboard's Authorize button).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if s.o.Authorizer == nil {
		http.Error(w, "sign-ins through the console are not available", http.StatusNotFound)
		return
	}
	scheme := "http"
	if s.o.Secure {
		scheme = "https"
	}
	redirect := scheme + "://" + r.Host + callbackPath
	paste := r.FormValue("paste") != ""
	if paste {
		// the callback may not be reachable from the browser: the
		// profile's redirect URI (else http://localhost) and a paste back
		redirect = ""
	}
	authURL, err := s.o.Authorizer.Start(r.Context(), name, redirect)
	if err != nil {
		s.render(w, "message.html", map[string]any{"Admin": s.admin(r), "Title": "Authorize " + name, "Error": err.Error(),
			"Text": "The app registration must list " + redirect + " as a redirect URI (Entra admin center › App registrations › Authentication › Add a platform › Web or Mobile and desktop)."})
		return
	}
	s.o.Log.Info("web: authorization started", "profile", name, "by", s.admin(r), "paste", paste)
	if paste {
		u, _ := url.Parse(authURL)
		s.render(w, "paste.html", map[string]any{"Admin": s.admin(r), "Name": name, "AuthURL": authURL,
			"Redirect": u.Query().Get("redirect_uri")})
		return
	}
	http.Redirect(w, r, authURL, http.StatusSeeOther)
}

// pasted finishes a sign-in started with paste: the address the browser
// ended on (its query carries state and code) is pasted into the form.
func (s *Server) pasted(w http.ResponseWriter, r *http.Request) {
	if s.o.Authorizer == nil {
		http.Error(w, "sign-ins through the console are not available", http.StatusNotFound)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	raw := strings.TrimSpace(r.FormValue("pasted"))
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[i+1:]
	}
	raw, _, _ = strings.Cut(raw, "#")
	query, err := url.ParseQuery(raw)
	if err == nil && query.Get("state") == "" {
		err = errors.New("the pasted address has no state: paste the whole address from the browser's address bar")
	}
	profile := ""
	if err == nil {
		profile, err = s.o.Authorizer.Finish(r.Context(), query)
	}
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		s.render(w, "message.html", map[string]any{"Admin": s.admin(r), "Title": "Sign-in failed", "Error": err.Error()})
		return
	}
	s.o.Log.Info("web: authorization completed", "profile", profile, "by", s.admin(r))
	s.render(w, "message.html", map[string]any{"Admin": s.admin(r), "Title": "Signed in", "Text": "Profile " + profile + " now has a refresh token; its mailboxes use it from their next poll.", "OK": true})
}

// callback receives the provider's redirect. It is reachable without a
// session (a SameSite=Strict cookie does not come along on a redirect from
// another site): the one-time state of a sign-in an administrator started
// is what authenticates it, and anything else is refused.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	if s.o.Authorizer == nil || r.URL.Query().Get("state") == "" {
		http.Error(w, "no sign-in in progress", http.StatusBadRequest)
		return
	}
	profile, err := s.o.Authorizer.Finish(r.Context(), r.URL.Query())
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		s.render(w, "message.html", map[string]any{"Title": "Sign-in failed", "Error": err.Error()})
		return
	}
	s.o.Log.Info("web: authorization completed", "profile", profile)
	s.render(w, "message.html", map[string]any{"Title": "Signed in", "Text": "Profile " + profile + " now has a refresh token; its mailboxes use it from their next poll.", "OK": true})
}
