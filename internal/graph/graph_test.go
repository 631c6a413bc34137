package graph

import (
	"strings"
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
