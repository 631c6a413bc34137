package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailgate/mailgate/internal/loopback"
)

// Defaults applied by Load.
const (
	DefaultStore         = "sqlite:./mailgate.db"
	DefaultListen        = "127.0.0.1:8025"
	DefaultKeyFile       = "mailgate.key"
	DefaultAuthority     = "https://login.microsoftonline.com"
	DefaultGraphEndpoint = "https://graph.microsoft.com"
	DefaultRefreshMargin = Duration(5 * time.Minute)
	// DefaultLease is agents.lease unless set.
	DefaultLease       = Duration(15 * time.Second)
	DefaultInterval    = Duration(60 * time.Second)
	MinInterval        = Duration(10 * time.Second)
	DefaultSinkTimeout = Duration(30 * time.Second)
	DefaultBatchSize   = 100
	MaxBatchSize       = 10000
	// ExpiryWarning is how long before secret_expires a warning starts.
	ExpiryWarning = 30 * 24 * time.Hour
)

func (d *decoder) defaults(c *Config) {
	if c.Store == "" {
		c.Store = DefaultStore
	}
	if p, ok := strings.CutPrefix(c.Store, "sqlite:"); ok && p != "" && p != ":memory:" && !strings.HasPrefix(p, "file:") {
		c.Store = "sqlite:" + d.abs(p)
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.KeyFile == "" {
		c.KeyFile = DefaultKeyFile
	}
	c.KeyFile = d.abs(c.KeyFile)
	if c.Console.MaildirRoot == "" {
		c.Console.MaildirRoot = d.dir
	}
	c.Console.MaildirRoot = filepath.Clean(d.abs(c.Console.MaildirRoot))
	c.TLSCert = d.abs(c.TLSCert)
	c.TLSKey = d.abs(c.TLSKey)

	d.profileDefaults(c)
	for i := range c.Mailboxes {
		m := &c.Mailboxes[i]
		path := d.item("mailboxes", i)
		if m.Protocol != "graph" {
			if m.Security == "" {
				m.Security = "tls"
			}
			if m.SASL == "" {
				m.SASL = "xoauth2"
			}
			if m.Port == 0 && !d.has(path+".port") {
				m.Port = defaultMailboxPort(m.Protocol, m.Security)
			}
		}
		if m.Folder == "" {
			m.Folder = "INBOX"
			if m.Protocol == "graph" {
				m.Folder = "inbox"
			}
		}
		if m.Protocol == "graph" && m.Endpoint == "" {
			m.Endpoint = DefaultGraphEndpoint
		}
		if m.Mode == "" {
			m.Mode = "poll"
		}
		if !d.has(path + ".interval") {
			m.Interval = DefaultInterval
		}
		if m.After == "" {
			m.After = "seen"
		}
		if !d.has(path + ".enabled") {
			m.Enabled = true
		}
		if !d.has(path + ".batch_size") {
			m.BatchSize = DefaultBatchSize
		}
		m.TLSCA = d.abs(m.TLSCA)
	}
	for i := range c.Sinks {
		s := &c.Sinks[i]
		path := d.item("sinks", i)
		if s.Type == "maildir" {
			s.Path = d.abs(s.Path)
		}
		if (s.Type == "webhook" || s.Type == "command") && !d.has(path+".timeout") {
			s.Timeout = DefaultSinkTimeout
		}
	}
	for i := range c.Senders {
		s := &c.Senders[i]
		path := d.item("senders", i)
		if s.Protocol != "graph" {
			if s.Security == "" {
				s.Security = "starttls"
			}
			if s.SASL == "" {
				s.SASL = "xoauth2"
			}
			if s.Port == 0 && !d.has(path+".port") {
				s.Port = defaultSenderPort(s.Security)
			}
		} else {
			if s.Endpoint == "" {
				s.Endpoint = DefaultGraphEndpoint
			}
			if !d.has(path + ".save_to_sent_items") {
				s.SaveToSentItems = true
			}
		}
		if !d.has(path + ".rate") {
			s.Rate = defaultSenderRate(s)
		}
		if s.MaxConnections == 0 {
			s.MaxConnections = 1
		}
		if !d.has(path + ".max_recipients_per_day") {
			s.MaxRecipientsPerDay = defaultSenderRecipients(s)
		}
		s.TLSCA = d.abs(s.TLSCA)
	}
	d.listenerDefaults(c)
}

// listenerDefaults fills the proxy listeners' defaults.
func (d *decoder) listenerDefaults(c *Config) {
	for i := range c.Listeners {
		l := &c.Listeners[i]
		path := d.item("listeners", i)
		if l.Security == "" {
			l.Security = "none"
		}
		u := &l.Upstream
		if u.Security == "" {
			u.Security = "tls"
			if l.Protocol == "smtp" {
				u.Security = "starttls"
			}
		}
		if u.SASL == "" {
			u.SASL = "xoauth2"
		}
		if u.Port == 0 && !d.has(path+".upstream.port") {
			if l.Protocol == "smtp" {
				u.Port = defaultSenderPort(u.Security)
			} else {
				u.Port = defaultMailboxPort(l.Protocol, u.Security)
			}
		}
		l.TLSCert, l.TLSKey, u.TLSCA = d.abs(l.TLSCert), d.abs(l.TLSKey), d.abs(u.TLSCA)
	}
}

// Microsoft's published per-mailbox limits (learn.microsoft.com, "Exchange
// Online limits" and "Microsoft Graph throttling limits"): 30 messages a
// minute through SMTP AUTH submission, 10,000 Graph requests in 10 minutes.
const (
	ExchangeOnlineSMTPRate = 30
	GraphSendRate          = 1000
)

// defaultSenderRate is the pace Microsoft allows a sender's host; 0 (no
// pacing) for other servers.
func defaultSenderRate(s *Sender) int {
	switch {
	case s.Protocol == "graph" && strings.EqualFold(strings.TrimSuffix(s.Endpoint, "/"), DefaultGraphEndpoint):
		return GraphSendRate
	case s.Protocol != "graph":
		return DefaultSMTPRate(s.Host)
	}
	return 0
}

// DefaultSMTPRate is the pace Microsoft allows a mailbox's SMTP AUTH
// submissions at host (Exchange Online's smtp.office365.com); 0 (no
// pacing) for other servers. A sender's rate and a proxy account's
// submissions default to it.
func DefaultSMTPRate(host string) int {
	if strings.EqualFold(host, "smtp.office365.com") {
		return ExchangeOnlineSMTPRate
	}
	return 0
}

// ExchangeOnlineRecipientsPerDay is Exchange Online's recipient rate limit
// per mailbox (learn.microsoft.com, "Exchange Online limits").
const ExchangeOnlineRecipientsPerDay = 10000

// defaultSenderRecipients is the daily recipient budget of an Exchange
// Online mailbox (SMTP AUTH or Graph alike); 0 (no limit) elsewhere.
func defaultSenderRecipients(s *Sender) int {
	if defaultSenderRate(s) != 0 {
		return ExchangeOnlineRecipientsPerDay
	}
	return 0
}

// profileDefaults fills the defaults of every profile.
func (d *decoder) profileDefaults(c *Config) {
	for i := range c.Profiles {
		p := &c.Profiles[i]
		path := d.item("profiles", i)
		if p.Provider == "microsoft" {
			if p.Authority == "" {
				p.Authority = DefaultAuthority
			}
			if p.EndpointVersion == "" {
				p.EndpointVersion = "v2"
			}
		}
		if p.AuthStyle == "" {
			p.AuthStyle = "params"
		}
		if !d.has(path + ".refresh_margin") {
			p.RefreshMargin = DefaultRefreshMargin
		}
		if p.ClientCertificate != nil {
			cc := p.ClientCertificate
			if cc.Alg == "" {
				cc.Alg = "PS256"
			}
			cc.Cert = d.abs(cc.Cert)
			cc.Key = d.abs(cc.Key)
		}
		p.TLSCA = d.abs(p.TLSCA)
	}
}

func defaultMailboxPort(protocol, security string) int {
	switch {
	case protocol == "imap" && security == "tls":
		return 993
	case protocol == "imap":
		return 143
	case protocol == "pop3" && security == "tls":
		return 995
	case protocol == "pop3":
		return 110
	}
	return 0
}

func defaultSenderPort(security string) int {
	switch security {
	case "tls":
		return 465
	case "none":
		return 25
	}
	return 587
}

// item returns the key path of item i of a list ("profiles[contoso]").
func (d *decoder) item(list string, i int) string {
	if ps := d.items[list]; i < len(ps) {
		return ps[i]
	}
	return fmt.Sprintf("%s[%d]", list, i)
}

// at records a problem about the key path.
func (d *decoder) at(path, format string, args ...any) {
	d.addf(path, d.line(path), format, args...)
}

func (d *decoder) warnAt(path, format string, args ...any) {
	d.warnf(path, d.line(path), format, args...)
}

func (d *decoder) required(path, value string) bool {
	if value == "" {
		d.at(path, "required")
		return false
	}
	return true
}

func (d *decoder) enum(path, value string, allowed []string) bool {
	if value == "" || slices.Contains(allowed, value) {
		return true
	}
	msg := fmt.Sprintf("%q is not one of %s", value, strings.Join(allowed, ", "))
	if s := suggest(value, allowed); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	d.at(path, "%s", msg)
	return false
}

// IsLoopback reports whether host (a name or an address, without port) is
// this machine: the name localhost, 127.0.0.0/8 or ::1 (loopback.Host;
// other names, *.localhost included, are resolved through DNS).
func IsLoopback(host string) bool {
	return loopback.Host(host)
}

// checkURL checks an absolute http(s) URL; plain http is accepted only to a
// loopback host when httpsOnly is set.
func (d *decoder) checkURL(path, raw string, httpsOnly bool) (*url.URL, bool) {
	if raw == "" {
		return nil, false
	}
	// the value is shown as DisplayURL shows it: problems reach the console
	// and its API (a record's reason for failing)
	u, err := url.Parse(raw)
	if err != nil {
		d.at(path, "not a URL (like https://host/path)")
		return nil, false
	}
	if !u.IsAbs() || u.Host == "" {
		d.at(path, "%q is not an absolute URL (like https://host/path)", DisplayURL(raw))
		return nil, false
	}
	switch u.Scheme {
	case "https":
	case "http":
		if httpsOnly && !IsLoopback(u.Hostname()) {
			d.at(path, "plain http is allowed only to a loopback host; use https")
			return u, false
		}
	default:
		d.at(path, "scheme %q is not http or https", u.Scheme)
		return nil, false
	}
	return u, true
}

func (d *decoder) checkFile(path, file string) {
	if file == "" {
		return
	}
	if _, err := statFile(file); err != nil {
		d.at(path, "cannot read %s: %v", file, unwrapPathError(err))
	}
}

func (d *decoder) checkNames(list string, names []string) {
	seen := map[string]int{}
	for i, n := range names {
		path := d.item(list, i)
		if n == "" {
			d.at(path+".name", "required")
			continue
		}
		if !validName(n) {
			d.at(path+".name", "%q: names may use only letters, digits, '.', '_' and '-' (at most 64)", n)
		}
		if j, dup := seen[n]; dup {
			d.at(path+".name", "duplicate name %q (first at line %d)", n, d.line(d.item(list, j)))
			continue
		}
		seen[n] = i
	}
}

func (d *decoder) validate(c *Config) {
	d.validateTop(c)
	profiles := map[string]bool{}
	var names []string
	for _, p := range c.Profiles {
		names = append(names, p.Name)
		profiles[p.Name] = true
	}
	d.checkNames("profiles", names)
	for i := range c.Profiles {
		d.validateProfile(&c.Profiles[i], d.item("profiles", i))
	}

	sinks := map[string]bool{}
	names = nil
	for _, s := range c.Sinks {
		names = append(names, s.Name)
		sinks[s.Name] = true
	}
	d.checkNames("sinks", names)
	for i := range c.Sinks {
		d.validateSink(&c.Sinks[i], d.item("sinks", i))
	}

	names = nil
	for _, m := range c.Mailboxes {
		names = append(names, m.Name)
	}
	d.checkNames("mailboxes", names)
	for i := range c.Mailboxes {
		d.validateMailbox(&c.Mailboxes[i], d.item("mailboxes", i), profiles, sinks)
	}

	names = nil
	for _, s := range c.Senders {
		names = append(names, s.Name)
	}
	d.checkNames("senders", names)
	for i := range c.Senders {
		d.validateSender(&c.Senders[i], d.item("senders", i), profiles)
	}

	d.validateProxy(c, profiles)

	// `mailgate test NAME` and `doctor NAME` look a name up among profiles,
	// mailboxes and senders: warn when one is ambiguous.
	owner := map[string]string{}
	for _, p := range c.Profiles {
		owner[p.Name] = "profile"
	}
	for i, m := range c.Mailboxes {
		if o, ok := owner[m.Name]; ok && m.Name != "" && o != "mailbox" {
			d.warnAt(d.item("mailboxes", i)+".name", "%q also names a %s; mailgate test/doctor %s will pick the profile", m.Name, o, m.Name)
		} else if m.Name != "" {
			owner[m.Name] = "mailbox"
		}
	}
	for i, s := range c.Senders {
		if o, ok := owner[s.Name]; ok && s.Name != "" && o != "sender" {
			d.warnAt(d.item("senders", i)+".name", "%q also names a %s; mailgate test/doctor %s will pick the %s", s.Name, o, s.Name, o)
		}
	}
}

func (d *decoder) validateTop(c *Config) {
	if c.Agents.LoginRate < 0 {
		d.at("agents.login_rate", "must be 0 (the default) or more logins per second")
	}
	if c.Agents.Concurrency < 0 {
		d.at("agents.concurrency", "must be 0 (the default) or more mailboxes")
	}
	if c.Agents.Lease == 0 {
		c.Agents.Lease = DefaultLease
	} else if c.Agents.Lease.D() < 3*time.Second {
		d.at("agents.lease", "must be at least 3s (the default is 15s)")
	}
	switch {
	case strings.HasPrefix(c.Store, "sqlite:"):
		if c.Store == "sqlite:" {
			d.at("store", "sqlite: needs a file name (sqlite:./mailgate.db)")
		}
	case strings.HasPrefix(c.Store, "postgres://"), strings.HasPrefix(c.Store, "postgresql://"):
		if u, err := url.Parse(c.Store); err != nil || u.Host == "" {
			d.at("store", "not a valid PostgreSQL URL (postgres://user@host:5432/db)")
		}
	default:
		d.at("store", "must start with sqlite: or postgres://")
	}
	if host, port, err := net.SplitHostPort(c.Listen); err != nil {
		d.at("listen", "%q is not host:port (like 127.0.0.1:8025)", c.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		d.at("listen", "port %q is not a number from 0 to 65535", port)
	} else if !IsLoopback(host) && c.TLSCert == "" {
		// an empty host, 0.0.0.0 and [::] bind every interface
		d.warnAt("listen", "the console is served over plain HTTP on a non-loopback address; set tls_cert and tls_key")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		if c.TLSCert == "" {
			d.at("tls_key", "tls_key needs tls_cert")
		} else {
			d.at("tls_cert", "tls_cert needs tls_key")
		}
	}
	for _, f := range TopFields() { // log.level, log.format
		if v, ok := f.Value(c); ok && f.Enum != nil {
			d.enum(f.Key, v.(string), f.Enum)
		}
	}
	d.checkFile("tls_cert", c.TLSCert)
	d.checkFile("tls_key", c.TLSKey)
}

func (d *decoder) validateProfile(p *Profile, path string) {
	d.checkFields("profiles", path, p)
	switch p.Provider {
	case "microsoft":
		if p.Tenant == "" && p.TokenURL == "" {
			d.at(path+".tenant", "required for provider microsoft (or give token_url)")
		}
	case "generic":
		if p.TokenURL == "" {
			d.at(path+".token_url", "required for provider generic")
		}
		if p.Grant == "authorization_code" && p.AuthorizeURL == "" {
			d.at(path+".authorize_url", "required for provider generic with grant authorization_code")
		}
		if p.Grant == "device_code" && p.DeviceURL == "" {
			d.at(path+".device_url", "required for provider generic with grant device_code")
		}
	}
	if !p.ClientSecret.IsZero() && p.ClientCertificate != nil {
		d.at(path+".client_certificate", "client_secret and client_certificate are both set; keep one")
	}
	if p.Grant != "service_account" {
		d.required(path+".client_id", p.ClientID)
	}
	switch p.Grant {
	case "service_account":
		if p.ServiceAccountKey.IsZero() {
			d.at(path+".service_account_key", "required for grant service_account (file:PATH of the service account's JSON key)")
		}
		if p.Provider == "microsoft" {
			d.at(path+".grant", "service_account is a Google grant; Microsoft's app-only access is client_credentials")
		}
	case "client_credentials":
		if p.ClientSecret.IsZero() && p.ClientCertificate == nil {
			d.at(path+".client_secret", "grant client_credentials needs client_secret or client_certificate")
		}
	case "password":
		d.required(path+".username", p.Username)
		if p.Password.IsZero() {
			d.at(path+".password", "required for grant password")
		}
	}
	if cc := p.ClientCertificate; cc != nil {
		// required and alg: checkFields
		d.checkFile(path+".client_certificate.cert", cc.Cert)
		d.checkFile(path+".client_certificate.key", cc.Key)
	}
	d.checkURL(path+".authority", p.Authority, true)
	d.checkURL(path+".token_url", p.TokenURL, true)
	d.checkURL(path+".authorize_url", p.AuthorizeURL, true)
	d.checkURL(path+".device_url", p.DeviceURL, true)
	d.checkURL(path+".redirect_uri", p.RedirectURI, true)
	d.checkURL(path+".http_proxy", p.HTTPProxy, false)
	d.checkFile(path+".tls_ca", p.TLSCA)
	for i, s := range p.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			d.at(fmt.Sprintf("%s.scopes[%d]", path, i), "a scope is one word without spaces (give several as list items)")
		} else if p.Provider == "google" && strings.Contains(s, ",") {
			d.at(fmt.Sprintf("%s.scopes[%d]", path, i), "Google refuses scopes joined with commas (invalid_scope): give each as its own list item")
		}
	}
	if !p.SecretExpires.IsZero() {
		left := p.SecretExpires.Sub(d.now)
		switch {
		case left < 0:
			d.warnAt(path+".secret_expires", "the credential expired on %s; create a new one and update the config", p.SecretExpires)
		case left < ExpiryWarning:
			d.warnAt(path+".secret_expires", "the credential expires on %s (in %d days)", p.SecretExpires, int(left.Hours()/24)+1)
		}
	}
}

