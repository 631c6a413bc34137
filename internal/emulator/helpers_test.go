package emulator

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// start runs an emulator for one test.
func start(t *testing.T) *Server {
	t.Helper()
	srv, err := Start(t.Context(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func tokenURL(srv *Server, v1 bool) string {
	if v1 {
		return srv.URL() + "/" + DemoTenantID + "/oauth2/token"
	}
	return srv.URL() + "/" + DemoTenantID + "/oauth2/v2.0/token"
}

type answer struct {
	status int
	header http.Header
	raw    string
	json   map[string]any
}

func (a answer) str(k string) string { s, _ := a.json[k].(string); return s }

// code returns error_codes[0].
func (a answer) code() int {
	codes, _ := a.json["error_codes"].([]any)
	if len(codes) == 0 {
		return 0
	}
	f, _ := codes[0].(float64)
	return int(f)
}

func post(t *testing.T, srv *Server, u string, form url.Values, edit ...func(*http.Request)) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, e := range edit {
		e(req)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &a.json)
	return a
}

// ccForm is a client-credentials request with the demo secret.
func ccForm(scope string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {DemoAppID},
		"client_secret": {DemoAppSecret}, "scope": {scope}}
}

// demoKey loads the demo app's certificate and key from the emulator dir.
func demoKey(t *testing.T, srv *Server) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	cb, err := os.ReadFile(filepath.Join(srv.Dir(), "app-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	kb, err := os.ReadFile(filepath.Join(srv.Dir(), "app-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(cb)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = pem.Decode(kb)
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert, k.(*rsa.PrivateKey)
}

// assertionSpec describes a client assertion to build in a test, written
// from RFC 7515/7523 and Microsoft's certificate-credentials page.
type assertionSpec struct {
	alg       string // RS256 | PS256
	thumb     string // x5t | x5t#S256
	std       bool   // standard base64 with padding for the thumbprint
	claims    map[string]any
	tamper    bool
	otherCert bool
}

func makeAssertion(t *testing.T, cert *x509.Certificate, key *rsa.PrivateKey, sp assertionSpec) string {
	t.Helper()
	enc := base64.RawURLEncoding
	if sp.std {
		enc = base64.StdEncoding
	}
	der := cert.Raw
	if sp.otherCert {
		other, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		key = other
		der = append([]byte{}, der...)
		der[len(der)-1] ^= 0xff
	}
	h := map[string]any{"alg": sp.alg, "typ": "JWT"}
	if sp.thumb == "x5t" {
		s := sha1.Sum(der)
		h["x5t"] = enc.EncodeToString(s[:])
	} else {
		s := sha256.Sum256(der)
		h["x5t#S256"] = enc.EncodeToString(s[:])
	}
	hb, _ := json.Marshal(h)
	cb, _ := json.Marshal(sp.claims)
	signing := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	sum := sha256.Sum256([]byte(signing))
	var sig []byte
	var err error
	if sp.alg == "PS256" {
		sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	} else {
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	if sp.tamper {
		sig[0] ^= 1
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func assertionClaims(aud string, now time.Time) map[string]any {
	return map[string]any{"aud": aud, "iss": DemoAppID, "sub": DemoAppID, "jti": newGUID(),
		"nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
}

// checkAADShape asserts Microsoft's error JSON shape for code.
func checkAADShape(t *testing.T, a answer, status int, errCode string, aadsts int) {
	t.Helper()
	if a.status != status || a.str("error") != errCode || a.code() != aadsts {
		t.Fatalf("got %d %s AADSTS%d, want %d %s AADSTS%d\n%s", a.status, a.str("error"), a.code(), status, errCode, aadsts, a.raw)
	}
	d := a.str("error_description")
	if !strings.HasPrefix(d, "AADSTS"+itoa(aadsts)+": ") {
		t.Errorf("description does not start with the code: %q", d)
	}
	for _, part := range []string{"\r\nTrace ID: " + a.str("trace_id"), "\r\nCorrelation ID: " + a.str("correlation_id"), "\r\nTimestamp: " + a.str("timestamp")} {
		if !strings.Contains(d, part) {
			t.Errorf("description lacks %q: %q", part, d)
		}
	}
	if _, err := time.Parse("2006-01-02 15:04:05Z", a.str("timestamp")); err != nil {
		t.Errorf("timestamp %q: %v", a.str("timestamp"), err)
	}
	if a.str("error_uri") != "https://login.microsoftonline.com/error?code="+itoa(aadsts) {
		t.Errorf("error_uri = %q", a.str("error_uri"))
	}
}

// noRedirect is a client that shows redirects instead of following them.
func noRedirect(srv *Server) *http.Client {
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}
