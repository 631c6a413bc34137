// Package pgtest starts private PostgreSQL servers for tests, from the
// Debian packages (postgresql-15: /usr/lib/postgresql/15/bin), on a free
// loopback port, with the data directory in a temporary directory. Nothing
// is left running: servers stop when the test (Start) or the package
// (Shared.Close) ends, and a watchdog process stops a server whose test
// process died without cleaning up.
//
// initdb and postgres refuse to run as root, so when the tests run as root
// the server runs as the "postgres" user through runuser(1), and the
// directories it needs are given to that user.
//
// When the binaries are missing, tests are skipped with the reason, or
// fail when MAILGATE_REQUIRE_INTEGRATION=1.
//
// Use, one server per test (about a second to initdb and start):
//
//	dsn := pgtest.Start(t) // postgres://postgres@127.0.0.1:PORT/test?sslmode=disable
//
// or one server per test package and a fresh database per test (tens of
// milliseconds each):
//
//	var pg pgtest.Shared
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		pg.Close()
//		os.Exit(code)
//	}
//
//	func TestX(t *testing.T) { dsn := pg.Database(t) }
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinDir is where Debian installs PostgreSQL 15's server programs.
const BinDir = "/usr/lib/postgresql/15/bin"

// RequireEnv, set to 1, turns a missing PostgreSQL into a test failure.
const RequireEnv = "MAILGATE_REQUIRE_INTEGRATION"

// ErrUnavailable means PostgreSQL's programs are not installed (or, as
// root, there is no postgres user to run them).
var ErrUnavailable = errors.New("pgtest: PostgreSQL 15 is not available")

// Server is a running private PostgreSQL.
type Server struct {
	dir      string // owned by the server's user; holds data/ and the log
	port     int
	runAs    string // "postgres" when running as root, else ""
	watchdog *exec.Cmd
	stopOnce sync.Once
	stopErr  error
}

// available checks the programs and, as root, the postgres user.
func available() (runAs string, err error) {
	for _, p := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(BinDir, p)); err != nil {
			return "", fmt.Errorf("%w: %s/%s missing (apt-get install postgresql-15)", ErrUnavailable, BinDir, p)
		}
	}
	if os.Geteuid() != 0 {
		return "", nil
	}
	if _, err := exec.LookPath("runuser"); err != nil {
		return "", fmt.Errorf("%w: running as root needs runuser", ErrUnavailable)
	}
	if _, err := user.Lookup("postgres"); err != nil {
		return "", fmt.Errorf("%w: running as root needs a postgres user: %v", ErrUnavailable, err)
	}
	return "postgres", nil
}

// command builds a command running a PostgreSQL program as the server's
// user.
func (s *Server) command(ctx context.Context, prog string, args ...string) *exec.Cmd {
	path := filepath.Join(BinDir, prog)
	if s.runAs == "" {
		return exec.CommandContext(ctx, path, args...)
	}
	return exec.CommandContext(ctx, "runuser", append([]string{"-u", s.runAs, "--", path}, args...)...)
}

// Test servers trade durability for speed; TCP on loopback only.
const (
	loopbackConf = "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\nmax_connections = 200\n"
	fastConf     = loopbackConf + "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
)

// Launch initialises a cluster in dir (which must exist and be empty
// enough for a data/ subdirectory) and starts it on a free loopback port.
// As root, dir and its parents are made traversable by the postgres user
// and dir is given to it. Its commits are not durable (fsync = off), which
// suits tests.
func Launch(ctx context.Context, dir string) (*Server, error) {
	return launch(ctx, dir, fastConf)
}

// LaunchDurable is Launch with PostgreSQL's durable defaults (fsync,
// synchronous_commit, full_page_writes on): a commit returns once its WAL
// is on disk, as on a production server. Benchmarks use it.
func LaunchDurable(ctx context.Context, dir string) (*Server, error) {
	return launch(ctx, dir, loopbackConf)
}