func (d *decoder) validateMailbox(m *Mailbox, path string, profiles, sinks map[string]bool) {
	if !d.checkFields("mailboxes", path, m, "protocol") {
		return
	}
	if m.Profile != "" && !profiles[m.Profile] {
		d.at(path+".profile", "no profile named %q", m.Profile)
	}
	if m.Sink != "" && !sinks[m.Sink] {
		d.at(path+".sink", "no sink named %q", m.Sink)
	}
	switch m.Protocol {
	case "graph":
		d.checkURL(path+".endpoint", m.Endpoint, true)
		if m.Mode == "idle" {
			d.at(path+".mode", "idle is for imap only; graph mailboxes poll")
		}
	case "imap", "pop3":
		d.checkServer(path, m.Host, m.Port, m.Security)
		d.checkFile(path+".tls_ca", m.TLSCA)
		if m.Protocol == "pop3" {
			if m.Mode == "idle" {
				d.at(path+".mode", "idle is for imap only")
			}
			if !strings.EqualFold(m.Folder, "INBOX") {
				d.at(path+".folder", "POP3 has only INBOX")
			}
		}
	}
	if m.Interval < MinInterval {
		d.at(path+".interval", "%s is below the minimum of %s", m.Interval, MinInterval)
	}
	switch {
	case m.After == "seen", m.After == "delete", m.After == "keep":
	case strings.HasPrefix(m.After, "move:"):
		if strings.TrimSpace(strings.TrimPrefix(m.After, "move:")) == "" {
			d.at(path+".after", "move: needs a folder (move:Processed)")
		} else if m.Protocol == "pop3" {
			d.at(path+".after", "POP3 has no folders to move to; use seen, delete or keep")
		}
	default:
		msg := fmt.Sprintf("%q is not one of seen, delete, keep, move:FOLDER", m.After)
		if s := suggest(m.After, []string{"seen", "delete", "keep"}); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		d.at(path+".after", "%s", msg)
	}
	if m.BatchSize < 1 || m.BatchSize > MaxBatchSize {
		d.at(path+".batch_size", "must be from 1 to %d", MaxBatchSize)
	}
}

