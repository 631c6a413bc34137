package app

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckHealth(t *testing.T) {
	var status atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	tests := []struct {
		name    string
		status  int
		wantErr string
	}{
		{"ok", http.StatusOK, ""},
		{"unavailable", http.StatusServiceUnavailable, "503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status.Store(int32(tt.status))
			err := CheckHealth(t.Context(), srv.URL+"/healthz", time.Minute)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("CheckHealth = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestWriteNewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := WriteNewFile(path, []byte("one"), 0o600, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteNewFile(path, []byte("two"), 0o600, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("WriteNewFile over an existing file = %v, want a refusal naming --force", err)
	}
	if err := WriteNewFile(path, []byte("three"), 0o600, true); err != nil {
		t.Fatalf("WriteNewFile with force: %v", err)
	}
	b, err := os.ReadFile(path)
	fi, serr := os.Stat(path)
	if err != nil || serr != nil || string(b) != "three" || fi.Mode().Perm() != 0o600 {
		t.Errorf("file = %q (%v), mode %v (%v); want \"three\", 0600", b, err, fi.Mode().Perm(), serr)
	}
}
