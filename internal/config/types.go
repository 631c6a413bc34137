package config

// This file holds the configuration types. The doc comment on every field is
// the user documentation: Example() reads this file (embedded in the binary)
// and prints those comments above each key, so keep them in the form
// "what it is. Allowed values. Default."

// Config is the whole mailgate.yaml file.
type Config struct {
	// Store is where mailgate keeps its state: "sqlite:PATH" (a file, relative
	// to the config file's directory) or a PostgreSQL URL
	// "postgres://user@host:5432/db" for several instances sharing one store.
	// Default: sqlite:./mailgate.db
	Store string `yaml:"store"`
	// Listen is the address of the web console, the REST API under /api/v1,
	// /metrics and /healthz, as host:port. Default: 127.0.0.1:8025
	Listen string `yaml:"listen"`
	// KeyFile is the file holding the store's encryption key (AES-256), created
	// on first use; relative to the config file's directory. When the
	// environment variable MAILGATE_KEY is set it holds the key itself and
	// this file is not read. Default: mailgate.key beside the config file.
	KeyFile string `yaml:"key_file"`
	// TLSCert is a PEM certificate (chain) for serving the console over HTTPS;
	// set it together with tls_key. Default: none (plain HTTP, keep listen on
	// loopback then).
	TLSCert string `yaml:"tls_cert" example:"console.crt"`
	// TLSKey is the PEM private key for tls_cert. Default: none.
	TLSKey string `yaml:"tls_key" example:"console.key"`
	// Profiles are the OAuth 2.0 identities tokens are obtained for; mailboxes
	// and senders refer to them by name.
	Profiles []Profile `yaml:"profiles"`
	// Mailboxes are the mail sources read by the agents (IMAP, POP3 or
	// Microsoft Graph); each delivers into a sink.
	Mailboxes []Mailbox `yaml:"mailboxes"`
	// Sinks are where messages read from mailboxes go.
	Sinks []Sink `yaml:"sinks"`
	// Senders are the ways out for `mailgate send` and the outbox (SMTP
	// submission or Microsoft Graph sendMail).
	Senders []Sender `yaml:"senders"`
	// Console limits what administrators may create in the web console and
	// through /api/v1 (records kept in the store; the file's own records are
	// not limited). A console administrator, and an API token, can do
	// whatever this allows: a command sink runs any program as mailgate's
	// user. Default: no command sinks, maildir sinks only under the config
	// file's directory.
	Console Console `yaml:"console" example:"{allow_command_sinks: false, maildir_root: /var/lib/mailgate/mail}"`
	// Log is how mailgate logs on stderr: level (debug, info, warn or error)
	// and format (text or json). The command line's -v, --log-level and
	// --log-format override it. Default: {level: info, format: text} for
	// serve; other commands log errors only unless asked.
	Log Log `yaml:"log" example:"{level: info, format: json}"`
	// Agents paces the mailbox agents of serve and run. Default: 20 logins
	// per second per host, 16 mailboxes at once in `mailgate run`, 15s
	// leases.
	Agents Agents `yaml:"agents" example:"{login_rate: 20, concurrency: 16, lease: 15s}"`
	// Listeners are the legacy-client proxy's ports: programs that only
	// know a password (fetchmail, scanners, imaplib/poplib/smtplib) log in
	// there with an account's local password, and mailgate logs in to the
	// real server with the account's token. Default: none.
	Listeners []Listener `yaml:"listeners"`
	// Accounts are who may log in to the listeners, each with a local
	// password and the profile and mailbox it stands for. Default: none.
	Accounts []Account `yaml:"accounts"`

	// File is the absolute path the configuration was loaded from ("" for
	// Parse without a file name). Not a key.
	File string `yaml:"-"`
	// Warnings are problems that do not stop mailgate, such as a client
	// secret about to expire. Not a key.
	Warnings []Problem `yaml:"-"`
	// lines maps a key path to the line of its value in File (see Line).
	lines map[string]int `yaml:"-"`
}

// Console is what the console and the API may create.
type Console struct {
	// AllowCommandSinks lets administrators create command sinks, which
	// run any program as mailgate's user. Default: false
	AllowCommandSinks bool `yaml:"allow_command_sinks"`
	// MaildirRoot is the directory under which maildir sinks made in the
	// console must lie (after resolving symbolic links); relative to the
	// config file's directory. Default: the config file's directory.
	MaildirRoot string `yaml:"maildir_root"`
}

