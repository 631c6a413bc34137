package config

import (
	"fmt"
	"log/slog"
	"time"
)

const redacted = "[redacted]"

// Secret is a secret value from the configuration: a client secret, a
// password, a webhook signing key. It prints, logs and marshals as
// "[redacted]"; only Reveal gives the value.
type Secret struct {
	v string
}

// NewSecret wraps s (for tests and for records built outside a file).
func NewSecret(s string) Secret { return Secret{v: s} }

// Reveal returns the secret value. Call it only where the value is used.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty (not configured).
func (s Secret) IsZero() bool { return s.v == "" }

// String returns a redaction (empty when the secret is not set, so that a
// missing secret is visible).
func (s Secret) String() string {
	if s.v == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// Format makes every fmt verb print the redaction.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(s.String()))
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler (and so JSON and YAML).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// Duration is a time.Duration written in Go syntax ("60s", "5m", "1h30m").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats the duration in Go syntax.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Date is a calendar date written YYYY-MM-DD. The zero Date means "not set".
type Date struct {
	time.Time
}

// DateLayout is how dates are written in the configuration.
const DateLayout = "2006-01-02"

// String formats the date as YYYY-MM-DD ("" when not set).
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return d.Format(DateLayout)
}

// MarshalJSON writes the date as "YYYY-MM-DD" (not time.Time's timestamp).
func (d Date) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// MarshalText implements encoding.TextMarshaler.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }
