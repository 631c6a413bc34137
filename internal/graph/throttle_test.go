package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestThrottledError: a 429 or 503 left after the client's own attempts
// says Throttled with the answer's Retry-After; other refusals do not.
func TestThrottledError(t *testing.T) {
	for _, tc := range []struct {
		status     int
		retryAfter string
		want       bool
		wait       time.Duration
	}{
		{429, "7", true, 7 * time.Second}, {503, "", true, 0}, {403, "", false, 0}, {500, "3", false, 3 * time.Second},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				fmt.Fprint(w, `{"error":{"code":"x","message":"y"}}`)
			}))
			defer srv.Close()
			c := New(Options{Endpoint: srv.URL, HTTPClient: srv.Client(), MaxAttempts: 1,
				Bearer: BearerFunc(func(context.Context) (string, error) { return "tok", nil })})
			err := c.MarkRead(t.Context(), "u@example.com", "id")
			var ge *Error
			if !errors.As(err, &ge) {
				t.Fatalf("error %v, want a *graph.Error", err)
			}
			wait, got := ge.Throttled()
			if got != tc.want || wait != tc.wait {
				t.Errorf("Throttled() = %v, %v; want %v, %v", wait, got, tc.want, tc.wait)
			}
		})
	}
}
