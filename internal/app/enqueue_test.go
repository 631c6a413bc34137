package app

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/store"
)

// TestEnqueueChunks: `send` through a running serve queues its messages
// a chunk per transaction (100 messages, or 16 MB), every message once,
// in order, each reported with its id.
func TestEnqueueChunks(t *testing.T) {
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "db"), &store.Options{Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := &App{st: st}
	tests := []struct {
		name   string
		n      int
		size   int
		chunks int
	}{
		{"count", 250, 100, 3},
		{"bytes", 5, 6 << 20, 3}, // 16 MB hold two of 6 MB
		{"one larger than a chunk", 1, 20 << 20, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var msgs []*Prepared
			for i := range tc.n {
				msgs = append(msgs, &Prepared{Name: fmt.Sprintf("m%d", i), From: "a@example.com", Rcpts: []string{"b@example.com"},
					Raw: []byte(fmt.Sprintf("Subject: %d\r\n\r\n%s", i, strings.Repeat("x", tc.size)))})
			}
			var got []int64
			var names []string
			err := a.Enqueue(t.Context(), &config.Sender{Name: "s"}, msgs, func(m *Prepared, id int64) {
				names = append(names, m.Name)
				got = append(got, id)
				if len(got) > 1 && id != got[len(got)-2]+1 {
					t.Errorf("ids %v not in order", got)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.n {
				t.Fatalf("%d queued, want %d", len(got), tc.n)
			}
			for i, n := range names {
				if n != fmt.Sprintf("m%d", i) {
					t.Fatalf("reported %v", names)
				}
			}
			// messages of one chunk share their queue time (one transaction)
			all, err := st.OutboxFind(t.Context(), store.OutboxFilter{}, 1000)
			if err != nil {
				t.Fatal(err)
			}
			ours := map[int64]bool{}
			for _, id := range got {
				ours[id] = true
			}
			times := map[int64]bool{}
			for _, o := range all {
				if ours[o.ID] {
					times[o.CreatedAt.UnixNano()] = true
				}
			}
			if chunks := len(times); chunks != tc.chunks {
				t.Errorf("%d transactions, want %d", chunks, tc.chunks)
			}
		})
	}
}