// Log is the log key: how much mailgate logs on stderr and in what form.
type Log struct {
	// Level is the least severe level logged: debug, info, warn or error.
	// Default: info for serve, error for other commands.
	Level string `yaml:"level" enum:"debug,info,warn,error"`
	// Format is text (slog's key=value lines) or json (one JSON object per
	// line). Default: text
	Format string `yaml:"format" enum:"text,json"`
}

// Agents paces the mailbox agents.
type Agents struct {
	// LoginRate is how many connections per second serve and run open to
	// one host (bursts of as many); it never bounds how many mailboxes stay
	// connected in IDLE. Default: 20
	LoginRate int `yaml:"login_rate"`
	// Concurrency is how many mailboxes `mailgate run` reads at once.
	// Default: 16
	Concurrency int `yaml:"concurrency"`
	// Lease is how long a serve instance's hold on a mailbox lasts
	// without renewal (renewed every third of it). With several instances
	// on one PostgreSQL store, a dead instance's mailboxes are taken over
	// once its leases expire, within 1.5 times this (about 20s by
	// default); an instance that cannot renew closes its sessions a fifth
	// of it before its leases could expire. At least 3s. Default: 15s
	Lease Duration `yaml:"lease"`
}

// Profile is one OAuth 2.0 client registration and how to get tokens with it.
type Profile struct {
	// Name identifies the profile in commands (mailgate token NAME), in the
	// store and in mailbox/sender profile keys. Letters, digits, '.', '_' and
	// '-'. Required.
	Name string `yaml:"name" required:"true" label:"Name"`
	// Provider is the kind of authorization server: microsoft (Entra ID),
	// google or generic (any RFC 6749 server; needs token_url). Required.
	Provider string `yaml:"provider" destination:"true" required:"true" enum:"microsoft,google,generic" label:"Provider"`
	// Grant is how tokens are obtained: client_credentials (app-only),
	// authorization_code (a user signs in with `mailgate login`), password
	// (resource-owner password, needs username and password), device_code
	// (`mailgate login --device`), refresh_token (only a refresh token
	// already in the store) or service_account (a Google service account
	// with domain-wide delegation, acting for each mailbox's user; needs
	// service_account_key). Required.
	Grant string `yaml:"grant" required:"true" enum:"oauth.Grants" label:"Grant"`
	// Tenant is the Entra ID tenant: its GUID or a verified domain
	// (organizations or common only for delegated grants). Required for
	// microsoft unless token_url is given.
	Tenant string `yaml:"tenant" only:"provider=microsoft" label:"Tenant (directory) ID or domain"`
	// ClientID is the application (client) ID of the app registration.
	// Required, except for grant service_account (the key file's
	// client_id).
	ClientID string `yaml:"client_id" label:"Application (client) ID"`
	// ClientSecret is the client secret's value (not its ID). Use ${ENV} or
	// file:PATH rather than writing it here. Either this or
	// client_certificate for client_credentials. Default: none.
	ClientSecret Secret `yaml:"client_secret" label:"Client secret value" help:"the Value column in Certificates & secrets, not the Secret ID; left empty, the current one is kept"`
	// ClientCertificate authenticates the app with a certificate (a signed JWT
	// client assertion) instead of a client secret. Default: none.
	ClientCertificate *ClientCertificate `yaml:"client_certificate" example:"{cert: app.crt, key: app.key, alg: PS256}"`
	// ServiceAccountKey is the JSON key file of a Google service account
	// (IAM & Admin › Service accounts › Keys › Add key › JSON), for grant
	// service_account: write file:PATH (or ${ENV}) rather than the JSON
	// itself. Its token_uri is the token endpoint and its numeric client_id
	// is what the Workspace admin delegates scopes to. Default: none.
	ServiceAccountKey Secret `yaml:"service_account_key" only:"grant=service_account" label:"Service account JSON key" help:"the whole JSON key file; left empty, the current one is kept" example:"file:sa.json"`
	// Subject is the Workspace user a service_account profile acts for (the
	// assertion's sub). Default: each mailbox's or sender's username, so one
	// profile serves many mailboxes, each with a token of its own.
	Subject string `yaml:"subject" only:"grant=service_account" label:"Act as (subject; empty: each mailbox's user)" example:"someone@example.com"`
	// SecretExpires is the date (YYYY-MM-DD) the client secret or
	// certificate expires; `config check` and the console warn 30 days
	// before and after it lapses. Default: none.
	SecretExpires Date `yaml:"secret_expires" label:"Secret or certificate expires (YYYY-MM-DD)"`
	// Scopes requested when a command names none, e.g.
	// https://outlook.office365.com/.default for app-only IMAP/POP/SMTP or
	// https://graph.microsoft.com/.default for Graph. A YAML list.
	// Default: none (the command asks for the scope it needs).
	Scopes []string `yaml:"scopes" label:"Scopes (space-separated)" help:"https://outlook.office365.com/.default for IMAP/POP/SMTP, https://graph.microsoft.com/.default for Graph"`
	// Authority is the Microsoft login host: the public cloud, a national
	// cloud or the emulator. Absolute https URL (http only to loopback).
	// Token URL = authority/tenant/oauth2/v2.0/token. Default (microsoft):
	// https://login.microsoftonline.com
	Authority string `yaml:"authority" destination:"true" only:"provider=microsoft" url:"true" label:"Authority (sovereign cloud or emulator; empty for login.microsoftonline.com)"`
	// EndpointVersion selects Microsoft's v2 endpoints or the older v1
	// (/oauth2/token with a resource). v2 | v1. Default: v2
	EndpointVersion string `yaml:"endpoint_version" only:"provider=microsoft" enum:"v2,v1" label:"Microsoft endpoint version"`
	// TokenURL is the token endpoint; required for generic providers,
	// overrides the derived one otherwise. Absolute https URL (http only to
	// loopback). Default: derived from the provider.
	TokenURL string `yaml:"token_url" destination:"true" url:"true" label:"Token URL (generic provider)" example:"https://login.example.com/oauth2/token"`
	// AuthorizeURL is the authorization endpoint for authorization_code;
	// required for generic providers using that grant. Default: derived from
	// the provider.
	AuthorizeURL string `yaml:"authorize_url" url:"true" label:"Authorization URL (generic provider)" example:"https://login.example.com/oauth2/authorize"`
	// DeviceURL is the device authorization endpoint (RFC 8628) for
	// device_code; required for generic providers using that grant.
	// Default: derived from the provider.
	DeviceURL string `yaml:"device_url" destination:"true" url:"true" label:"Device authorization URL (generic provider)" example:"https://login.example.com/oauth2/devicecode"`
	// RedirectURI is the redirect URI registered for the app, used by
	// `mailgate login`, which listens on its host and port. http only to
	// loopback. Default: a loopback address on a random port.
	RedirectURI string `yaml:"redirect_uri" label:"Redirect URI (authorization code; empty: the console's /oauth/callback or a loopback listener)" example:"http://localhost:8025/oauth/callback"`
	// Username is the account for the password grant (also sent as
	// login_hint on sign-in). Default: none.
	Username string `yaml:"username" label:"User name (password grant)" example:"someone@contoso.com"`
	// Password is the account's password for the password grant. Use ${ENV}
	// or file:PATH. Default: none.
	Password Secret `yaml:"password" only:"grant=password" label:"Password (password grant)" help:"Microsoft deprecates this grant and MFA blocks it; left empty, the current one is kept" example:"${CONTOSO_PASSWORD}"`
	// HTTPProxy is the proxy for the token endpoint, an absolute http or
	// https URL such as http://proxy:3128. Default: the HTTPS_PROXY /
	// NO_PROXY environment variables.
	HTTPProxy string `yaml:"http_proxy" destination:"true" url:"true" label:"HTTP(S) proxy URL for the token endpoint" example:"http://proxy.example:3128"`
	// TLSCA is a PEM file of extra certificate authorities to trust for the
	// token endpoint (TLS-inspecting proxies, the emulator); relative to the
	// config file's directory. Default: none (system roots).
	TLSCA string `yaml:"tls_ca" destination:"true" label:"Extra CA file for the token endpoint (PEM path on the server)" example:"proxy-ca.pem"`
	// RefreshMargin is how long before expiry a cached access token is
	// replaced, as a Go duration. Default: 5m
	RefreshMargin Duration `yaml:"refresh_margin" label:"Refresh this long before expiry (e.g. 5m)"`
	// AuthStyle is how the client secret is sent to the token endpoint:
	// params (in the form body) or basic (HTTP Basic). Useful for generic
	// providers. Default: params
	AuthStyle string `yaml:"auth_style" enum:"params,basic" label:"Client secret sent as"`
	// Origin is where the record comes from: OriginFile or OriginConsole
	// (set by ParseWith, never read from YAML).
	Origin string `yaml:"-"`
}

