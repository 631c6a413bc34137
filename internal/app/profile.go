package app

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/oauth"
)

// KeyError is a problem of one configuration key found while building the
// parts (a certificate file that is not PEM, a tls_ca that does not
// read), reported like a config check problem (exit 2, 422 in the API).
type KeyError struct {
	Key string // e.g. profiles[main].client_certificate.key
	Err error
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *KeyError) Unwrap() error { return e.Err }

// Profile turns a config profile into what the token engine needs:
// certificate files loaded, the HTTP client built with the profile's proxy
// and extra CA (else the standard proxy environment variables).
func Profile(cp *config.Profile, index int) (*oauth.Profile, error) {
	key := fmt.Sprintf("profiles[%s]", cp.Name)
	if cp.Name == "" {
		key = fmt.Sprintf("profiles[%d]", index)
	}
	p := &oauth.Profile{
		Name:            cp.Name,
		Provider:        oauth.Provider(cp.Provider),
		Grant:           oauth.Grant(cp.Grant),
		Tenant:          cp.Tenant,
		ClientID:        cp.ClientID,
		ClientSecret:    cp.ClientSecret.Reveal(),
		Scopes:          cp.Scopes,
		Authority:       cp.Authority,
		EndpointVersion: cp.EndpointVersion,
		TokenURL:        cp.TokenURL,
		AuthorizeURL:    cp.AuthorizeURL,
		DeviceAuthURL:   cp.DeviceURL,
		RedirectURI:     cp.RedirectURI,
		Username:        cp.Username,
		Password:        cp.Password.Reveal(),
		AuthStyle:       oauth.AuthStyle(cp.AuthStyle),
		RefreshMargin:   cp.RefreshMargin.D(),
		Subject:         cp.Subject,
	}
	if !cp.ServiceAccountKey.IsZero() {
		k, err := oauth.ParseServiceAccountKey([]byte(cp.ServiceAccountKey.Reveal()))
		if err != nil {
			return nil, &KeyError{key + ".service_account_key", err}
		}
		p.ServiceAccount = k
		if p.ClientID == "" {
			p.ClientID = k.ClientID
		}
	}
	if cc := cp.ClientCertificate; cc != nil {
		certPEM, err := os.ReadFile(cc.Cert)
		if err != nil {
			return nil, &KeyError{key + ".client_certificate.cert", err}
		}
		keyPEM, err := os.ReadFile(cc.Key)
		if err != nil {
			return nil, &KeyError{key + ".client_certificate.key", err}
		}
		if !pemBlock(certPEM, "CERTIFICATE") {
			return nil, &KeyError{key + ".client_certificate.cert", fmt.Errorf("%s is not a PEM certificate", cc.Cert)}
		}
		if !pemBlock(keyPEM, "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY") {
			return nil, &KeyError{key + ".client_certificate.key", fmt.Errorf("%s is not a PEM private key", cc.Key)}
		}
		c, err := oauth.LoadClientCertificate(certPEM, keyPEM, cc.Alg)
		if err != nil {
			return nil, &KeyError{key + ".client_certificate", err}
		}
		p.Certificate = c
	}
	client, err := oauth.NewHTTPClient(oauth.HTTPOptions{Proxy: cp.HTTPProxy, CAFile: cp.TLSCA})
	if err != nil {
		k := key + ".http_proxy"
		if errors.As(err, new(*oauth.CAFileError)) {
			k = key + ".tls_ca"
		}
		return nil, &KeyError{k, err}
	}
	p.HTTPClient = client
	return p, nil
}

// ProfileWarnings are what an administrator should know before using a
// profile: what the token engine warns about (p.Warnings: the deprecated
// password grant, a client-credentials scope without /.default, the
// certificate's expiry; config check prints the same), and a client secret
// about to lapse.
func ProfileWarnings(cp *config.Profile, p *oauth.Profile, now time.Time) []string {
	var out []string
	for _, w := range p.Warnings() {
		out = append(out, fmt.Sprintf("profile %s: %s", cp.Name, w))
	}
	if !cp.SecretExpires.IsZero() {
		y, m, d := now.Date()
		today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		days := int(cp.SecretExpires.Sub(today).Hours() / 24)
		fix := "create a new one in Entra admin center › App registrations › " + cp.ClientID + " › Certificates & secrets, then update client_secret and secret_expires"
		switch {
		case days < 0:
			out = append(out, fmt.Sprintf("the client secret of profile %s expired on %s: %s", cp.Name, cp.SecretExpires, fix))
		case days <= 30:
			out = append(out, fmt.Sprintf("the client secret of profile %s expires on %s (in %d days): %s", cp.Name, cp.SecretExpires, days, fix))
		}
	}
	return out
}

// IsKeyError reports a problem of the configuration (exit 2) rather than of
// the world (exit 1).
func IsKeyError(err error) bool {
	var pe *KeyError
	return errors.As(err, &pe)
}

// ProfileNamed finds the configured profile name and builds its oauth
// profile (Profile), for the commands that need one profile and not the
// rest of the configuration. A name that is not configured is an error
// listing the known ones; a profile that does not build is a *KeyError.
func ProfileNamed(cfg *config.Config, name string) (*config.Profile, *oauth.Profile, error) {
	cp, err := findProfile(cfg, name)
	if err != nil {
		return nil, nil, err
	}
	p, err := Profile(cp, 0)
	if err != nil {
		return nil, nil, err
	}
	return cp, p, nil
}

// findProfile returns the named profile, or an error listing the known ones.
func findProfile(cfg *config.Config, name string) (*config.Profile, error) {
	if p, ok := cfg.Profile(name); ok {
		return p, nil
	}
	var names []string
	for _, p := range cfg.Profiles {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	known := "none is configured"
	if len(names) > 0 {
		known = "known: " + strings.Join(names, ", ")
	}
	return nil, fmt.Errorf("%s: no profile %q (%s)", cfg.File, name, known)
}
