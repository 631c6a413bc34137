package sink

import (
	"errors"
	"os"
)

// spool is a delivery written to a temporary file first, for sinks that
// hand the whole message over at Commit (webhook, command). A 50 MB
// message never sits in memory.
type spool struct {
	f    *os.File
	n    int64
	done bool
	err  error
}

func newSpool() (*spool, error) {
	f, err := os.CreateTemp("", "mailgate-spool-")
	if err != nil {
		return nil, err
	}
	return &spool{f: f}, nil
}

func (s *spool) Write(p []byte) (int, error) {
	if s.done {
		return 0, errors.New("sink: write after commit or abort")
	}
	n, err := s.f.Write(p)
	s.n += int64(n)
	if err != nil {
		s.err = err
	}
	return n, err
}

// rewind prepares the spooled bytes for reading from the start.
func (s *spool) rewind() error {
	_, err := s.f.Seek(0, 0)
	return err
}

// Abort removes the spool file; idempotent.
func (s *spool) Abort() error {
	if s.done {
		return nil
	}
	s.done = true
	s.f.Close()
	return os.Remove(s.f.Name())
}