// ClientCertificate is a certificate credential: the certificate uploaded to
// the app registration and its private key.
type ClientCertificate struct {
	// Cert is the PEM certificate file; relative to the config file's
	// directory. Required.
	Cert string `yaml:"cert" required:"true" label:"Client certificate: certificate file (PEM path on the server)" help:"instead of a client secret: the certificate uploaded to the app registration (mailgate cert new writes one)"`
	// Key is the PEM private key file (RSA); relative to the config file's
	// directory. Required.
	Key string `yaml:"key" required:"true" label:"Client certificate: private key file (PEM path on the server)"`
	// Alg is the signature algorithm of the client assertion: PS256 or RS256.
	// Default: PS256
	Alg string `yaml:"alg" enum:"PS256,RS256" label:"Client assertion algorithm"`
}

// Mailbox is a mail source read by an agent.
type Mailbox struct {
	// Name identifies the mailbox in commands (mailgate run --mailbox NAME)
	// and the console. Letters, digits, '.', '_' and '-'. Required.
	Name string `yaml:"name" required:"true" label:"Name"`
	// Protocol is how the mailbox is read: imap, pop3 or graph (Microsoft
	// Graph REST; host, port, security and sasl do not apply). Required.
	Protocol string `yaml:"protocol" required:"true" enum:"imap,pop3,graph" label:"Protocol"`
	// Host is the IMAP or POP3 server. Required for imap and pop3.
	Host string `yaml:"host" only:"protocol=imap,pop3" label:"Host (imap, pop3)"`
	// Port is the server's TCP port. Default: imap 993 with tls, 143
	// otherwise; pop3 995 with tls, 110 otherwise.
	Port int `yaml:"port" only:"protocol=imap,pop3" label:"Port (empty: the protocol's default)"`
	// Security is the transport: tls (implicit TLS), starttls or none (only
	// to a loopback host). Default: tls
	Security string `yaml:"security" only:"protocol=imap,pop3" enum:"tls,starttls,none" label:"Security"`
	// TLSCA is a PEM file of extra certificate authorities to trust for the
	// server; relative to the config file's directory. Default: none.
	TLSCA string `yaml:"tls_ca" only:"protocol=imap,pop3" label:"Extra CA file (PEM path on the server)" example:"extra-ca.pem"`
	// SASL is the authentication mechanism: xoauth2 or oauthbearer
	// (RFC 7628). Default: xoauth2
	SASL string `yaml:"sasl" only:"protocol=imap,pop3" enum:"xoauth2,oauthbearer" label:"SASL mechanism (imap, pop3)"`
	// Username is the mailbox address to open (a shared mailbox works the
	// same way). Required.
	Username string `yaml:"username" required:"true" label:"Mailbox (user or shared mailbox address)"`
	// Folder is the folder read: an IMAP mailbox name, or a special-use
	// attribute starting with a backslash (\All, \Sent…: the folder that has
	// it, as Gmail's localized names need), or for graph a well-known folder
	// name or a folder id. POP3 has only INBOX.
	// Default: INBOX (graph: inbox)
	Folder string `yaml:"folder" label:"Folder (empty: INBOX / inbox)"`
	// Profile is the name of the profile whose tokens open the mailbox.
	// Required.
	Profile string `yaml:"profile" required:"true" label:"OAuth profile"`
	// Mode is poll (check every interval) or idle (IMAP IDLE: wait for new
	// mail, imap only). Default: poll
	Mode string `yaml:"mode" enum:"poll,idle" label:"Mode" help:"idle: IMAP IDLE, new mail at once (imap only)"`
	// Interval is the time between polls (and the longest wait in idle
	// mode), as a Go duration, at least 10s. Default: 60s
	Interval Duration `yaml:"interval" label:"Poll interval (e.g. 60s; at least 10s)"`
	// After is what happens to a message once the sink has it: seen (mark it
	// read), delete (on Gmail: moved to the \Trash folder, since deleting in
	// INBOX only archives), keep (leave it; mailgate remembers what it
	// delivered) or move:FOLDER (imap and graph; FOLDER may be a special-use
	// attribute such as \Trash). Default: seen
	After string `yaml:"after" options:"seen,keep,delete,move:Processed" label:"After delivery"`
	// Sink is the name of the sink messages are delivered to. Required.
	Sink string `yaml:"sink" required:"true" label:"Sink"`
	// Endpoint is the Microsoft Graph base URL for graph mailboxes: a
	// national cloud or the emulator (http only to loopback).
	// Default: https://graph.microsoft.com
	Endpoint string `yaml:"endpoint" only:"protocol=graph" url:"true" label:"Graph endpoint (graph; empty for graph.microsoft.com)" example:"https://graph.microsoft.com"`
	// Enabled says whether `serve` and `run --once` read this mailbox; a
	// disabled one can still be named explicitly. Default: true
	Enabled bool `yaml:"enabled" label:"Enabled"`
	// BatchSize is the most messages fetched and delivered in one poll
	// (the rest wait for the next one), 1 to 10000. Default: 100
	BatchSize int `yaml:"batch_size" label:"Messages per poll at most (empty: 100)"`
	// Origin is where the record comes from: OriginFile or OriginConsole
	// (set by ParseWith, never read from YAML).
	Origin string `yaml:"-"`
}

