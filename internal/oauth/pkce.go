package oauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// PKCE (RFC 7636) and the state parameter of the authorization request.

// randomString returns n random bytes as unpadded base64url: 32 bytes give
// the 43 characters RFC 7636 §4.1 asks of a code verifier.
func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("oauth: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// newVerifier returns a fresh code verifier.
func newVerifier() (string, error) { return randomString(32) }

// challengeS256 is BASE64URL(SHA256(ASCII(verifier))) (RFC 7636 §4.2).
func challengeS256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
