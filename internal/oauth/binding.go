package oauth

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
	"time"
)

// A binding is a hash of the profile settings that decide which token the
// authorization server hands out. Manager stores it in front of every token
// it saves (inside the value, which store.Store seals, so neither the hash
// nor anything it covers is readable in the database) and drops a stored
// token whose binding differs from the profile's now: a profile whose
// secret, certificate, authority, tenant, client id, user or scopes
// changed gets a new token instead of one obtained with the old settings.
//
// Two bindings, because the two kinds of token are bound to different
// things:
//
//   - an access token to everything: provider, grant, token endpoint (so
//     authority, tenant and endpoint version), client id, the client
//     secret's value or the certificate's SHA-256 thumbprint and algorithm,
//     the way the secret is sent, username and password (the scope set is
//     the Store's key already);
//   - a refresh token only to what the server binds it to: provider, token
//     endpoint, tenant and client id. Rotating the client secret or the
//     certificate keeps the user's sign-in; moving the profile to another
//     app, tenant or authority drops it (it would be refused there, and it
//     should not be sent to another server).
//
// A value stored without a binding (by an older mailgate, or a refresh
// token imported by hand) is a cache miss for access tokens, and is used as
// is for refresh tokens (then bound when the server rotates it).

// bindingPrefix starts a value stored with its binding:
// bindingPrefix + hex(SHA-256) + ":" + value.
const bindingPrefix = "mailgate-binding-v1:"

// accessBinding is the binding of p's access tokens.
func (p *Profile) accessBinding() string {
	h := sha256.New()
	p.writeIssuer(h)
	writeField(h, "grant", string(p.grant()))
	writeField(h, "auth_style", string(p.authStyle()))
	writeField(h, "secret", p.ClientSecret)
	if c := p.Certificate; c != nil {
		thumb := ""
		if c.Cert != nil {
			sum := sha256.Sum256(c.Cert.Raw)
			thumb = hex.EncodeToString(sum[:])
		}
		writeField(h, "certificate", thumb)
		writeField(h, "alg", c.alg())
	}
	writeField(h, "username", p.Username)
	writeField(h, "password", p.Password)
	if k := p.ServiceAccount; k != nil {
		writeField(h, "service_account", k.ClientEmail)
		writeField(h, "private_key_id", k.PrivateKeyID)
		writeField(h, "private_key", k.PrivateKey)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// refreshBinding is the binding of p's refresh token.
func (p *Profile) refreshBinding() string {
	h := sha256.New()
	p.writeIssuer(h)
	return hex.EncodeToString(h.Sum(nil))
}

// writeIssuer hashes who issues the token and to which client.
func (p *Profile) writeIssuer(h hash.Hash) {
	writeField(h, "v", "1")
	writeField(h, "provider", string(p.provider()))
	e, _ := p.Endpoints() // Validate ran before; an error leaves it empty
	writeField(h, "token_url", e.Token)
	writeField(h, "tenant", strings.ToLower(p.Tenant))
	writeField(h, "client_id", p.ClientID)
}

// writeField hashes a name and a value, each length-prefixed so that no two
// different field lists hash the same bytes.
func writeField(h hash.Hash, name, value string) {
	var n [8]byte
	for _, s := range []string{name, value} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
}

// bind prefixes value with its binding, for the Store.
func bind(binding, value string) string {
	if value == "" {
		return ""
	}
	return bindingPrefix + binding + ":" + value
}

// bindingPrefixV2 starts a refresh token stored with its binding and the
// time its user signed in: bindingPrefixV2 + binding + ":" + unix seconds
// + ":" + value. The sign-in time tells a refresh token that died young
// (Google's 7 days for apps in Testing status) from an old one.
const bindingPrefixV2 = "mailgate-binding-v2:"

// bindRefresh prefixes a refresh token with its binding and sign-in time
// (zero: unknown, stored as bind does).
func bindRefresh(binding string, signedIn time.Time, value string) string {
	if value == "" || signedIn.IsZero() {
		return bind(binding, value)
	}
	return bindingPrefixV2 + binding + ":" + strconv.FormatInt(signedIn.Unix(), 10) + ":" + value
}

// unbindRefresh splits a stored refresh token into its binding, sign-in
// time (zero when not stored) and value.
func unbindRefresh(stored string) (binding string, signedIn time.Time, value string) {
	rest, ok := strings.CutPrefix(stored, bindingPrefixV2)
	if !ok {
		b, v := unbind(stored)
		return b, time.Time{}, v
	}
	b, rest, ok1 := strings.Cut(rest, ":")
	ts, v, ok2 := strings.Cut(rest, ":")
	n, err := strconv.ParseInt(ts, 10, 64)
	if !ok1 || !ok2 || err != nil {
		return "", time.Time{}, stored
	}
	return b, time.Unix(n, 0), v
}

// unbind splits a stored value into its binding ("" when it has none) and
// the value.
func unbind(stored string) (binding, value string) {
	rest, ok := strings.CutPrefix(stored, bindingPrefix)
	if !ok {
		return "", stored
	}
	b, v, ok := strings.Cut(rest, ":")
	if !ok {
		return "", stored
	}
	return b, v
}
