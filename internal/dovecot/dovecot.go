// Package dovecot starts and stops a private, rootless Dovecot (Debian's
// dovecot-imapd, -pop3d, -submissiond, -lmtpd and -auth-lua) on loopback
// for tests and benchmarks: IMAP, IMAPS, POP3, POP3S, submission and LMTP
// on free ports, a self-signed certificate, maildirs under a temporary
// directory, and logins decided by the Entra ID emulator with Exchange
// Online's rules (scripts/dovecot/check.lua asks
// POST /_emulator/exchange/check). It is test infrastructure: the real
// server the protocol code is proved against.
//
//	dv := dovecot.StartT(t, dovecot.Options{CheckURL: emu.HTTPURL()})
//	dv.Seed("forms@contoso.example", 1000, 5000)
//	addr := dv.Addr("imaps") // tls_ca: dv.CAFile()
package dovecot

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Options configure Start.
type Options struct {
	// Dir holds the instance (config, maildirs, logs); default a temporary
	// directory removed by Stop.
	Dir string
	// CheckURL is the emulator's plain-HTTP base URL. Required.
	CheckURL string
	// RelayPort is where submission relays to (default: a free port, no relay).
	RelayPort int
	// Relay starts the test relay (StartRelay) so that submission works:
	// messages sent through submission are delivered into Dovecot.
	Relay bool
}

// Server is a running Dovecot.
type Server struct {
	dir     string
	temp    bool
	ports   map[string]int
	pid     int
	runUser *user.User
	seq     atomic.Int64
	env     []string
	relay   *Relay
}

var protos = []string{"imap", "imaps", "pop3", "pop3s", "submission", "submissions", "lmtp"}

// scriptsDir finds scripts/dovecot from this source file (tests run in the
// repository) or $MAILGATE_SCRIPTS.
func scriptsDir() string {
	if d := os.Getenv("MAILGATE_SCRIPTS"); d != "" {
		return filepath.Join(d, "dovecot")
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "scripts", "dovecot")
}

// Available reports whether Dovecot and its Lua passdb are installed.
func Available() error {
	for _, p := range []string{"/usr/sbin/dovecot", "/usr/lib/dovecot/modules/auth/libauthdb_lua.so", "/usr/lib/dovecot/imap", "/usr/lib/dovecot/pop3"} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("dovecot: %s missing (scripts/install-deps.sh installs the Debian packages)", p)
		}
	}
	if _, err := exec.LookPath("curl"); err != nil {
		return fmt.Errorf("dovecot: curl missing")
	}
	return nil
}

// freePorts returns n distinct free loopback ports (all held open until
// every one is picked, so none is handed out twice).
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Start runs scripts/dovecot/start.sh with free ports.
func Start(ctx context.Context, o Options) (*Server, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if o.CheckURL == "" {
		return nil, fmt.Errorf("dovecot: Options.CheckURL (the emulator's http URL) is required")
	}
	s := &Server{dir: o.Dir, ports: map[string]int{}}
	if s.dir == "" {
		d, err := os.MkdirTemp("", "mailgate-dovecot-")
		if err != nil {
			return nil, err
		}
		s.dir, s.temp = d, true
	}
	// the run-as user (nobody when root) must reach the directory
	_ = os.Chmod(s.dir, 0o755)
	if o.Relay {
		r, err := StartRelay(func() string { return s.Addr("lmtp") })
		if err != nil {
			return nil, err
		}
		s.relay = r
		o.RelayPort = r.Port()
	}
	// another process may take a port between our pick and Dovecot's
	// bind: try again with new ports
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var ports []int
		if ports, err = freePorts(len(protos) + 1); err != nil {
			break
		}
		env := append(os.Environ(), "DV_CHECK_URL="+o.CheckURL)
		for i, p := range protos {
			s.ports[p] = ports[i]
			env = append(env, "DV_"+strings.ToUpper(p)+"="+strconv.Itoa(ports[i]))
		}
		relay := o.RelayPort
		if relay == 0 {
			relay = ports[len(protos)]
		}
		s.env = append(env, "DV_RELAY_PORT="+strconv.Itoa(relay))
		if err = s.start(ctx); err == nil {
			break
		}
		_ = exec.Command("bash", filepath.Join(scriptsDir(), "stop.sh"), s.dir).Run()
	}
	if err != nil {
		if s.relay != nil {
			s.relay.Close()
		}
		s.cleanup()
		return nil, err
	}
	if os.Getuid() == 0 {
		s.runUser, _ = user.Lookup("nobody")
	} else {
		s.runUser, _ = user.Current()
	}
	return s, nil
}

func (s *Server) start(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(scriptsDir(), "start.sh"), s.dir)
	cmd.Env = s.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("dovecot: start.sh: %v: %s%s", err, errb.String(), s.log())
	}
	pid, err := strconv.Atoi(strings.TrimSpace(out.String()))
	if err != nil {
		return fmt.Errorf("dovecot: start.sh printed %q, not a PID: %s", out.String(), errb.String())
	}
	s.pid = pid
	return nil
}