// checkServer checks host, port and security of a mail server (security's
// allowed values: checkFields).
func (d *decoder) checkServer(path, host string, port int, security string) {
	if d.required(path+".host", host) {
		if strings.ContainsAny(host, "/: ") && net.ParseIP(strings.Trim(host, "[]")) == nil {
			d.at(path+".host", "%q is not a host name (give the port in port, no URL)", host)
		}
	}
	if port < 1 || port > 65535 {
		d.at(path+".port", "must be from 1 to 65535")
	}
	if security == "none" && host != "" && !IsLoopback(host) {
		d.at(path+".security", "none sends the token in clear text; allowed only to a loopback host (localhost, 127.0.0.0/8, ::1; not other names, which DNS resolves), use tls or starttls")
	}
}

func (d *decoder) validateSink(s *Sink, path string) {
	if !d.checkFields("sinks", path, s, "type") {
		return
	}
	// keys of other types: checkFields
	switch s.Type {
	case "maildir":
		d.required(path+".path", s.Path)
	case "webhook":
		if d.required(path+".url", s.URL) {
			if u, ok := d.checkURL(path+".url", s.URL, false); ok && u.Scheme == "http" && !IsLoopback(u.Hostname()) {
				d.warnAt(path+".url", "messages go to %s unencrypted; prefer https", u.Host)
			}
		}
		for k := range s.Headers {
			if k == "" || strings.ContainsAny(k, " :\t\r\n") {
				d.at(path+".headers."+k, "not a valid HTTP header name")
			}
		}
	case "command":
		if len(s.Command) == 0 || s.Command[0] == "" {
			d.at(path+".command", "required: the program and its arguments as a list, like [/usr/bin/procmail]")
		} else if !filepath.IsAbs(s.Command[0]) && strings.Contains(s.Command[0], "/") {
			d.warnAt(path+".command", "%q is relative to mailgate's working directory, not the config file", s.Command[0])
		}
	}
	if (s.Type == "webhook" || s.Type == "command") && s.Timeout <= 0 {
		d.at(path+".timeout", "must be more than 0s")
	}
}

