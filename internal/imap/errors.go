package imap

import (
	"bytes"
	"errors"
	"net"
	"strings"

	goimap "github.com/emersion/go-imap/v2"
)

// Kind classifies an IMAP failure for the caller's next move.
type Kind int

const (
	// KindConnection: the connection failed or was closed (temporary).
	KindConnection Kind = iota
	// KindTLS: the TLS handshake or STARTTLS failed (certificate, protocol).
	KindTLS
	// KindAuthFailed: AUTHENTICATE was refused (bad or expired token,
	// missing permission).
	KindAuthFailed
	// KindTokenExpired: the server ended the session because the access
	// token expired (Exchange: "BYE … AccessTokenExpired"); reconnect with a
	// fresh token.
	KindTokenExpired
	// KindNotConnected: Exchange accepted the token but cannot open the
	// mailbox ("User is authenticated but not connected"): the app's
	// service principal or its mailbox permission is missing.
	KindNotConnected
	// KindNo: a command was refused (NO).
	KindNo
	// KindBad: the server did not understand a command (BAD).
	KindBad
	// KindTooManyConnections: the account has as many connections as the
	// server allows (Gmail: "NO [ALERT] Too many simultaneous connections.",
	// 15 per account); retry much later, not at once.
	KindTooManyConnections
	// KindSessionExpired: the server ended a long session as it does
	// routinely (Gmail: "* BYE Session expired, please login again.");
	// reconnect, nothing is wrong.
	KindSessionExpired
)

func (k Kind) String() string {
	return [...]string{"connection", "tls", "auth failed", "token expired", "not connected", "refused", "bad command",
		"too many connections", "session expired"}[k]
}