// Restart stops Dovecot and starts it again on the same ports with the
// same mail (for "the server went away" tests).
func (s *Server) Restart(ctx context.Context) error {
	if out, err := exec.Command("bash", filepath.Join(scriptsDir(), "stop.sh"), s.dir).CombinedOutput(); err != nil {
		return fmt.Errorf("dovecot: stop.sh: %v: %s", err, out)
	}
	return s.start(ctx)
}

// StartT starts Dovecot for a test and stops it at the end. Without
// Dovecot installed the test is skipped, or fails when
// MAILGATE_REQUIRE_INTEGRATION=1.
func StartT(t testing.TB, o Options) *Server {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("MAILGATE_REQUIRE_INTEGRATION") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func (s *Server) log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "log", "dovecot.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Relay is the test relay behind submission (nil without Options.Relay).
func (s *Server) Relay() *Relay { return s.relay }

// Log returns the tail of Dovecot's log (for test failures).
func (s *Server) Log() string { return s.log() }

// Addr returns 127.0.0.1:port of proto: imap, imaps, pop3, pop3s,
// submission (STARTTLS), submissions (implicit TLS) or lmtp.
func (s *Server) Addr(proto string) string {
	return "127.0.0.1:" + strconv.Itoa(s.ports[proto])
}

// CAFile is the server's self-signed certificate, to trust with tls_ca.
func (s *Server) CAFile() string { return filepath.Join(s.dir, "ssl", "cert.pem") }

// TLSConfig trusts the server's certificate.
func (s *Server) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	if b, err := os.ReadFile(s.CAFile()); err == nil {
		pool.AppendCertsFromPEM(b)
	}
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// MailboxDir is the maildir of a user (an address).
func (s *Server) MailboxDir(addr string) string {
	local, domain, _ := strings.Cut(strings.ToLower(addr), "@")
	return filepath.Join(s.dir, "mail", domain, local, "Maildir")
}

// SeedMessage puts raw into the user's INBOX (new/), byte for byte.
func (s *Server) SeedMessage(addr string, raw []byte) error {
	return s.seedInto(addr, "", raw)
}

func (s *Server) seedInto(addr, folder string, raw []byte) error {
	dir := s.MailboxDir(addr)
	if folder != "" {
		dir = filepath.Join(dir, "."+folder)
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	name := fmt.Sprintf("%d.M%dP%d.seed", time.Now().Unix(), s.seq.Add(1), os.Getpid())
	p := filepath.Join(dir, "new", name)
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		return err
	}
	return s.chown(s.MailboxDir(addr))
}

// SeedBody is the n-th seeded message of about size bytes: CRLF lines and
// a Message-ID <seed-N@mailgate.test>.
func SeedBody(addr string, n, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Seeder <seed@mailgate.test>\r\nTo: %s\r\nSubject: seed %d\r\nMessage-ID: <seed-%d@mailgate.test>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", addr, n, n)
	line := fmt.Sprintf("message %d: the quick brown fox jumps over the lazy dog 0123456789.\r\n", n)
	for b.Len() < size {
		b.WriteString(line)
	}
	return b.Bytes()
}

// Seed puts n messages of about size bytes (SeedBody) into the INBOX.
func (s *Server) Seed(addr string, n, size int) error {
	dir := s.MailboxDir(addr)
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("%d.M%dP%d.seed", time.Now().Unix(), s.seq.Add(1), os.Getpid())
		if err := os.WriteFile(filepath.Join(dir, "new", name), SeedBody(addr, i, size), 0o600); err != nil {
			return err
		}
	}
	return s.chown(dir)
}

func (s *Server) chown(dir string) error {
	if s.runUser == nil || os.Getuid() != 0 {
		return nil
	}
	uid, _ := strconv.Atoi(s.runUser.Uid)
	gid, _ := strconv.Atoi(s.runUser.Gid)
	root := filepath.Join(s.dir, "mail")
	// a live Dovecot creates and removes lock files while this walks:
	// a file gone by the time it is reached is not an error
	return filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			err = os.Lchown(p, uid, gid)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	})
}

// Messages returns the maildir files of a user's folder ("" = INBOX), as
// Dovecot left them: name → contents.
func (s *Server) Messages(addr, folder string) (map[string][]byte, error) {
	dir := s.MailboxDir(addr)
	if folder != "" {
		dir = filepath.Join(dir, "."+folder)
	}
	out := map[string][]byte{}
	for _, sub := range []string{"new", "cur"} {
		es, err := os.ReadDir(filepath.Join(dir, sub))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			b, err := os.ReadFile(filepath.Join(dir, sub, e.Name()))
			if err != nil {
				return nil, err
			}
			out[sub+"/"+e.Name()] = b
		}
	}
	return out, nil
}

// Stop stops Dovecot (scripts/dovecot/stop.sh) and removes a temporary
// Dir.
func (s *Server) Stop() error {
	cmd := exec.Command("bash", filepath.Join(scriptsDir(), "stop.sh"), s.dir)
	out, err := cmd.CombinedOutput()
	if s.relay != nil {
		s.relay.Close()
	}
	s.cleanup()
	if err != nil {
		return fmt.Errorf("dovecot: stop.sh: %v: %s", err, out)
	}
	return nil
}

func (s *Server) cleanup() {
	if s.temp {
		_ = os.RemoveAll(s.dir)
	}
}
