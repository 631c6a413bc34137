package oauth

import (
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testCerts caches generated certificates: RSA key generation is slow.
var testCerts sync.Map

func testCertificate(t testing.TB, bits int) (certPEM, keyPEM []byte) {
	t.Helper()
	type pair struct{ c, k []byte }
	if v, ok := testCerts.Load(bits); ok {
		p := v.(pair)
		return p.c, p.k
	}
	c, k, err := NewSelfSignedCertificate("mailgate test", bits, 30)
	if err != nil {
		t.Fatal(err)
	}
	testCerts.Store(bits, pair{c, k})
	return c, k
}

func testClientCertificate(t testing.TB, alg string) *ClientCertificate {
	t.Helper()
	c, k := testCertificate(t, 2048)
	cc, err := LoadClientCertificate(c, k, alg)
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestClientAssertion(t *testing.T) {
	const (
		clientID = "11111111-2222-3333-4444-555555555555"
		aud      = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
	)
	now := time.Now().Truncate(time.Second)
	tests := []struct {
		alg        string
		wantMethod jwt.SigningMethod
		thumbKey   string
		thumb      func(der []byte) string
		absentKey  string
	}{
		{
			alg: "", wantMethod: jwt.SigningMethodPS256, thumbKey: "x5t#S256", absentKey: "x5t",
			thumb: func(der []byte) string { s := sha256.Sum256(der); return base64.RawURLEncoding.EncodeToString(s[:]) },
		},
		{
			alg: "PS256", wantMethod: jwt.SigningMethodPS256, thumbKey: "x5t#S256", absentKey: "x5t",
			thumb: func(der []byte) string { s := sha256.Sum256(der); return base64.RawURLEncoding.EncodeToString(s[:]) },
		},
		{
			alg: "rs256", wantMethod: jwt.SigningMethodRS256, thumbKey: "x5t", absentKey: "x5t#S256",
			thumb: func(der []byte) string { s := sha1.Sum(der); return base64.RawURLEncoding.EncodeToString(s[:]) },
		},
	}
	for _, tt := range tests {
		t.Run("alg="+tt.alg, func(t *testing.T) {
			cc := testClientCertificate(t, tt.alg)
			raw, err := clientAssertion(cc, clientID, aud, now)
			if err != nil {
				t.Fatal(err)
			}
			pub := cc.Cert.PublicKey.(*rsa.PublicKey)
			// Verify independently: golang-jwt's own PS256/RS256 verifier,
			// restricted to the expected algorithm, with the certificate's key.
			parsed, err := jwt.Parse(raw, func(tok *jwt.Token) (any, error) { return pub, nil },
				jwt.WithValidMethods([]string{tt.wantMethod.Alg()}),
				jwt.WithAudience(aud), jwt.WithIssuer(clientID), jwt.WithSubject(clientID),
				jwt.WithExpirationRequired(), jwt.WithTimeFunc(func() time.Time { return now }))
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			h := parsed.Header
			if h["alg"] != tt.wantMethod.Alg() || h["typ"] != "JWT" {
				t.Errorf("header alg %v typ %v", h["alg"], h["typ"])
			}
			if h[tt.thumbKey] != tt.thumb(cc.Cert.Raw) {
				t.Errorf("header %s = %v, want %s", tt.thumbKey, h[tt.thumbKey], tt.thumb(cc.Cert.Raw))
			}
			if _, ok := h[tt.absentKey]; ok {
				t.Errorf("header has %s too", tt.absentKey)
			}

			// Read the claims as raw JSON to check their exact types.
			parts := strings.Split(raw, ".")
			payload, err := base64.RawURLEncoding.DecodeString(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			var claims map[string]any
			if err := json.Unmarshal(payload, &claims); err != nil {
				t.Fatal(err)
			}
			if gotAud, ok := claims["aud"].(string); !ok || gotAud != aud {
				t.Errorf("aud = %#v, want the token URL as a string (an array gives AADSTS50027)", claims["aud"])
			}
			if claims["iss"] != clientID || claims["sub"] != clientID {
				t.Errorf("iss %v sub %v", claims["iss"], claims["sub"])
			}
			if jti, _ := claims["jti"].(string); !uuidV4.MatchString(jti) {
				t.Errorf("jti %q is not a UUIDv4", jti)
			}
			nbf, _ := claims["nbf"].(float64)
			exp, _ := claims["exp"].(float64)
			if int64(nbf) != now.Unix() || int64(exp) != now.Add(10*time.Minute).Unix() {
				t.Errorf("nbf %v exp %v, want %d and %d", nbf, exp, now.Unix(), now.Add(10*time.Minute).Unix())
			}
			if len(claims) != 6 {
				t.Errorf("claims %v: want exactly aud iss sub jti nbf exp", claims)
			}
		})
	}
}

func TestClientAssertionFreshPerRequest(t *testing.T) {
	cc := testClientCertificate(t, "")
	now := time.Now()
	seen := map[string]bool{}
	for range 20 {
		raw, err := clientAssertion(cc, "app", "https://login.example/t/oauth2/v2.0/token", now)
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := jwt.NewParser().ParseUnverified(raw, jwt.MapClaims{})
		if err != nil {
			t.Fatal(err)
		}
		jti := tok.Claims.(jwt.MapClaims)["jti"].(string)
		if seen[jti] {
			t.Fatalf("jti %s repeated", jti)
		}
		seen[jti] = true
	}
}
