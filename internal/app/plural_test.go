package app

import "testing"

func TestPlural(t *testing.T) {
	for _, tc := range []struct {
		n    int
		word string
		want string
	}{
		{1, "mailbox", "1 mailbox"}, {2, "mailbox", "2 mailboxes"}, {0, "address", "0 addresses"},
		{3, "token", "3 tokens"}, {1, "address", "1 address"},
	} {
		if got := Plural(tc.n, tc.word); got != tc.want {
			t.Errorf("Plural(%d, %q) = %q, want %q", tc.n, tc.word, got, tc.want)
		}
	}
}
