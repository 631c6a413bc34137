package sink

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestRenameByLink covers the rename non-Linux builds use (it runs on
// Linux too): the file moves, and an existing target is never replaced.
func TestRenameByLink(t *testing.T) {
	tests := []struct {
		name     string
		existing bool
		wantErr  error
	}{
		{name: "moves", existing: false},
		{name: "never replaces", existing: true, wantErr: fs.ErrExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			from, to := filepath.Join(dir, "from"), filepath.Join(dir, "to")
			if err := os.WriteFile(from, []byte("message"), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.existing {
				if err := os.WriteFile(to, []byte("first"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := renameByLink(from, to)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("renameByLink: %v, want %v", err, tt.wantErr)
			}
			want, fromLeft := "message", false
			if tt.existing {
				want, fromLeft = "first", true
			}
			got, rerr := os.ReadFile(to)
			if rerr != nil || string(got) != want {
				t.Fatalf("target holds %q (%v), want %q", got, rerr, want)
			}
			if _, serr := os.Stat(from); (serr == nil) != fromLeft {
				t.Fatalf("source still there: %v, want %v", serr == nil, fromLeft)
			}
		})
	}
}