func (d *decoder) validateSender(s *Sender, path string, profiles map[string]bool) {
	if !d.checkFields("senders", path, s, "protocol") {
		return
	}
	if s.Profile != "" && !profiles[s.Profile] {
		d.at(path+".profile", "no profile named %q", s.Profile)
	}
	switch s.Protocol {
	case "graph":
		d.checkURL(path+".endpoint", s.Endpoint, true)
	case "smtp":
		d.checkServer(path, s.Host, s.Port, s.Security)
		d.checkFile(path+".tls_ca", s.TLSCA)
	}
	if s.Rate < 0 {
		d.at(path+".rate", "must be 0 (no pacing) or more messages per minute")
	}
	if s.MaxConnections < 0 || s.MaxConnections > 100 {
		d.at(path+".max_connections", "must be between 1 and 100")
	}
	if s.MaxRecipientsPerDay < 0 {
		d.at(path+".max_recipients_per_day", "must be 0 (no limit) or more recipients")
	}
	d.checkAllowedFrom(path, s.AllowedFrom)
}

// checkAllowedFrom checks a list of addresses and @domains.
func (d *decoder) checkAllowedFrom(path string, list []string) {
	for i, a := range list {
		p := fmt.Sprintf("%s.allowed_from[%d]", path, i)
		if dom, ok := strings.CutPrefix(a, "@"); ok {
			if dom == "" || strings.ContainsAny(dom, "@ <>,;") || !strings.Contains(dom, ".") && !IsLoopback(dom) {
				d.at(p, "%q is not a domain (write @example.com)", a)
			}
			continue
		}
		addr, err := mail.ParseAddress(a)
		if err != nil || addr.Address != a {
			d.at(p, "%q is not a bare email address (like noreply@example.com, or @example.com for a domain)", a)
		}
	}
}

