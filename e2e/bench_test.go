package e2e

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/app"
	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/oauth"
)

// BenchmarkCachedToken measures Manager.Token on a warm cache (memory,
// backed by the encrypted SQLite store) against the reference of one
// client-credentials round trip to the emulator over loopback HTTPS,
// measured in the same run. The ratio is what the cache saves per message
// when a profile serves many mailboxes.
func BenchmarkCachedToken(b *testing.B) {
	srv, err := emulator.Start(b.Context(), emulator.Options{HTTPListen: "-"})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	client := srv.Client()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {emulator.DemoAppID},
		"client_secret": {emulator.DemoAppSecret}, "scope": {"https://outlook.office365.com/.default"}}.Encode()
	tokenURL := srv.URL() + "/" + emulator.DemoTenantID + "/oauth2/v2.0/token"
	const refN = 200
	t0 := time.Now()
	for range refN {
		resp, err := client.Post(tokenURL, "application/x-www-form-urlencoded", strings.NewReader(form))
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("reference request: %v", err)
		}
		resp.Body.Close()
	}
	ref := time.Since(t0) / refN

	st := benchStore(b)
	mgr := oauth.NewManager(st, nil)
	hc, _ := oauth.NewHTTPClient(oauth.HTTPOptions{RootCAs: srv.CertPool()})
	p := &oauth.Profile{Name: "bench", Tenant: emulator.DemoTenantID, ClientID: emulator.DemoAppID, ClientSecret: emulator.DemoAppSecret,
		Authority: srv.URL(), HTTPClient: hc, Scopes: []string{"https://outlook.office365.com/.default"}}
	if _, err := mgr.Token(b.Context(), p, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := mgr.Token(b.Context(), p, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(ref.Nanoseconds()), "ref-endpoint-ns/op")
	b.ReportMetric(float64(ref)/float64(per), "x-vs-endpoint")
}

func benchStore(b *testing.B) oauth.Store {
	dir := b.TempDir()
	key := []byte("0123456789abcdef0123456789abcdef")
	st, err := openStore(b.Context(), dir, key)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	return app.TokenStore(st)
}
