package proxy

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// PasswordCost is the bcrypt cost of local passwords: a few milliseconds
// a login on a current core (bench/proxy measures it), where
// email-oauth2-proxy's 1.2 million PBKDF2 rounds take 0.6 s. The password
// guards a listener that is throttled per (account, address), not a file
// an attacker can test offline at leisure.
const PasswordCost = 6

// MaxPasswordLen is the longest local password (bcrypt reads 72 bytes).
const MaxPasswordLen = 72

// HashPassword returns the bcrypt hash of a local password.
func HashPassword(password string) (string, error) {
	if len(password) > MaxPasswordLen {
		return "", fmt.Errorf("proxy: a local password is at most %d bytes", MaxPasswordLen)
	}
	if password == "" {
		return "", errors.New("proxy: a local password must not be empty")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), PasswordCost)
	if err != nil {
		return "", fmt.Errorf("proxy: hash password: %w", err)
	}
	return string(h), nil
}

// dummyHash is compared against when there is no account, so that an
// unknown name costs as long as a wrong password.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("mailgate: no such account"), PasswordCost)
	return h
})

// CheckPassword reports whether password matches hash (from
// HashPassword), in constant time; an empty hash (no account) is compared
// against a dummy so that it takes as long, and never matches.
func CheckPassword(hash, password string) bool {
	if hash == "" {
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// IsHash says s is a hash HashPassword made (a bcrypt hash), not a
// password.
func IsHash(s string) bool {
	_, err := bcrypt.Cost([]byte(s))
	return err == nil
}

// Throttle counts failed logins per (account, remote address): after Max
// failures within Window, further logins of that pair are refused until
// the window since the last failure has passed. Safe for concurrent use;
// one Throttle may serve every listener.
type Throttle struct {
	Max    int
	Window time.Duration
	now    func() time.Time
	mu     sync.Mutex
	fails  map[[2]string]*failures
}

type failures struct {
	n    int
	last time.Time
}

// Throttle defaults.
const (
	DefaultMaxFailures   = 5
	DefaultFailureWindow = 15 * time.Minute
)

// NewThrottle returns a Throttle; 0 means the default (5 failures, 15
// minutes).
func NewThrottle(max int, window time.Duration) *Throttle {
	if max <= 0 {
		max = DefaultMaxFailures
	}
	if window <= 0 {
		window = DefaultFailureWindow
	}
	return &Throttle{Max: max, Window: window, now: time.Now, fails: map[[2]string]*failures{}}
}

// Allow says whether account may try to log in from remote now.
func (t *Throttle) Allow(account, remote string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, ok := t.fails[[2]string{account, remote}]
	if !ok {
		return true
	}
	if t.now().Sub(f.last) > t.Window {
		delete(t.fails, [2]string{account, remote})
		return true
	}
	return f.n < t.Max
}

// Failed counts a failed login.
func (t *Throttle) Failed(account, remote string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.fails) > 100000 { // a flood of names: forget the stale ones
		for k, f := range t.fails {
			if now.Sub(f.last) > t.Window {
				delete(t.fails, k)
			}
		}
	}
	k := [2]string{account, remote}
	f := t.fails[k]
	if f == nil || now.Sub(f.last) > t.Window {
		f = &failures{}
		t.fails[k] = f
	}
	f.n++
	f.last = now
}

// Succeeded forgets the pair's failures.
func (t *Throttle) Succeeded(account, remote string) {
	t.mu.Lock()
	delete(t.fails, [2]string{account, remote})
	t.mu.Unlock()
}