// Sink is a destination for messages read from mailboxes.
type Sink struct {
	// Name identifies the sink in mailbox sink keys. Letters, digits, '.',
	// '_' and '-'. Required.
	Name string `yaml:"name" required:"true" label:"Name"`
	// Type is maildir (a Maildir directory: tmp/ then new/, bytes
	// unchanged), webhook (HTTP POST signed with HMAC-SHA256, retried),
	// command (the message on a program's stdin; exit 0 = accepted) or store
	// (kept in mailgate's store, browsable in the console). Required.
	Type string `yaml:"type" required:"true" enum:"maildir,webhook,command,store" label:"Type"`
	// Path is the Maildir directory for maildir sinks; relative to the config
	// file's directory. Required for maildir.
	Path string `yaml:"path" only:"type=maildir" label:"Maildir path (maildir)"`
	// URL is the webhook's absolute http or https URL (http to a host that is
	// not loopback draws a warning). Required for webhook.
	URL string `yaml:"url" destination:"true" only:"type=webhook" url:"true" label:"URL (webhook)" example:"https://app.example/mail"`
	// Secret is the key the webhook body is signed with (HMAC-SHA256). Use
	// ${ENV} or file:PATH. Default: none (unsigned).
	Secret Secret `yaml:"secret" only:"type=webhook" label:"HMAC secret (webhook)" help:"left empty, the current one is kept" example:"${HOOK_SECRET}"`
	// Command is the program and its arguments for command sinks, as a YAML
	// list; no shell is involved. Required for command.
	Command []string `yaml:"command" only:"type=command" writeonly:"true" label:"Command and arguments (command), space-separated" help:"no shell; never shown again (arguments may hold secrets); left empty, the current one is kept. The API takes a JSON array for arguments with spaces" example:"[/usr/bin/procmail]"`
	// Timeout bounds one delivery (webhook request or command run), as a Go
	// duration. Default: 30s
	Timeout Duration `yaml:"timeout" only:"type=webhook,command" label:"Timeout per delivery (webhook, command; e.g. 30s)" example:"30s"`
	// Headers are extra HTTP headers sent with every webhook request, as a
	// mapping of name to value. Default: none.
	Headers map[string]string `yaml:"headers" only:"type=webhook" label:"Extra headers (webhook), one Name: value per line" help:"never shown again; left empty, the current ones are kept" example:"{X-Source: mailgate}"`
	// Origin is where the record comes from: OriginFile or OriginConsole
	// (set by ParseWith, never read from YAML).
	Origin string `yaml:"-"`
}