// Error is a failed IMAP operation.
type Error struct {
	Op   string // dial, tls, greeting, starttls, authenticate, select, fetch, …
	Kind Kind
	Code string // response code, e.g. AUTHENTICATIONFAILED
	Text string // the server's text
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("imap: " + e.Op)
	if e.Text != "" {
		b.WriteString(": server said ")
		if e.Code != "" {
			b.WriteString("[" + e.Code + "] ")
		}
		b.WriteString(e.Text)
	} else if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	switch e.Kind {
	case KindTokenExpired:
		b.WriteString(" (the access token expired during the session)")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether retrying later may succeed.
func (e *Error) Temporary() bool {
	return e.Kind == KindConnection || e.Kind == KindTokenExpired || e.Kind == KindTooManyConnections ||
		e.Kind == KindSessionExpired || e.Code == string(goimap.ResponseCodeUnavailable) ||
		e.Code == string(goimap.ResponseCodeInUse) || e.Code == string(goimap.ResponseCodeLimit)
}

// Classify tells from a status response's type and text what happened:
// Exchange's and Dovecot's wordings for an expired token, Exchange's
// "authenticated but not connected", Gmail's connection cap and its
// routine "Session expired".
func Classify(typ, code, text string) Kind {
	lt := strings.ToLower(text)
	switch {
	case strings.Contains(lt, "too many simultaneous connections"):
		return KindTooManyConnections
	case strings.Contains(lt, "session expired"):
		return KindSessionExpired
	case strings.Contains(lt, "accesstokenexpired") || strings.Contains(lt, "session invalidated") ||
		strings.Contains(lt, "token expired") || strings.Contains(lt, "token has expired"):
		return KindTokenExpired
	case strings.Contains(lt, "authenticated but not connected"):
		return KindNotConnected
	}
	switch strings.ToUpper(typ) {
	case "BYE":
		return KindConnection
	case "BAD":
		return KindBad
	}
	if strings.EqualFold(code, string(goimap.ResponseCodeAuthenticationFailed)) || strings.EqualFold(code, string(goimap.ResponseCodeAuthorizationFailed)) {
		return KindAuthFailed
	}
	return KindNo
}

// classifyErr turns a library error into *Error.
func classifyErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	var ie *goimap.Error
	if errors.As(err, &ie) {
		return &Error{Op: op, Kind: Classify(string(ie.Type), string(ie.Code), ie.Text), Code: string(ie.Code), Text: ie.Text, Err: err}
	}
	// anything else (a network error, a closed connection, a malformed
	// reply) ended the connection
	return &Error{Op: op, Kind: KindConnection, Err: err}
}

// sniffConn watches the server's bytes for an untagged BYE, whose text
// the library drops, so that "BYE … AccessTokenExpired" can be told from a
// dropped connection.
type sniffConn struct {
	net.Conn
	cl      *Client
	tail    []byte // the end of the previous read, for a BYE split across reads
	pending bool   // tail holds a BYE line whose end has not come yet

	held, out []byte // GmailMsgIDs: a line not complete yet, lines ready (gmail.go)
}

func (cl *Client) sniff(c net.Conn) net.Conn { return &sniffConn{Conn: c, cl: cl, tail: []byte("\n")} }

// Write fixes one wire detail of go-imap's AUTHENTICATE: it encodes an
// empty SASL response as "=" (right for an initial response, RFC 4959), but
// a client answering a server's error challenge must send an empty line
// (RFC 3501 §6.2.2); Dovecot rejects "=" there with "Invalid base64 data".
func (s *sniffConn) Write(p []byte) (int, error) {
	if s.cl.authenticating.Load() && string(p) == "=\r\n" {
		if _, err := s.Conn.Write([]byte("\r\n")); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if g := s.cl.gm.Load(); g != nil {
		if q := g.fetchWrite(p); len(q) != len(p) {
			if _, err := s.Conn.Write(q); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return s.Conn.Write(p)
}

// Read watches for a BYE and, while GmailMsgIDs runs, takes X-GM-MSGID out
// of what the library reads (gmail.go): the server's answer may come into
// a Read that began before the call, so the check follows the read.
func (s *sniffConn) Read(p []byte) (int, error) {
	for {
		if len(s.out) > 0 {
			n := copy(p, s.out)
			s.out = s.out[n:]
			return n, nil
		}
		if len(s.held) > 0 && s.cl.gm.Load() == nil {
			s.filter(nil, nil)
			continue
		}
		n, err := s.Conn.Read(p)
		if n > 0 {
			s.scan(p[:n])
		}
		g := s.cl.gm.Load()
		if n == 0 || g == nil && len(s.held) == 0 {
			return n, err
		}
		s.filter(p[:n], g)
		if err != nil {
			s.filter(nil, nil)
			n := copy(p, s.out)
			s.out = s.out[n:]
			return n, err
		}
	}
}

func (s *sniffConn) scan(b []byte) {
	const marker = "\n* BYE "
	// Fast path, almost every read: no BYE in b, none across the boundary
	// with the previous read, no BYE line waiting for its end.
	if !s.pending && !bytes.Contains(b, []byte(marker)) {
		edge := append(s.tail[:len(s.tail):len(s.tail)], b[:min(len(b), len(marker))]...)
		if !bytes.Contains(edge, []byte(marker)) {
			if len(b) >= len(marker)-1 {
				s.tail = append(s.tail[:0], b[len(b)-(len(marker)-1):]...)
			} else {
				s.tail = append(s.tail, b...)
				s.tail = s.tail[max(0, len(s.tail)-(len(marker)-1)):]
			}
			return
		}
	}
	window := append(s.tail, b...)
	s.pending = false
	if i := bytes.LastIndex(window, []byte(marker)); i >= 0 {
		line := window[i+len(marker):]
		complete := false
		if j := bytes.IndexByte(line, '\r'); j >= 0 {
			line, complete = line[:j], true
		}
		if len(line) > 300 {
			line, complete = line[:300], true
		}
		s.cl.mu.Lock()
		s.cl.bye = string(line)
		s.cl.mu.Unlock()
		if !complete { // the rest of the line comes with the next read
			s.tail = append(s.tail[:0], window[i:]...)
			s.pending = true
			return
		}
	}
	keep := min(len(marker)-1, len(window))
	s.tail = append(s.tail[:0], window[len(window)-keep:]...)
}

// byeError turns a dropped connection after a BYE into a classified error.
func (cl *Client) byeError(op string, err error) error {
	cl.mu.Lock()
	bye := cl.bye
	cl.mu.Unlock()
	if bye == "" {
		return err
	}
	code, text := "", bye
	if strings.HasPrefix(text, "[") {
		if j := strings.IndexByte(text, ']'); j > 0 {
			code, text = text[1:j], strings.TrimSpace(text[j+1:])
		}
	}
	return &Error{Op: op, Kind: Classify("BYE", code, text), Code: code, Text: text, Err: err}
}