// validateProxy checks the legacy-client proxy's listeners and accounts.
func (d *decoder) validateProxy(c *Config, profiles map[string]bool) {
	var names []string
	listeners := map[string]bool{}
	addrs := map[string]string{}
	for _, l := range c.Listeners {
		names = append(names, l.Name)
		listeners[l.Name] = true
	}
	d.checkNames("listeners", names)
	for i := range c.Listeners {
		l, path := &c.Listeners[i], d.item("listeners", i)
		if !d.checkFields("listeners", path, l, "protocol") {
			continue
		}
		d.validateListener(l, path)
		if prev, dup := addrs[l.Listen]; dup && l.Listen != "" && !strings.HasSuffix(l.Listen, ":0") {
			d.at(path+".listen", "%s is also listeners[%s]'s address", l.Listen, prev)
		}
		addrs[l.Listen] = l.Name
	}
	seen := map[string]int{}
	for i := range c.Accounts {
		a := &c.Accounts[i]
		path := d.item("accounts", i)
		if j, dup := seen[a.Username]; dup && a.Username != "" {
			d.at(path+".username", "duplicate username %q (first at accounts[%d])", a.Username, j)
		}
		seen[a.Username] = i
		d.checkFields("accounts", path, a)
		if a.Profile != "" && !profiles[a.Profile] {
			d.at(path+".profile", "no profile named %q", a.Profile)
		}
		if len(a.Password.Reveal()) > 72 {
			d.at(path+".password", "a local password is at most 72 bytes (bcrypt)")
		}
		for j, l := range a.Listeners {
			if !listeners[l] {
				d.at(fmt.Sprintf("%s.listeners[%d]", path, j), "no listener named %q", l)
			}
		}
		d.checkAllowedFrom(path, a.AllowedFrom)
		if a.Rate < 0 {
			d.at(path+".rate", "must be 0 or more (messages a minute)")
		}
	}
}