// Sender is a way to send mail.
type Sender struct {
	// Name identifies the sender (mailgate send --sender NAME). Letters,
	// digits, '.', '_' and '-'. Required.
	Name string `yaml:"name" required:"true" label:"Name"`
	// Protocol is smtp (submission with SASL) or graph (Microsoft Graph
	// sendMail; host, port, security and sasl do not apply). Required.
	Protocol string `yaml:"protocol" required:"true" enum:"smtp,graph" label:"Protocol"`
	// Host is the SMTP submission server. Required for smtp.
	Host string `yaml:"host" only:"protocol=smtp" label:"Host (smtp)"`
	// Port is the server's TCP port. Default: 587 with starttls, 465 with
	// tls, 25 with none.
	Port int `yaml:"port" only:"protocol=smtp" label:"Port (empty: the default)"`
	// Security is the transport: starttls, tls (implicit TLS) or none (only
	// to a loopback host). Default: starttls
	Security string `yaml:"security" only:"protocol=smtp" enum:"starttls,tls,none" label:"Security"`
	// TLSCA is a PEM file of extra certificate authorities to trust for the
	// server; relative to the config file's directory. Default: none.
	TLSCA string `yaml:"tls_ca" only:"protocol=smtp" label:"Extra CA file (PEM path on the server)" example:"extra-ca.pem"`
	// SASL is the authentication mechanism: xoauth2 or oauthbearer.
	// Default: xoauth2
	SASL string `yaml:"sasl" only:"protocol=smtp" enum:"xoauth2,oauthbearer" label:"SASL mechanism (smtp)"`
	// Username is the account that authenticates (smtp) or whose mailbox
	// sends (graph). Required.
	Username string `yaml:"username" required:"true" label:"Mailbox that sends"`
	// Profile is the name of the profile whose tokens authenticate.
	// Required.
	Profile string `yaml:"profile" required:"true" label:"OAuth profile"`
	// AllowedFrom lists the From / envelope sender addresses this sender may
	// use, as a YAML list; "@example.com" allows a whole domain. Anything
	// else is refused. Default: none (only username).
	AllowedFrom []string `yaml:"allowed_from" label:"Allowed From addresses (space-separated)"`
	// Endpoint is the Microsoft Graph base URL for graph senders (http only
	// to loopback). Default: https://graph.microsoft.com
	Endpoint string `yaml:"endpoint" only:"protocol=graph" url:"true" label:"Graph endpoint (graph)" example:"https://graph.microsoft.com"`
	// SaveToSentItems says whether Graph keeps a copy in Sent Items (graph
	// only); false deletes the copy after sending, which needs
	// Mail.ReadWrite. Default: true
	SaveToSentItems bool `yaml:"save_to_sent_items" only:"protocol=graph" label:"Keep a copy in Sent Items (graph)" example:"true"`
	// Rate is the most messages a minute the sender submits (the outbox
	// spaces them 60/rate seconds apart); 0 does not pace. Default: 30 for
	// host smtp.office365.com and 1000 for graph at graph.microsoft.com
	// (Microsoft's Exchange Online and Graph limits), else 0.
	Rate int `yaml:"rate" label:"Messages per minute (0: no pacing)" example:"30"`
	// MaxConnections is how many SMTP connections (or concurrent Graph
	// requests) the outbox opens for this sender, each sending its own
	// batch; Graph allows 4 concurrent requests per mailbox. Default: 1
	MaxConnections int `yaml:"max_connections" label:"Connections at once" example:"1"`
	// MaxRecipientsPerDay is the most recipients the outbox submits for
	// this sender in any 24 hours; messages beyond it wait (queued) until
	// the budget frees up, never refused. 0: no limit. Default: 10000 for
	// host smtp.office365.com and for graph at graph.microsoft.com
	// (Exchange Online's recipient rate limit), else 0.
	MaxRecipientsPerDay int `yaml:"max_recipients_per_day" label:"Recipients per 24 hours (0: no limit)" example:"10000"`
	// Origin is where the record comes from: OriginFile or OriginConsole
	// (set by ParseWith, never read from YAML).
	Origin string `yaml:"-"`
}