func launch(ctx context.Context, dir, conf string) (*Server, error) {
	runAs, err := available()
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, runAs: runAs}
	if runAs != "" {
		if err := giveTo(dir, runAs); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	out, err := s.command(ctx, "initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
		"--no-sync", "--no-instructions").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	if err := appendFile(filepath.Join(data, "postgresql.conf"), conf); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	var lastErr error
	for range 3 {
		s.port, err = freePort()
		if err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
		out, err := s.command(ctx, "pg_ctl", "-D", data, "-l", filepath.Join(dir, "postgres.log"), "-w", "-t", "60",
			"-o", "-p "+strconv.Itoa(s.port), "start").CombinedOutput()
		if err == nil {
			lastErr = nil
			break
		}
		log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
		lastErr = fmt.Errorf("pgtest: pg_ctl start: %w\n%s\n%s", err, out, tail(log, 2000))
	}
	if lastErr != nil {
		return nil, lastErr
	}
	s.startWatchdog()
	return s, nil
}

// startWatchdog starts a shell that stops the server when this process
// is gone (a test binary killed by a timeout runs no cleanup). Stop ends
// the watchdog.
func (s *Server) startWatchdog() {
	stop := s.command(context.Background(), "pg_ctl", "-D", filepath.Join(s.dir, "data"), "stop", "-m", "immediate").Args
	quoted := make([]string, len(stop))
	for i, a := range stop {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	script := fmt.Sprintf("while kill -0 %d 2>/dev/null; do sleep 1; done; %s >/dev/null 2>&1",
		os.Getpid(), strings.Join(quoted, " "))
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err == nil {
		s.watchdog = cmd
	}
}

// DSN is the URL of database db on the server.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// Port is the server's loopback TCP port.
func (s *Server) Port() int { return s.port }

// CreateDatabase creates database name and returns its DSN.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return s.DSN(name), nil
}

// Stop stops the server at once (pg_ctl stop -m immediate) and its
// watchdog. It is safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := s.command(ctx, "pg_ctl", "-D", filepath.Join(s.dir, "data"), "stop", "-m", "immediate", "-w").CombinedOutput()
		if err != nil {
			s.stopErr = fmt.Errorf("pgtest: pg_ctl stop: %w\n%s", err, out)
		}
		if s.watchdog != nil {
			_ = s.watchdog.Process.Kill()
			_ = s.watchdog.Wait()
		}
	})
	return s.stopErr
}

// Start starts a private server for t, stopped in t.Cleanup, and returns
// the DSN of its "test" database. Missing binaries skip t (or fail it
// under MAILGATE_REQUIRE_INTEGRATION=1).
func Start(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	s, err := Launch(t.Context(), dir)
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	dsn, err := s.CreateDatabase(t.Context(), "test")
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// skipOrFail ends t because PostgreSQL could not be started.
func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrUnavailable) && os.Getenv(RequireEnv) != "1" {
		t.Skip(err)
	}
	t.Fatal(err)
}

// Shared is one server for a whole test package, started by the first
// Database call; TestMain calls Close after m.Run. Its zero value is ready.
type Shared struct {
	mu  sync.Mutex
	srv *Server
	dir string
	err error
	n   int
}

// Database creates a fresh database on the shared server and returns its
// DSN; the database is dropped in t.Cleanup.
func (sh *Shared) Database(t testing.TB) string {
	t.Helper()
	sh.mu.Lock()
	if sh.srv == nil && sh.err == nil {
		sh.dir, sh.err = os.MkdirTemp("", "mailgate-pgtest-")
		if sh.err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			sh.srv, sh.err = Launch(ctx, sh.dir)
			cancel()
		}
	}
	srv, err := sh.srv, sh.err
	sh.n++
	name := fmt.Sprintf("t%d_%d", os.Getpid(), sh.n)
	sh.mu.Unlock()
	if err != nil {
		skipOrFail(t, err)
	}
	dsn, err := srv.CreateDatabase(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, srv.DSN("postgres"))
		if err != nil {
			t.Errorf("pgtest: drop database: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return dsn
}

// Close stops the shared server, if it was started, and removes its
// directory.
func (sh *Shared) Close() error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var err error
	if sh.srv != nil {
		err = sh.srv.Stop()
		sh.srv = nil
	}
	if sh.dir != "" {
		if rerr := os.RemoveAll(sh.dir); err == nil {
			err = rerr
		}
		sh.dir = ""
	}
	sh.err = errors.New("pgtest: shared server closed")
	return err
}

// giveTo makes dir owned by the named user and its ancestors traversable,
// so the server's user can reach it (t.TempDir's parents are mode 0700).
func giveTo(dir, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	for p := filepath.Dir(abs); p != "/"; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, fi.Mode().Perm()|0o011); err != nil {
				return fmt.Errorf("pgtest: let %s reach %s: %w", name, dir, err)
			}
		}
	}
	return nil
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
