package pgtest

import (
	"context"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var shared Shared

func TestMain(m *testing.M) {
	code := m.Run()
	if err := shared.Close(); err != nil {
		println(err.Error())
		code = 1
	}
	os.Exit(code)
}

// query answers SELECT 1 + 1 on dsn.
func query(t *testing.T, dsn string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT 1 + 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestLaunchAndStop(t *testing.T) {
	start := time.Now()
	s, err := Launch(t.Context(), t.TempDir())
	if err != nil {
		skipOrFail(t, err)
	}
	t.Logf("initdb + start: %v", time.Since(start))
	dsn, err := s.CreateDatabase(t.Context(), "x")
	if err != nil {
		t.Fatal(err)
	}
	if got := query(t, dsn); got != 2 {
		t.Fatalf("SELECT 1 + 1 = %d", got)
	}
	start = time.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop: %v", time.Since(start))
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.Port()), time.Second); err == nil {
		c.Close()
		t.Fatalf("port %d still answers after Stop", s.Port())
	}
	if s.watchdog != nil && s.watchdog.ProcessState == nil {
		t.Fatal("watchdog still running after Stop")
	}
}

// TestLaunchDurable: a durable server commits as a production one does,
// a test server does not.
func TestLaunchDurable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		launch func(context.Context, string) (*Server, error)
		want   string
	}{
		{"Launch", Launch, "off"},
		{"LaunchDurable", LaunchDurable, "on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.launch(t.Context(), t.TempDir())
			if err != nil {
				skipOrFail(t, err)
			}
			defer s.Stop()
			conn, err := pgx.Connect(t.Context(), s.DSN("postgres"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(t.Context())
			for _, setting := range []string{"fsync", "synchronous_commit", "full_page_writes"} {
				var got string
				if err := conn.QueryRow(t.Context(), "SHOW "+setting).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Errorf("%s = %s, want %s", setting, got, tc.want)
				}
			}
		})
	}
}

func TestStart(t *testing.T) {
	dsn := Start(t)
	if got := query(t, dsn); got != 2 {
		t.Fatalf("SELECT 1 + 1 = %d", got)
	}
}

func TestSharedDatabases(t *testing.T) {
	a := shared.Database(t)
	start := time.Now()
	b := shared.Database(t)
	t.Logf("second database: %v", time.Since(start))
	if a == b {
		t.Fatalf("two Database calls gave the same DSN %s", a)
	}
	for _, dsn := range []string{a, b} {
		if got := query(t, dsn); got != 2 {
			t.Fatalf("SELECT 1 + 1 = %d on %s", got, dsn)
		}
	}
}
