package emulator

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

var b64url = base64.RawURLEncoding

// signingKey is the tenant's token-signing key as published in the JWKS.
type signingKey struct {
	key *rsa.PrivateKey
	kid string // also the x5t: base64url SHA-1 of the certificate
	der []byte // self-signed certificate, for x5c
}

// signJWT signs claims RS256 with header typ JWT and kid/x5t, as Entra's
// access and ID tokens are.
func (k *signingKey) signJWT(claims map[string]any) (string, error) {
	header := map[string]any{"typ": "JWT", "alg": "RS256", "x5t": k.kid, "kid": k.kid}
	hb, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signing := b64url.EncodeToString(hb) + "." + b64url.EncodeToString(cb)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + b64url.EncodeToString(sig), nil
}

// jwtParts is a split, decoded compact JWS.
type jwtParts struct {
	header  map[string]any
	claims  map[string]any
	signing string // header.payload as sent
	sig     []byte
}

// splitJWT decodes a compact JWS without verifying it.
func splitJWT(raw string) (*jwtParts, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS: want 3 parts")
	}
	var p jwtParts
	hb, err := b64url.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if err := json.Unmarshal(hb, &p.header); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	cb, err := b64url.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(cb)))
	dec.UseNumber()
	if err := dec.Decode(&p.claims); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	if p.sig, err = b64url.DecodeString(parts[2]); err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	p.signing = parts[0] + "." + parts[1]
	return &p, nil
}

// verify checks the signature for alg RS256 or PS256.
func (p *jwtParts) verify(pub *rsa.PublicKey) error {
	sum := sha256.Sum256([]byte(p.signing))
	switch alg, _ := p.header["alg"].(string); alg {
	case "RS256":
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], p.sig)
	case "PS256":
		return rsa.VerifyPSS(pub, crypto.SHA256, sum[:], p.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	default:
		return fmt.Errorf("unsupported alg %q", alg)
	}
}

func (p *jwtParts) str(name string) string {
	s, _ := p.claims[name].(string)
	return s
}

// numeric returns a NumericDate claim; ok is false when absent or not a
// number.
func (p *jwtParts) numeric(name string) (time.Time, bool) {
	n, ok := p.claims[name].(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// Claims are the claims of an access token the emulator issued.
type Claims struct {
	Aud, Iss, Tid, AppID, Azp, Oid, Sub string
	Upn, PreferredUsername, Name        string
	Scp                                 string   // delegated: space-separated permissions
	Roles                               []string // app-only: application permissions
	Idtyp                               string   // "app" or "user"
	Ver                                 string
	AppIDACR                            string // 0 public client, 1 secret, 2 certificate
	Exp, Nbf, Iat                       time.Time
}

// Scopes returns the delegated permissions in Scp.
func (c *Claims) Scopes() []string { return strings.Fields(c.Scp) }

// ErrTokenExpired is VerifyAccessToken's refusal of a token past its
// expiry (the claims are returned with it).
var ErrTokenExpired = errors.New("emulator: access token expired")

// VerifyAccessToken checks that raw is an access token this emulator
// signed and that it is within its validity, and returns its claims.
func (s *Server) VerifyAccessToken(raw string) (*Claims, error) {
	p, err := splitJWT(raw)
	if err != nil {
		return nil, fmt.Errorf("emulator: access token: %w", err)
	}
	if typ, _ := p.header["typ"].(string); typ != "JWT" {
		return nil, errors.New("emulator: access token: header typ is not JWT")
	}
	if alg, _ := p.header["alg"].(string); alg != "RS256" {
		return nil, errors.New("emulator: access token: alg is not RS256")
	}
	if kid, _ := p.header["kid"].(string); kid != s.sign.kid {
		return nil, errors.New("emulator: access token: signed with an unknown key")
	}
	if err := p.verify(&s.sign.key.PublicKey); err != nil {
		return nil, errors.New("emulator: access token: invalid signature")
	}
	c := &Claims{
		Aud: p.str("aud"), Iss: p.str("iss"), Tid: p.str("tid"), AppID: p.str("appid"), Azp: p.str("azp"),
		Oid: p.str("oid"), Sub: p.str("sub"), Upn: p.str("upn"), PreferredUsername: p.str("preferred_username"),
		Name: p.str("name"), Scp: p.str("scp"), Idtyp: p.str("idtyp"), Ver: p.str("ver"), AppIDACR: p.str("appidacr"),
	}
	if roles, ok := p.claims["roles"].([]any); ok {
		for _, r := range roles {
			if s, ok := r.(string); ok {
				c.Roles = append(c.Roles, s)
			}
		}
	}
	c.Exp, _ = p.numeric("exp")
	c.Nbf, _ = p.numeric("nbf")
	c.Iat, _ = p.numeric("iat")
	now := s.now()
	if c.Exp.IsZero() || !now.Before(c.Exp) {
		return c, fmt.Errorf("%w at %s", ErrTokenExpired, c.Exp.UTC().Format(time.RFC3339))
	}
	if !c.Nbf.IsZero() && now.Add(5*time.Minute).Before(c.Nbf) {
		return c, errors.New("emulator: access token not yet valid")
	}
	return c, nil
}

// jwk is one key of the JWKS document.
func (k *signingKey) jwk(issuer string) map[string]any {
	return map[string]any{
		"kty": "RSA", "use": "sig", "kid": k.kid, "x5t": k.kid,
		"n":      b64url.EncodeToString(k.key.N.Bytes()),
		"e":      b64url.EncodeToString(big.NewInt(int64(k.key.E)).Bytes()),
		"x5c":    []string{base64.StdEncoding.EncodeToString(k.der)},
		"issuer": issuer,
	}
}
