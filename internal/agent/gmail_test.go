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

// endingConn's Scan fails with err, as a session the server ended.
type endingConn struct{ err error }

func (c endingConn) Scan(context.Context, mailbox.Cursor) (*mailbox.Scan, error) { return nil, c.err }
func (c endingConn) Fetch(context.Context, []mailbox.Item, func(mailbox.Item, io.Reader) error) error {
	return nil
}
func (c endingConn) Ack(context.Context, []mailbox.Item, mailbox.After) error { return nil }
func (c endingConn) Close() error                                             { return nil }

type endingDialer struct{ err error }

func (d endingDialer) Dial(context.Context) (mailbox.Conn, error) { return endingConn(d), nil }

// TestSupervisorServerAnswers: the connection cap (an error with Wait)
// makes the next attempt wait at least that long, counted as a failure;
// a routine end of session (Reconnect) reconnects at once and is no
// failure.
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
		{"session expired", endingDialer{expired}, 0, true, 0},
		{"other failure", refusingDialer{errors.New("boom")}, 0, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(0)
			m, l, _, _ := setup(t, srv, "seen")
			m.Dialer = tt.dialer
			s := &Supervisor{Mailboxes: []*Mailbox{m}, Ledger: l, status: map[string]*Status{m.Name: {Mailbox: m.Name}}}
			s.Log = slog.New(slog.DiscardHandler)
			stop := make(chan struct{})
			pause := s.session(t.Context(), stop, nil, m, time.Hour)
			if pause < tt.minPause || tt.zeroPause != (pause == 0) {
				t.Errorf("pause %v, want at least %v (zero: %v)", pause, tt.minPause, tt.zeroPause)
			}
			if f := s.Statuses()[0].Failures; f != tt.wantFailures {
				t.Errorf("failures %d, want %d", f, tt.wantFailures)
			}
		})
	}
}