func (d *decoder) validateListener(l *Listener, path string) {
	host, port, err := net.SplitHostPort(l.Listen)
	switch {
	case l.Listen == "":
	case err != nil:
		d.at(path+".listen", "%q is not host:port (like 127.0.0.1:1143)", l.Listen)
	case !validPort(port):
		d.at(path+".listen", "port %q is not a number from 0 to 65535", port)
	case l.Security == "none" && !IsLoopback(host):
		// an empty host, 0.0.0.0 and [::] bind every interface
		d.at(path+".security", "none takes passwords in clear text; allowed only on a loopback listen address (127.0.0.1:PORT, [::1]:PORT), use starttls or tls with tls_cert and tls_key")
	}
	if l.Security == "starttls" || l.Security == "tls" {
		if l.TLSCert == "" {
			d.at(path+".tls_cert", "required for security %s", l.Security)
		}
		if l.TLSKey == "" {
			d.at(path+".tls_key", "required for security %s", l.Security)
		}
	}
	d.checkFile(path+".tls_cert", l.TLSCert)
	d.checkFile(path+".tls_key", l.TLSKey)
	if l.Upstream.Host != "" {
		d.checkServer(path+".upstream", l.Upstream.Host, l.Upstream.Port, l.Upstream.Security)
	}
	d.checkFile(path+".upstream.tls_ca", l.Upstream.TLSCA)
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 0 && n <= 65535
}
