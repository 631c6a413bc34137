package oauth

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// maxPasted bounds the line PasteLogin reads.
const maxPasted = 16 << 10

// ErrNothingPasted means the paste flow read no URL or code.
var ErrNothingPasted = errors.New("oauth: nothing was pasted (want the address the browser was sent to, or its code)")

// PastedCode returns the authorization code of what a person pasted after
// signing in where the redirect URI is not reachable (a server without a
// browser): the whole redirect URL from the browser's address bar, whose
// state must be a's (ErrStateMismatch otherwise) and which may carry an
// error instead (an *Error), or the bare code alone.
func (a *AuthorizationRequest) PastedCode(pasted string) (string, error) {
	s := strings.TrimSpace(pasted)
	if s == "" {
		return "", ErrNothingPasted
	}
	if !strings.ContainsAny(s, "?&=") {
		return s, nil // the bare code: nothing to check it against
	}
	raw := s
	if i := strings.IndexByte(s, '?'); i >= 0 {
		raw = s[i+1:]
	}
	raw, _, _ = strings.Cut(raw, "#")
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "", fmt.Errorf("oauth: the pasted address does not parse: %w", err)
	}
	return a.Code(q)
}

// PasteLogin signs a person in without a reachable redirect URI: it prints
// the authorization URL (PKCE S256 and a state) to out, reads one line from
// in (the redirect URL the browser ended on, or the bare code), checks its
// state, redeems the code and stores the tokens with Accept. redirectURI
// "" is the profile's, else http://localhost. Microsoft and Google
// profiles alike.
func (m *Manager) PasteLogin(ctx context.Context, p *Profile, in io.Reader, out io.Writer, redirectURI string) (*Token, error) {
	if redirectURI == "" {
		redirectURI = p.RedirectURI
	}
	if redirectURI == "" {
		redirectURI = defaultLoginRedirect
	}
	areq, err := StartAuthorization(p, redirectURI)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "Open this URL in a browser on any machine and sign in:\n\n  %s\n\n", areq.URL)
	fmt.Fprintf(out, "The browser then goes to %s…, which may fail to load: that is expected.\n", areq.RedirectURI)
	fmt.Fprintf(out, "Copy the whole address from its address bar and paste it here, then press Enter:\n")
	line, err := bufio.NewReaderSize(io.LimitReader(in, maxPasted), maxPasted).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("oauth: read the pasted address: %w", err)
	}
	code, err := areq.PastedCode(line)
	if err != nil {
		return nil, err
	}
	tok, err := m.requester(p).completeAuthorization(ctx, p, areq, code)
	if err != nil {
		return nil, err
	}
	return m.accepted(ctx, p, tok)
}
