package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/mailbox"
)

// refusingDialer fails every Dial with err.
type refusingDialer struct{ err error }

func (d refusingDialer) Dial(context.Context) (mailbox.Conn, error) { return nil, d.err }

// endingConn's first Scan finds nothing, the next fails with err, as a
// session the server ended while it idled (Wait returns at once).
type endingConn struct {
	err   error
	scans *int
}

func (c endingConn) Scan(context.Context, mailbox.Cursor) (*mailbox.Scan, error) {
	if *c.scans++; *c.scans > 1 {
		return nil, c.err
	}
	return &mailbox.Scan{}, nil
}
func (c endingConn) Wait(context.Context, time.Duration) error { return nil }
func (c endingConn) Fetch(context.Context, []mailbox.Item, func(mailbox.Item, io.Reader) error) error {
	return nil
}
func (c endingConn) Ack(context.Context, []mailbox.Item, mailbox.After) error { return nil }
func (c endingConn) Close() error                                             { return nil }

// endingDialer's connections end after one run, or at once.
type endingDialer struct {
	err  error
	once bool
}

func (d endingDialer) Dial(context.Context) (mailbox.Conn, error) {
	scans := new(int)
	if d.once {
		*scans = 1
	}
	return endingConn{err: d.err, scans: scans}, nil
}

// TestSupervisorServerAnswers: the connection cap (an error with Wait)
// makes the next attempt wait at least that long, counted as a failure;
// a routine end of session (Reconnect) after a run reconnects at once and
// is no failure.
func TestSupervisorServerAnswers(t *testing.T) {
	capped := &mailbox.Error{Mailbox: "mb", Step: mailbox.StepAuth, Temporary: true, Wait: mailbox.TooManyConnectionsWait,
		Err: errors.New("NO [ALERT] Too many simultaneous connections. (Failure)")}
	expired := &mailbox.Error{Mailbox: "mb", Step: mailbox.StepSelect, Temporary: true, Reconnect: true,
		Err: errors.New("BYE Session expired, please login again.")}
	tests := []struct {
		name         string
		dialer       mailbox.Dialer
		minPause     time.Duration
		zeroPause    bool
		wantFailures int
	}{
		{"connection cap", refusingDialer{capped}, mailbox.TooManyConnectionsWait, false, 1},
		{"session expired", endingDialer{expired, false}, 0, true, 0},
		{"session expired at once", endingDialer{expired, true}, 0, false, 1},
		{"other failure", refusingDialer{errors.New("boom")}, 0, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(0)
			m, l, _, _ := setup(t, srv, "seen")
			m.Dialer, m.Idle = tt.dialer, true
			s := &Supervisor{Mailboxes: []*Mailbox{m}, Ledger: l, status: map[string]*Status{m.Name: {Mailbox: m.Name}}}
			s.Log = slog.New(slog.DiscardHandler)
			stop := make(chan struct{})
			pause, _ := s.session(t.Context(), stop, nil, m, time.Hour)
			if pause < tt.minPause || tt.zeroPause != (pause == 0) {
				t.Errorf("pause %v, want at least %v (zero: %v)", pause, tt.minPause, tt.zeroPause)
			}
			if f := s.Statuses()[0].Failures; f != tt.wantFailures {
				t.Errorf("failures %d, want %d", f, tt.wantFailures)
			}
		})
	}
}