// Listener is one port of the legacy-client proxy.
type Listener struct {
	// Name identifies the listener in accounts' listeners keys, logs and
	// metrics. Letters, digits, '.', '_' and '-'. Required.
	Name string `yaml:"name" required:"true" label:"Name"`
	// Protocol is what legacy clients speak to it: imap, pop3 or smtp
	// (submission). Required.
	Protocol string `yaml:"protocol" required:"true" enum:"imap,pop3,smtp" label:"Protocol"`
	// Listen is the address the listener binds, host:port. Required.
	Listen string `yaml:"listen" required:"true" label:"Listen on (host:port)"`
	// Security is how clients connect: none (clear text; only on a
	// loopback listen address), starttls (clear until STARTTLS/STLS; a
	// password is taken only after it, except from loopback clients) or
	// tls (implicit TLS). Default: none
	Security string `yaml:"security" enum:"none,starttls,tls" label:"Security"`
	// TLSCert is the listener's PEM certificate (chain); relative to the
	// config file's directory. Required for starttls and tls.
	TLSCert string `yaml:"tls_cert" label:"Certificate (PEM path on the server)" example:"legacy.crt"`
	// TLSKey is the PEM private key of tls_cert. Required for starttls and
	// tls.
	TLSKey string `yaml:"tls_key" label:"Private key (PEM path on the server)" example:"legacy.key"`
	// Upstream is the real server the listener's accounts reach.
	// Required.
	Upstream Upstream `yaml:"upstream" example:"{host: outlook.office365.com, port: 993, security: tls, sasl: xoauth2}"`
}

