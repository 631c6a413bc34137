package emulator

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Fault makes the emulator misbehave like an overloaded or failing
// identity platform.
type Fault struct {
	// Status is the HTTP status to answer instead of handling the request
	// (429, 500, 503, …); 0 only delays.
	Status int `json:"status"`
	// RetryAfter is sent as Retry-After (whole seconds) when positive.
	RetryAfter time.Duration `json:"retry_after"`
	// PlainText makes the body "Too Many Requests"-style text rather than
	// JSON, as Entra's throttling front end sometimes answers.
	PlainText bool `json:"plain_text"`
	// Delay holds the answer back this long first.
	Delay time.Duration `json:"delay"`
	// Count is how many requests the fault applies to; 0 until cleared.
	Count int `json:"count"`
	// Route limits the fault to "token", "devicecode", "authorize" or
	// "discovery"; "" applies it to all of them.
	Route string `json:"route"`
}

// InjectFault adds a fault; faults apply in the order injected.
func (s *Server) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := f
	s.faults = append(s.faults, &c)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// takeFault returns the first fault for route and uses it up once.
func (s *Server) takeFault(route string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.Route != "" && f.Route != route {
			continue
		}
		c := *f
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
		}
		return &c
	}
	return nil
}

// applyFault delays and/or answers r per the active fault; it reports
// whether the request was answered.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, route string) bool {
	f := s.takeFault(route)
	if f == nil {
		return false
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return true
		}
	}
	if f.Status == 0 {
		return false
	}
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((f.RetryAfter+time.Second-1)/time.Second)))
	}
	s.log.Info("emulator: fault", "path", r.URL.Path, "status", f.Status)
	if f.PlainText {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(f.Status)
		fmt.Fprint(w, http.StatusText(f.Status))
		return true
	}
	e := newAAD(f.Status, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.")
	switch {
	case f.Status == http.StatusTooManyRequests:
		e = newAAD(f.Status, "temporarily_unavailable", 50196, "The server terminated an operation because it encountered a client request loop. Please contact your app vendor.")
	case f.Status < 500:
		e = newAAD(f.Status, "invalid_request", 90033, "%s", http.StatusText(f.Status))
	}
	s.writeAAD(w, r, e)
	return true
}
