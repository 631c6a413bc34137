package oauth

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors, for errors.Is.
var (
	// ErrNoToken is returned by a Store that holds nothing for the key.
	ErrNoToken = errors.New("oauth: no token stored")
	// ErrLoginRequired means a delegated profile has no usable refresh
	// token: someone has to run `mailgate login` (or the console's sign-in)
	// for it.
	ErrLoginRequired = errors.New("oauth: login required")
	// ErrMalformedResponse means a 2xx token response could not be used
	// (not JSON, no access_token, no expiry).
	ErrMalformedResponse = errors.New("oauth: malformed token response")
	// ErrDeviceCodeExpired means nobody approved a device-code sign-in
	// before the code expired.
	ErrDeviceCodeExpired = errors.New("oauth: device code expired before sign-in completed")
	// ErrStateMismatch means an authorization response carried a state that
	// is not the one sent, so it was not answering our request.
	ErrStateMismatch = errors.New("oauth: authorization response state does not match the request")
)

// Error is an authorization server's refusal: an RFC 6749 §5.2 error
// response extended with Microsoft's fields, or a non-JSON answer such as a
// plain-text "Too Many Requests". Branch on Code (and Temporary), as
// Microsoft asks; AADSTS gives the number admins look up.
type Error struct {
	// Endpoint is the endpoint that answered: "token", "devicecode" or
	// "authorize".
	Endpoint string
	// Status is the HTTP status (0 for an authorization redirect).
	Status int
	// Code is the RFC 6749 "error" value (invalid_client, invalid_grant,
	// authorization_pending, ...). Empty for non-JSON answers.
	Code string
	// Description is error_description as sent, Microsoft's trace lines
	// included; Summary gives the first line.
	Description string
	// ErrorCodes is Microsoft's error_codes (AADSTS numbers).
	ErrorCodes []int
	// SubError is Microsoft's suberror (consent_required, basic_action, ...).
	SubError string
	// TraceID, CorrelationID and Timestamp identify the request to
	// Microsoft support.
	TraceID       string
	CorrelationID string
	Timestamp     string
	// ErrorURI is error_uri, a page about the error.
	ErrorURI string
	// Claims is a claims challenge (JSON string) Microsoft may attach when
	// Conditional Access needs more.
	Claims string
	// RetryAfter is the wait the server asked for (Retry-After in seconds
	// or as an HTTP date), 0 when absent.
	RetryAfter time.Duration
	// Body is the start of a body that was not an OAuth error object.
	Body string
}

// errorJSON holds the error members of a token-endpoint body.
type errorJSON struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	SubError         string `json:"suberror"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	Timestamp        string `json:"timestamp"`
	ErrorURI         string `json:"error_uri"`
	Claims           string `json:"claims"`
}

// maxBodyExcerpt bounds how much of a non-JSON body an Error keeps.
const maxBodyExcerpt = 256

// newError builds an *Error from a refused token-endpoint answer.
func newError(status int, header http.Header, body []byte, jsonOK bool, ej *errorJSON, now time.Time) *Error {
	e := &Error{Endpoint: "token", Status: status}
	if jsonOK {
		e.Code = ej.Error
		e.Description = ej.ErrorDescription
		e.ErrorCodes = ej.ErrorCodes
		e.SubError = ej.SubError
		e.TraceID = ej.TraceID
		e.CorrelationID = ej.CorrelationID
		e.Timestamp = ej.Timestamp
		e.ErrorURI = ej.ErrorURI
		e.Claims = ej.Claims
	}
	if e.Code == "" && e.Description == "" {
		e.Body = excerpt(body)
	}
	e.RetryAfter = parseRetryAfter(header.Get("Retry-After"), now)
	return e
}

// excerpt returns the start of a body as printable single-line text.
func excerpt(body []byte) string {
	s := string(body)
	if len(s) > maxBodyExcerpt {
		s = s[:maxBodyExcerpt]
		for !utf8.ValidString(s) && len(s) > 0 {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	s = strings.ToValidUTF8(s, "?")
	return strings.Join(strings.Fields(s), " ")
}

// maxRetryAfter bounds a server's Retry-After; MSAL caps its waits at an
// hour too.
const maxRetryAfter = time.Hour

// parseRetryAfter reads Retry-After as delta-seconds or an HTTP-date
// (RFC 9110 §10.2.3) relative to now.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d < 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}

var aadstsPrefix = regexp.MustCompile(`^\s*AADSTS(\d{1,9})\b`)

// AADSTS returns Microsoft's error number: the first of error_codes, or the
// number in an "AADSTSnnn:" description prefix, or 0.
func (e *Error) AADSTS() int {
	for _, c := range e.ErrorCodes {
		if c != 0 {
			return c
		}
	}
	if m := aadstsPrefix.FindStringSubmatch(e.Description); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

// Temporary reports whether asking again later may succeed unchanged:
// throttling (429), server errors (5xx) and temporarily_unavailable.
func (e *Error) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500 || e.Code == "temporarily_unavailable"
}

// Summary is the first line of the description without its AADSTS prefix
// (Microsoft appends trace lines after \r\n), or the body excerpt.
func (e *Error) Summary() string {
	d := e.Description
	if i := strings.IndexAny(d, "\r\n"); i >= 0 {
		d = d[:i]
	}
	if m := aadstsPrefix.FindStringIndex(d); m != nil {
		d = strings.TrimLeft(d[m[1]:], ": ")
	}
	d = strings.TrimSpace(d)
	if d == "" {
		d = e.Body
	}
	return d
}

// Error formats the refusal on one line.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("oauth: ")
	endpoint := e.Endpoint
	if endpoint == "" {
		endpoint = "token"
	}
	b.WriteString(endpoint)
	b.WriteString(" endpoint")
	if e.Code != "" {
		b.WriteString(" refused: ")
		b.WriteString(e.Code)
	} else {
		b.WriteString(" answered")
	}
	var facts []string
	if e.Status != 0 {
		facts = append(facts, fmt.Sprintf("HTTP %d", e.Status))
	}
	if n := e.AADSTS(); n != 0 {
		facts = append(facts, fmt.Sprintf("AADSTS%d", n))
	}
	if e.SubError != "" {
		facts = append(facts, "suberror "+e.SubError)
	}
	if len(facts) > 0 {
		if e.Code != "" {
			b.WriteString(" (" + strings.Join(facts, ", ") + ")")
		} else {
			b.WriteString(" " + strings.Join(facts, ", "))
		}
	}
	if s := e.Summary(); s != "" {
		b.WriteString(": ")
		b.WriteString(s)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, "; retry after %s", e.RetryAfter)
	}
	return b.String()
}

// ValidationError lists what is wrong with a Profile.
type ValidationError struct {
	Profile  string
	Problems []string
}

func (e *ValidationError) Error() string {
	name := e.Profile
	if name == "" {
		name = "(unnamed)"
	}
	return fmt.Sprintf("oauth: profile %s: %s", name, strings.Join(e.Problems, "; "))
}
