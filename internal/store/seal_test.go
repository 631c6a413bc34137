package store

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealRoundTrip(t *testing.T) {
	s, err := newSealer(bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, plain string }{
		{"short", "x"},
		{"token", "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.payload.sig"},
		{"binary", "\x00\xff\x00"},
		{"long", string(bytes.Repeat([]byte("r"), 10000))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := s.sealString(tt.plain, "tbl", "col", "row")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := s.sealString(tt.plain, "tbl", "col", "row")
			if bytes.Equal(a, b) {
				t.Fatal("two seals of one value are equal: nonce reused")
			}
			if a[0] != sealVersion || len(a) != sealOverhead+len(tt.plain) {
				t.Fatalf("layout: version %d, len %d", a[0], len(a))
			}
			if bytes.Contains(a, []byte(tt.plain)) && len(tt.plain) > 3 {
				t.Fatal("sealed bytes hold the plaintext")
			}
			got, err := s.openString(a, "tbl", "col", "row")
			if err != nil || got != tt.plain {
				t.Fatalf("open = %q, %v", got, err)
			}
		})
	}
	if v, err := s.sealString("", "t", "c"); v != nil || err != nil {
		t.Fatalf("empty string sealed to %x, %v; want NULL", v, err)
	}
	if v, err := s.openString(nil, "t", "c"); v != "" || err != nil {
		t.Fatalf("NULL opened to %q, %v", v, err)
	}
}

func TestSealRefusesOtherPlaces(t *testing.T) {
	s, _ := newSealer(bytes.Repeat([]byte{1}, KeySize))
	other, _ := newSealer(bytes.Repeat([]byte{2}, KeySize))
	sealed, err := s.sealString("secret", "tbl", "col", "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(sealed)
		c[i] ^= 1
		return c
	}
	tests := []struct {
		name   string
		sealer *sealer
		value  []byte
		table  string
		column string
		row    []string
	}{
		{"other table", s, sealed, "tbl2", "col", []string{"a", "b"}},
		{"other column", s, sealed, "tbl", "col2", []string{"a", "b"}},
		{"other row", s, sealed, "tbl", "col", []string{"a", "c"}},
		{"row parts shifted", s, sealed, "tbl", "col", []string{"ab"}},
		{"row parts split", s, sealed, "tbl", "col", []string{"a", "b", ""}},
		{"other key", other, sealed, "tbl", "col", []string{"a", "b"}},
		{"version byte", s, flip(0), "tbl", "col", []string{"a", "b"}},
		{"nonce", s, flip(5), "tbl", "col", []string{"a", "b"}},
		{"ciphertext", s, flip(sealOverhead - 16), "tbl", "col", []string{"a", "b"}},
		{"tag", s, flip(len(sealed) - 1), "tbl", "col", []string{"a", "b"}},
		{"truncated", s, sealed[:len(sealed)-1], "tbl", "col", []string{"a", "b"}},
		{"empty", s, []byte{}, "tbl", "col", []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.sealer.openString(tt.value, tt.table, tt.column, tt.row...)
			var de *DecryptError
			if !errors.As(err, &de) || !errors.Is(err, ErrDecrypt) || got != "" {
				t.Fatalf("open = %q, %v; want a DecryptError", got, err)
			}
			if de.Table != tt.table || de.Column != tt.column {
				t.Fatalf("DecryptError names %s.%s", de.Table, de.Column)
			}
		})
	}
}

// FuzzOpenSealed feeds arbitrary bytes to open: it must never panic, and
// anything but an untouched sealed value must be refused without output.
func FuzzOpenSealed(f *testing.F) {
	s, _ := newSealer(bytes.Repeat([]byte{9}, KeySize))
	const plain = "refresh-token-0.AAAA-secret"
	ad := sealAD("oauth_refresh_tokens", "refresh_token", "work")
	// The genuine values use fixed nonces so that every fuzz worker
	// process knows them.
	genuine := map[string]bool{}
	for i := range 3 {
		nonce := bytes.Repeat([]byte{byte(i + 1)}, 12)
		v := s.aead.Seal(append([]byte{sealVersion}, nonce...), nonce, []byte(plain), ad)
		if got, err := s.open(v, ad); err != nil || string(got) != plain {
			f.Fatalf("fixed-nonce seal does not open: %v", err)
		}
		genuine[string(v)] = true
		f.Add(v)
		c := bytes.Clone(v)
		c[len(c)-1] ^= 0x80
		f.Add(c)
		f.Add(v[:len(v)-3])
	}
	f.Add([]byte{})
	f.Add([]byte{sealVersion})
	f.Add(append([]byte{2}, bytes.Repeat([]byte{0}, 40)...))
	f.Add([]byte(plain))
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := s.open(b, ad)
		if genuine[string(b)] {
			if err != nil || string(pt) != plain {
				t.Fatalf("genuine value: %q, %v", pt, err)
			}
			return
		}
		if err == nil || pt != nil {
			t.Fatalf("tampered or foreign input opened: %q, %v", pt, err)
		}
		v, err := s.openString(b, "oauth_refresh_tokens", "refresh_token", "work")
		if err == nil || v != "" {
			t.Fatalf("openString of tampered input: %q, %v", v, err)
		}
	})
}
