package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// Sealed values are laid out as
//
//	version (1 byte, sealVersion) | nonce (12 bytes) | AES-256-GCM ciphertext and tag
//
// and authenticated with additional data naming the table, the column and
// the row's identity (see sealAD), so a value copied into another row or
// column no longer opens.
const (
	sealVersion  byte = 1
	sealOverhead      = 1 + 12 + 16
	// KeySize is the length of the store key: AES-256.
	KeySize = 32
)

// ErrDecrypt matches every failure to open a sealed value: the wrong key,
// a value moved to another row, or damaged bytes.
var ErrDecrypt = errors.New("store: cannot decrypt")

// DecryptError says which sealed value could not be opened. It matches
// ErrDecrypt with errors.Is.
type DecryptError struct {
	Table  string // e.g. "oauth_refresh_tokens"
	Column string // e.g. "refresh_token"
	Row    string // the row's identity, e.g. the profile name
}

func (e *DecryptError) Error() string {
	return fmt.Sprintf("store: cannot decrypt %s.%s of %q: wrong MAILGATE_KEY or key file? (or the value was damaged or copied from another row)",
		e.Table, e.Column, e.Row)
}

// Is makes errors.Is(err, ErrDecrypt) true.
func (e *DecryptError) Is(target error) bool { return target == ErrDecrypt }

// sealer seals and opens column values with one AES-256-GCM key.
type sealer struct {
	aead cipher.AEAD
}

func newSealer(key []byte) (*sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("store: the key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// sealAD builds the additional data binding a value to its place: the
// table, the column and each part of the row identity, every part length
// prefixed so that no two different places give the same bytes.
func sealAD(table, column string, row ...string) []byte {
	parts := append([]string{"mailgate-store", table, column}, row...)
	n := 0
	for _, p := range parts {
		n += 4 + len(p)
	}
	ad := make([]byte, 0, n)
	for _, p := range parts {
		ad = binary.BigEndian.AppendUint32(ad, uint32(len(p)))
		ad = append(ad, p...)
	}
	return ad
}

// seal encrypts plaintext for the place described by ad.
func (s *sealer) seal(plaintext, ad []byte) ([]byte, error) {
	out := make([]byte, 1+s.aead.NonceSize(), sealOverhead+len(plaintext))
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("store: nonce: %w", err)
	}
	return s.aead.Seal(out, out[1:1+s.aead.NonceSize()], plaintext, ad), nil
}

// open decrypts a value sealed for ad. Any failure (unknown version,
// short input, authentication failure) is reported as ErrDecrypt without
// returning any bytes.
func (s *sealer) open(sealed, ad []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrDecrypt
	}
	pt, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// sealString seals a string column value of table.column in row; the
// empty string is stored as NULL.
func (s *sealer) sealString(v, table, column string, row ...string) ([]byte, error) {
	if v == "" {
		return nil, nil
	}
	return s.seal([]byte(v), sealAD(table, column, row...))
}

// openString opens what sealString stored; NULL gives "".
func (s *sealer) openString(b []byte, table, column string, row ...string) (string, error) {
	if b == nil {
		return "", nil
	}
	pt, err := s.open(b, sealAD(table, column, row...))
	if err != nil {
		return "", &DecryptError{Table: table, Column: column, Row: joinRow(row)}
	}
	return string(pt), nil
}

func joinRow(row []string) string {
	switch len(row) {
	case 0:
		return ""
	case 1:
		return row[0]
	}
	s := row[0]
	for _, r := range row[1:] {
		s += "/" + r
	}
	return s
}