// Upstream is the server behind a listener.
type Upstream struct {
	// Host is the server's name, e.g. outlook.office365.com (IMAP, POP3)
	// or smtp.office365.com (SMTP). Required.
	Host string `yaml:"host" required:"true" label:"Upstream host"`
	// Port is the server's TCP port. Default: imap 993 with tls, 143
	// otherwise; pop3 995 with tls, 110 otherwise; smtp 587 with starttls,
	// 465 with tls, 25 with none.
	Port int `yaml:"port" label:"Upstream port"`
	// Security is the transport to the server: tls, starttls or none
	// (only to a loopback host). Default: tls (smtp: starttls)
	Security string `yaml:"security" enum:"tls,starttls,none" label:"Upstream security"`
	// TLSCA is a PEM file of extra certificate authorities to trust for the
	// server; relative to the config file's directory. Default: none.
	TLSCA string `yaml:"tls_ca" label:"Upstream extra CA file" example:"extra-ca.pem"`
	// SASL is the mechanism mailgate logs in with: xoauth2. Default:
	// xoauth2
	SASL string `yaml:"sasl" enum:"xoauth2" label:"Upstream SASL mechanism"`
}

// Account is a login of the legacy-client proxy.
type Account struct {
	// Username is what the legacy client sends (IMAP LOGIN, AUTH
	// PLAIN/LOGIN, POP3 USER). Required.
	Username string `yaml:"username" required:"true" label:"User name"`
	// Password is the account's local password (at most 72 bytes), never
	// sent upstream; mailgate keeps only its bcrypt hash. A bcrypt hash
	// ($2a$…, as htpasswd -B makes) is taken as the hash itself, so the
	// file need not hold the password. Use ${ENV} or file:PATH. Required.
	Password Secret `yaml:"password" required:"true" label:"Local password" example:"${SCANNER_PASSWORD}"`
	// Profile is the name of the profile whose token logs in upstream.
	// Required.
	Profile string `yaml:"profile" required:"true" label:"OAuth profile"`
	// Mailbox is the mailbox mailgate logs in to upstream (the XOAUTH2
	// user). Required.
	Mailbox string `yaml:"mailbox" required:"true" label:"Mailbox upstream"`
	// Listeners are the listeners the account may use, as a YAML list.
	// Default: all of them.
	Listeners []string `yaml:"listeners" label:"Listeners (space-separated; empty: all)" example:"[legacy-imap, legacy-smtp]"`
	// AllowedFrom lists the From / envelope sender addresses the account
	// may send as through an smtp listener; "@example.com" allows a whole
	// domain. Default: none (only mailbox).
	AllowedFrom []string `yaml:"allowed_from" label:"Allowed From addresses (space-separated)" example:"[scanner@contoso.com]"`
	// Rate is the most messages a minute the account submits through an
	// smtp listener. Its submissions share one pace (and the pause after
	// a throttling answer) with a sender of the same mailbox at the same
	// host; a message whose turn is more than a minute away gets 451
	// 4.7.0 and is retried by the client. The slower of this and that
	// sender's rate applies. 0: 30 when the listener's upstream is
	// smtp.office365.com (Exchange Online's limit), else only the
	// sender's rate (none without a sender).
	Rate int `yaml:"rate" label:"Messages per minute through smtp listeners (0: the mailbox's default)" example:"30"`
	// Origin is where the account comes from: OriginFile or OriginConsole
	// (set by ParseWith, never read from YAML).
	Origin string `yaml:"-"`
}
