package e2e

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// maildirProgress counts the files under a maildir's tmp/ and new/: it grows
// while messages are written (tmp/) and when a batch is committed (new/).
func maildirProgress(dir string) int {
	n := 0
	for _, sub := range []string{"tmp", "new"} {
		f, err := os.Open(filepath.Join(dir, sub))
		if err != nil {
			continue
		}
		names, _ := f.Readdirnames(-1)
		f.Close()
		n += len(names)
	}
	return n
}

// killMidRun runs `mailgate run --once` in dir again and again, killing it
// with SIGKILL at a random moment each time, until want kills landed while
// messages were being delivered (or the attempts run out). Kill moments are
// tied to observed progress, not to wall time, so they land mid-delivery on
// a fast machine as on a slow one: one attempt in four is killed during
// start-up (token, login, first fetch); the others after 1–60 more files
// appeared in the maildir inbox, which hits writes, syncs, ledger updates
// and acknowledgements alike. It returns how many kills landed mid-delivery.
func killMidRun(t *testing.T, dir, inbox string, want int) int {
	t.Helper()
	landed := 0
	for attempt := 0; attempt < 6*want && landed < want; attempt++ {
		cmd := exec.Command(mailgateBin, "run", "--once")
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "MAILGATE_KEY=" + testKey}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		early := attempt%4 == 3
		start := maildirProgress(inbox)
		target := start + 1 + rand.IntN(60)
		deadline := time.After(time.Duration(5+rand.IntN(60)) * time.Millisecond)
		tick := time.NewTicker(time.Millisecond)
	wait:
		for {
			select {
			case <-done: // finished before the kill
				tick.Stop()
				t.Logf("attempt %d: run finished before its kill", attempt)
				return landed
			case <-deadline:
				if early {
					break wait
				}
			case <-tick.C:
				if !early && maildirProgress(inbox) >= target {
					break wait
				}
			}
		}
		tick.Stop()
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		if !early {
			landed++
		}
	}
	return landed
}
