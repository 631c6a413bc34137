package app

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteCertificate writes `cert new`'s PEM files into dir (created 0700
// when missing): key.pem mode 0600, cert.pem mode 0644, refusing to
// replace existing files unless force is set. It returns both paths and
// the parsed certificate, for what the command prints.
func WriteCertificate(dir string, certPEM, keyPEM []byte, force bool) (certPath, keyPath string, cert *x509.Certificate, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", nil, err
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := WriteNewFile(keyPath, keyPEM, 0o600, force); err != nil {
		return "", "", nil, err
	}
	if err := WriteNewFile(certPath, certPEM, 0o644, force); err != nil {
		return "", "", nil, err
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return "", "", nil, errors.New("cert: no PEM block")
	}
	cert, err = x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", "", nil, err
	}
	return certPath, keyPath, cert, nil
}

// WriteNewFile writes data to path with perm and syncs it, refusing to
// replace an existing file unless force is set (`mailgate cert`).
func WriteNewFile(path string, data []byte, perm fs.FileMode, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, perm)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists (use --force to replace it)", path)
	}
	if err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
