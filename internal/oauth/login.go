package oauth

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// DefaultLoginTimeout bounds how long Login waits for the browser.
const DefaultLoginTimeout = 5 * time.Minute

// defaultLoginRedirect is used when neither the options nor the profile
// name a redirect URI: Entra matches http://localhost redirect URIs of
// native apps whatever the port, so a random port works.
const defaultLoginRedirect = "http://localhost"

// LoginOptions tune Login. The zero value prints nothing, opens a browser
// when a display is available and waits DefaultLoginTimeout.
type LoginOptions struct {
	// Out receives the URL to open and progress lines (stderr in the CLI).
	Out io.Writer
	// RedirectURI overrides the profile's. It must be an http URL on a
	// loopback host (localhost, 127.0.0.1, [::1]); its port is listened on,
	// or a random one when it has none.
	RedirectURI string
	// OpenBrowser opens the URL; nil tries xdg-open (when DISPLAY or
	// WAYLAND_DISPLAY is set), open on macOS, the URL handler on Windows.
	OpenBrowser func(url string) error
	// NoBrowser only prints the URL.
	NoBrowser bool
	// Getenv looks up DISPLAY and WAYLAND_DISPLAY; nil is os.Getenv.
	Getenv func(string) string
	// Timeout is how long to wait for the sign-in; 0 is DefaultLoginTimeout.
	Timeout time.Duration
}

// errNoDisplay means no graphical session to open a browser in.
var errNoDisplay = errors.New("no DISPLAY or WAYLAND_DISPLAY set")

// openBrowser is the default OpenBrowser.
func openBrowser(getenv func(string) string) func(string) error {
	return func(u string) error {
		var cmd *exec.Cmd
		switch runtime.GOOS {
		case "darwin":
			cmd = exec.Command("open", u)
		case "windows":
			cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
		default:
			if getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
				return errNoDisplay
			}
			cmd = exec.Command("xdg-open", u)
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		go func() { _ = cmd.Wait() }()
		return nil
	}
}

// Login runs the authorization-code flow for a person at this machine: it
// listens on the loopback redirect URI, prints the authorization URL to
// opts.Out and tries to open a browser, checks the state of the answer,
// redeems the code with the PKCE verifier and shows a "you can close this
// tab" page. It gives up after opts.Timeout or when ctx ends. The token
// normally carries a refresh token, which the caller stores
// (Manager.Login does).
func Login(ctx context.Context, p *Profile, opts LoginOptions) (*Token, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return direct().login(ctx, p, opts)
}

// loginResult is the outcome of the callback.
type loginResult struct {
	tok *Token
	err error
}

func (r requester) login(ctx context.Context, p *Profile, opts LoginOptions) (*Token, error) {
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultLoginTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	raw := opts.RedirectURI
	if raw == "" {
		raw = p.RedirectURI
	}
	if raw == "" {
		raw = defaultLoginRedirect
	}
	redirect, listeners, err := listenLoopback(raw)
	if err != nil {
		return nil, err
	}
	areq, err := StartAuthorization(p, redirect.String())
	if err != nil {
		closeAll(listeners)
		return nil, err
	}

	results := make(chan loginResult, 1)
	var once sync.Once
	path := redirect.Path
	if path == "" {
		path = "/"
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != path {
			http.NotFound(w, req)
			return
		}
		q := req.URL.Query()
		if !q.Has("state") && !q.Has("code") && !q.Has("error") {
			renderLoginPage(w, http.StatusBadRequest, "Not a sign-in answer", "This address waits for the answer of a mailgate sign-in.")
			return
		}
		code, err := areq.Code(q)
		if errors.Is(err, ErrStateMismatch) {
			fmt.Fprintln(out, "mailgate: ignored a sign-in answer whose state does not match this login")
			renderLoginPage(w, http.StatusBadRequest, "Sign-in answer refused", "The answer does not belong to the sign-in in progress (state mismatch). Start again from the URL mailgate printed.")
			return
		}
		handled := false
		once.Do(func() {
			handled = true
			var tok *Token
			if err == nil {
				tok, err = r.completeAuthorization(ctx, p, areq, code)
			}
			if err != nil {
				renderLoginPage(w, http.StatusOK, "Sign-in failed", err.Error()+" "+Explain(err))
			} else {
				renderLoginPage(w, http.StatusOK, "Signed in", "mailgate has its token. You can close this tab.")
			}
			results <- loginResult{tok: tok, err: err}
		})
		if !handled {
			renderLoginPage(w, http.StatusOK, "Already done", "This sign-in was already completed. You can close this tab.")
		}
	})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	for _, l := range listeners {
		go func() { _ = srv.Serve(l) }()
	}
	defer func() {
		shutCtx, c := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer c()
		_ = srv.Shutdown(shutCtx)
	}()

	fmt.Fprintf(out, "Open this URL in a browser to sign in:\n\n  %s\n\n", areq.URL)
	fmt.Fprintf(out, "Waiting up to %s for the answer on %s\n", timeout.Round(time.Second), redirect.String())
	if !opts.NoBrowser {
		open := opts.OpenBrowser
		if open == nil {
			getenv := opts.Getenv
			if getenv == nil {
				getenv = os.Getenv
			}
			open = openBrowser(getenv)
		}
		if err := open(areq.URL); err != nil {
			fmt.Fprintf(out, "(no browser opened: %v; open the URL yourself)\n", err)
		}
	}

	select {
	case res := <-results:
		return res.tok, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("oauth: login: no sign-in answer on %s: %w", redirect.String(), ctx.Err())
	}
}

// listenLoopback opens the listeners for an http loopback redirect URI and
// returns the URI with the port actually bound. For "localhost" it listens
// on 127.0.0.1 and, on the same port, [::1] when available, since browsers
// may resolve localhost to either.
func listenLoopback(raw string) (*url.URL, []net.Listener, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("oauth: login: redirect URI %q: %w", raw, err)
	}
	host := u.Hostname()
	if u.Scheme != "http" || !loopbackHost(host) {
		return nil, nil, fmt.Errorf("oauth: login: redirect URI %q must be http on localhost, 127.0.0.1 or [::1] "+
			"(register it under Authentication › Mobile and desktop applications)", raw)
	}
	port := u.Port()
	if port == "" {
		port = "0"
	}
	first := host
	if host == "localhost" || host == "" {
		first = "127.0.0.1"
	}
	l, err := net.Listen("tcp", net.JoinHostPort(first, port))
	if err != nil {
		return nil, nil, fmt.Errorf("oauth: login: listen for the redirect on %s: %w", net.JoinHostPort(host, port), err)
	}
	listeners := []net.Listener{l}
	bound := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	if host == "localhost" {
		if l6, err := net.Listen("tcp", net.JoinHostPort("::1", bound)); err == nil {
			listeners = append(listeners, l6)
		}
	}
	u.Host = net.JoinHostPort(host, bound)
	return u, listeners, nil
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		_ = l.Close()
	}
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mailgate: {{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em}</style></head>
<body><h1>{{.Title}}</h1><p>{{.Text}}</p></body></html>
`))

func renderLoginPage(w http.ResponseWriter, status int, title, text string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = loginPage.Execute(w, struct{ Title, Text string }{title, text})
}
