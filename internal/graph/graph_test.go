package graph

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestParsePage(t *testing.T) {
	p, err := ParsePage([]byte(`{"value":[{"id":"a","isRead":true,"internetMessageId":"<x@y>","receivedDateTime":"2026-11-23T10:00:00Z"},
		{"id":"b","@removed":{"reason":"deleted"}}],"@odata.deltaLink":"https://graph.microsoft.com/v1.0/x?$deltatoken=1"}`))
	if err != nil || len(p.Value) != 2 || p.Value[1].Removed == nil || p.Value[0].Removed != nil || p.DeltaLink == "" || p.Value[0].ReceivedDateTime.IsZero() {
		t.Fatalf("%+v %v", p, err)
	}
	if _, err := ParsePage([]byte(`{"value":"nope"}`)); err == nil {
		t.Error("accepted a malformed page")
	}
}

func TestHints(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{Status: 403, Code: "ErrorAccessDenied", Message: "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings."}, "New-ApplicationAccessPolicy"},
		{Error{Status: 403, Code: "ErrorAccessDenied", Message: "Access is denied."}, "Mail.ReadWrite"},
		{Error{Status: 401, Code: "InvalidAuthenticationToken"}, "graph.microsoft.com/.default"},
	}
	for _, tt := range tests {
		if h := tt.e.Hint(); h == "" || !strings.Contains(h, tt.want) {
			t.Errorf("%+v: %q", tt.e, h)
		}
	}
}

func FuzzParsePage(f *testing.F) {
	f.Add([]byte(`{"value":[{"id":"a","@removed":{"reason":"changed"}}],"@odata.nextLink":"x"}`))
	f.Add([]byte(`{"value":[{"receivedDateTime":"not a date"}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePage(b)
		if err == nil && p == nil {
			t.Fatal("nil page without error")
		}
	})
}

// TestUploadRange: a range goes to the pre-authenticated upload URL without
// the token, a 503 with Retry-After is waited out and retried, and the next
// expected range is read from the answer.
func TestUploadRange(t *testing.T) {
	var calls atomic.Int32
	var refuse atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if r.Header.Get("Authorization") != "" {
			t.Errorf("the upload URL got an Authorization header")
		}
		if got := r.Header.Get("Content-Range"); got != "bytes 0-3/10" {
			t.Errorf("Content-Range %q", got)
		}
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"nextExpectedRanges":["4-"]}`)
	}))
	defer srv.Close()
	c := New(Options{Endpoint: srv.URL, HTTPClient: srv.Client(), Bearer: BearerFunc(func(context.Context) (string, error) {
		t.Error("a token was asked for a pre-authenticated URL")
		return "tok", nil
	})})
	next, err := c.putRange(t.Context(), "u@x", srv.URL+"/upload?authtoken=secret", []byte("0123456789"), 0, 4)
	if err != nil || next != 4 || calls.Load() != 2 {
		t.Fatalf("next %d, err %v, %d calls; want 4 after a retry", next, err, calls.Load())
	}
	// a refusal names the operation, never the URL's authtoken
	refuse.Store(true)
	if _, err := c.putRange(t.Context(), "u@x", srv.URL+"/upload?authtoken=secret", []byte("0123456789"), 0, 4); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("refused upload: %v", err)
	}
}
