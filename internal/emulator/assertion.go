package emulator

import (
	"crypto/rsa"
	"encoding/base64"
	"net/http"
	"strings"
	"time"
)

const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLeeway is the clock skew allowed on nbf and exp.
const assertionLeeway = 5 * time.Minute

// decodeThumb decodes a thumbprint in base64url or standard base64, with or
// without padding (Entra accepts both; MSAL sends the standard alphabet).
func decodeThumb(s string) []byte {
	s = strings.TrimRight(s, "=")
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b
	}
	if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return b
	}
	return nil
}

// checkAssertion validates a client assertion for app as Entra does:
// known certificate by thumbprint, signature, iss = sub = client id, aud
// this token URL, time window.
func (s *Server) checkAssertion(r *http.Request, app *App, raw string) *aadError {
	p, err := splitJWT(raw)
	if err != nil {
		return errMalformedJWT()
	}
	alg, _ := p.header["alg"].(string)
	if alg != "RS256" && alg != "PS256" {
		return errMalformedJWT()
	}
	var sha1T, sha256T []byte
	var shown string
	if v, ok := p.header["x5t#S256"].(string); ok {
		sha256T, shown = decodeThumb(v), v
	}
	if v, ok := p.header["x5t"].(string); ok {
		sha1T = decodeThumb(v)
		if shown == "" {
			shown = v
		}
	}
	if sha1T == nil && sha256T == nil {
		return errKeyNotFound("", app.ID)
	}
	s.tenant.mu.Lock()
	cert := app.findCert(sha1T, sha256T)
	s.tenant.mu.Unlock()
	if cert == nil {
		return errKeyNotFound(strings.ToUpper(hexOr(sha1T, sha256T)), app.ID)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || p.verify(pub) != nil {
		return errBadSignature()
	}
	now := s.now()
	if now.After(cert.NotAfter) {
		return errBadSignature()
	}
	if _, isArray := p.claims["aud"].([]any); isArray {
		return errMalformedJWT()
	}
	iss, sub := p.str("iss"), p.str("sub")
	if sub != iss {
		return errSubIss()
	}
	if !strings.EqualFold(iss, app.ID) {
		return errAppNotFound(iss, s.tenant.id)
	}
	if !s.audienceOK(r, p.str("aud")) {
		return errMalformedJWT()
	}
	nbf, hasNbf := p.numeric("nbf")
	exp, hasExp := p.numeric("exp")
	if !hasExp {
		return errMalformedJWT()
	}
	if !hasNbf {
		nbf = time.Unix(0, 0)
	}
	if now.Add(assertionLeeway).Before(nbf) || !now.Before(exp.Add(assertionLeeway)) {
		return errAssertionTime(now, nbf, exp)
	}
	return nil
}

// audienceOK: aud must be the token URL the request was posted to, on this
// host; the tenant may be named by id or by domain.
func (s *Server) audienceOK(r *http.Request, aud string) bool {
	base := s.base(r)
	rest, ok := strings.CutPrefix(aud, base+"/")
	if !ok {
		return false
	}
	seg, path, ok := strings.Cut(rest, "/")
	if !ok || "/"+path != strings.TrimPrefix(r.URL.Path, "/"+r.PathValue("tenant")) {
		return false
	}
	return s.tenant.matches(seg) || strings.EqualFold(seg, r.PathValue("tenant"))
}

func hexOr(a, b []byte) string {
	v := a
	if v == nil {
		v = b
	}
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(v))
	for _, c := range v {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
