package app

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/store"
)

// runLeases are the mailbox leases `mailgate run` holds while it reads
// them, so that it and a serve (or another run) never serve one mailbox at
// once: a mailbox whose lease another holds is skipped. They are renewed
// every third of agents.lease; if renewing fails for too long the runs are
// cancelled before the leases could expire, and the ledger writes are
// fenced as serve's are.
type runLeases struct {
	st     *store.Store
	id     string
	ttl    time.Duration
	fences map[string]*store.Fence // by mailbox: the leases taken
}

// takeRunLeases acquires each mailbox's lease; servedBy names the holder
// of each one taken by someone else.
func takeRunLeases(ctx context.Context, st *store.Store, cfg *config.Config, boxes []*config.Mailbox) (rl *runLeases, servedBy map[string]string, err error) {
	rl = &runLeases{st: st, id: newInstanceID("run"), ttl: leaseTTL(cfg), fences: map[string]*store.Fence{}}
	servedBy = map[string]string{}
	for _, m := range boxes {
		epoch, ok, err := st.AcquireLease(ctx, m.Name, rl.id, rl.ttl)
		if err != nil {
			rl.release()
			return nil, nil, err
		}
		if ok {
			rl.fences[m.Name] = &store.Fence{Owner: rl.id, Epoch: epoch}
			continue
		}
		owner, held, err := st.LeaseHolder(ctx, m.Name)
		if err != nil {
			rl.release()
			return nil, nil, err
		}
		if held && deadRun(owner) {
			// a run of this host that was killed: its lease would keep
			// the mailbox from being read until it expired
			if epoch, ok, err = st.StealLease(ctx, m.Name, owner, rl.id, rl.ttl); err != nil {
				rl.release()
				return nil, nil, err
			}
			if ok {
				rl.fences[m.Name] = &store.Fence{Owner: rl.id, Epoch: epoch}
				continue
			}
		}
		if !held { // released in between: it would be free next time
			owner = "another instance"
		}
		servedBy[m.Name] = owner
	}
	return rl, servedBy, nil
}

// deadRun reports whether owner is a `mailgate run` of this host whose
// process no longer exists.
func deadRun(owner string) bool {
	rest, ok := strings.CutPrefix(owner, "run-"+hostname()+"-")
	if !ok {
		return false
	}
	pidText, _, _ := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return true
	}
	return errors.Is(p.Signal(syscall.Signal(0)), os.ErrProcessDone)
}

// fence is the ledger's fence of a mailbox.
func (rl *runLeases) fence(mailbox string) *store.Fence { return rl.fences[mailbox] }

// keep renews the leases until ctx ends; when no renewal worked for ttl
// minus a fifth, it calls abort (the runs stop at once).
func (rl *runLeases) keep(ctx context.Context, abort context.CancelFunc) {
	watchdog := time.AfterFunc(rl.ttl-rl.ttl/5, abort)
	defer watchdog.Stop()
	every(ctx, rl.ttl/3, func() {
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, rl.ttl/3)
		_, err := rl.st.RenewLeases(rctx, rl.id, rl.ttl)
		cancel()
		if err == nil {
			watchdog.Reset(time.Until(start.Add(rl.ttl - rl.ttl/5)))
		}
	})
}

// release gives the leases up.
func (rl *runLeases) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = rl.st.ReleaseLeases(ctx, rl.id)
}

// runLeased runs fn with the leases kept, then releases them.
func (rl *runLeases) runLeased(ctx context.Context, fn func(ctx context.Context)) {
	runCtx, abort := context.WithCancel(ctx)
	defer abort()
	var wg sync.WaitGroup
	keepCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	wg.Go(func() { rl.keep(keepCtx, abort) })
	fn(runCtx)
	stop()
	wg.Wait()
	rl.release()
}
