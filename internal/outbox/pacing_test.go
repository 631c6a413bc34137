package outbox

import (
	"errors"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtp"
)

// TestGatesTurn: turns on one key are spaced (a lower bound only), a turn
// further than the caller's patience is refused with the wait and not
// taken, and a throttling answer pauses the mailbox for everyone.
func TestGatesTurn(t *testing.T) {
	t.Parallel()
	var gs Gates
	key := PaceKey("Scanner@Contoso.com", "smtp.office365.com")
	if key != PaceKey("scanner@contoso.com ", "SMTP.office365.com") {
		t.Fatalf("PaceKey is not case-insensitive: %q", key)
	}
	const every = 200 * time.Millisecond
	start := time.Now()
	for range 3 {
		done, err := gs.Turn(t.Context(), key, every, time.Minute, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		done(nil)
	}
	if el := time.Since(start); el < 2*every {
		t.Errorf("3 turns took %v, want at least %v", el, 2*every)
	}

	// a turn a minute away is refused at once to a caller who waits 1 s
	slow := PaceKey("slow@contoso.com", "smtp.office365.com")
	done, err := gs.Turn(t.Context(), slow, time.Minute, time.Second, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	done(nil)
	_, err = gs.Turn(t.Context(), slow, time.Minute, time.Second, time.Second)
	var pe *PacedError
	if !errors.As(err, &pe) || pe.Why != "paced" || pe.Wait < 30*time.Second || pe.Wait > time.Minute {
		t.Fatalf("second turn within a minute: %v, want a *PacedError paced about 1m", err)
	}

	// a throttling answer pauses the mailbox, whatever the spacing
	th := PaceKey("throttled@contoso.com", "smtp.office365.com")
	done, err = gs.Turn(t.Context(), th, 0, time.Minute, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	done(&smtp.Error{Code: 451, Enhanced: "4.3.2", Message: "too many"})
	if g := gs.get(th); g.throttles != 1 {
		t.Errorf("throttles = %d after a 451 4.3.2, want 1", g.throttles)
	}
	_, err = gs.Turn(t.Context(), th, 0, 0, 0)
	if !errors.As(err, &pe) || pe.Why != stateThrottled {
		t.Fatalf("turn after a throttling answer: %v, want a *PacedError throttled", err)
	}

	// a refusal that is not throttling does not pause
	other := PaceKey("refused@contoso.com", "smtp.office365.com")
	done, _ = gs.Turn(t.Context(), other, 0, time.Minute, time.Minute)
	done(&smtp.Error{Code: 550, Enhanced: "5.7.1", Message: "no"})
	if done, err = gs.Turn(t.Context(), other, 0, 0, 0); err != nil {
		t.Fatalf("turn after a 550: %v", err)
	}
	done(nil)
}

// TestGatesShareSenderLane: an outbox sender with a Pace key paces with
// the gate a proxy's turns take, its rate spacing them too.
func TestGatesShareSenderLane(t *testing.T) {
	t.Parallel()
	var gs Gates
	key := PaceKey("shared@contoso.com", "smtp.office365.com")
	w := &Worker{Gates: &gs}
	l := w.newLane(t.Context(), &Sender{Name: "s", Rate: 1, Pace: key})
	if l.g != gs.get(key) {
		t.Fatal("the sender's lane does not use the shared gate")
	}
	own := w.newLane(t.Context(), &Sender{Name: "own", Rate: 1})
	if own.g == gs.get(key) {
		t.Fatal("a sender without a Pace key shares a gate")
	}
	// the sender's rate (1 a minute) spaces a proxy turn that asks for none
	done, err := gs.Turn(t.Context(), key, 0, time.Second, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	done(nil)
	_, err = gs.Turn(t.Context(), key, 0, time.Second, time.Second)
	var pe *PacedError
	if !errors.As(err, &pe) || pe.Wait < 30*time.Second {
		t.Fatalf("second turn: %v, want paced by the sender's rate (about 1m)", err)
	}
	// and the outbox's own wait sees the turn the proxy took
	if time.Until(l.g.next) < 30*time.Second {
		t.Errorf("the outbox's next turn is in %v, want about 1m", time.Until(l.g.next))
	}
}
