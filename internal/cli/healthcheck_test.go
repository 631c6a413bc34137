package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHealthcheck: exit 0 when /healthz answers 200, 1 for any other
// status or no server, 2 for a usage error.
func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			_, _ = w.Write([]byte("ok\n"))
		default:
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name    string
		args    []string
		want    int
		wantErr string
	}{
		{"healthy", []string{"--url", srv.URL + "/healthz"}, ExitOK, ""},
		{"unhealthy status", []string{"--url", srv.URL + "/readyz"}, ExitFailed, "503 Service Unavailable"},
		{"nothing listening", []string{"--url", closedURL + "/healthz"}, ExitFailed, "healthcheck:"},
		{"bad URL", []string{"--url", "::"}, ExitFailed, "healthcheck:"},
		{"extra argument", []string{"now"}, ExitUsage, "usage: mailgate healthcheck"},
		{"unknown flag", []string{"--nope"}, ExitUsage, "-nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			got := Main(t.Context(), append([]string{"healthcheck"}, tt.args...), Stdio{Out: &out, Err: &errOut})
			if got != tt.want {
				t.Fatalf("exit %d, want %d (stderr %q)", got, tt.want, errOut.String())
			}
			if !strings.Contains(errOut.String(), tt.wantErr) {
				t.Errorf("stderr %q, want it to contain %q", errOut.String(), tt.wantErr)
			}
			if tt.want == ExitOK && out.String() != "ok\n" {
				t.Errorf("stdout %q, want ok", out.String())
			}
		})
	}
}
