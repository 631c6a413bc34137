// Command idle is the many-mailboxes benchmark: one `mailgate serve` (the
// binary) holds -n IMAP IDLE mailboxes of one host name, the emulated
// Exchange Online (go-imap's in-memory server with XOAUTH2, in this
// process), and it prints:
//
//   - the time until every mailbox is in IDLE (the server counts them) at
//     the login rate -rate (agents.login_rate);
//
//   - serve's RSS per mailbox: its whole RSS divided by -n, and the growth
//     over a serve holding one mailbox divided by -n - 1;
//
//   - new-mail-to-sink latency p50/p99/max: -hits messages, one at a time,
//     each into a random mailbox, timed from the append on the server to
//     the file in the maildir (whose writes are synced);
//
//   - the token-endpoint requests (one profile: want 1).
//
// Usage:
//
//	go run ./bench/idle [-n 10000] [-rate 500] [-hits 300] [-dir DIR]
//
// This process (the server's ends) and serve (the clients') each need
// about n open files; it raises its soft limit to the hard one, which
// serve inherits.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mailgate/mailgate/internal/emulator"
)

func main() {
	n := flag.Int("n", 10000, "IDLE mailboxes")
	rate := flag.Int("rate", 500, "agents.login_rate: logins per second to the host")
	hits := flag.Int("hits", 300, "messages timed from server to sink, one at a time")
	dir := flag.String("dir", os.TempDir(), "where the working directory is made")
	flag.Parse()
	log.SetFlags(0)
	if err := run(*n, *rate, *hits, *dir); err != nil {
		log.Fatal(err)
	}
}

func run(n, rate, hits int, dir string) (err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur < uint64(n+500) {
		return fmt.Errorf("the open file limit is %d; %d mailboxes need about %d", lim.Cur, n, n+500)
	}
	work, err := os.MkdirTemp(dir, "mailgate-bench-idle-")
	if err != nil {
		return err
	}
	defer func() {
		if err == nil {
			os.RemoveAll(work)
		}
	}()
	bin := filepath.Join(work, "mailgate")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/mailgate").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	ctx := context.Background()
	srv, err := emulator.Start(ctx, emulator.Options{IMAPListen: "127.0.0.1:0"})
	if err != nil {
		return err
	}
	defer srv.Close()
	boxes, err := srv.AddDemoMailboxes(n)
	if err != nil {
		return err
	}

	// the reference: serve holding one mailbox
	base, err := startServe(srv, bin, filepath.Join(work, "one"), boxes[:1], rate)
	if err != nil {
		return err
	}
	if err := waitIdle(srv, 1, base); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	rss1 := rss(base.Process.Pid)
	if err := stop(base); err != nil {
		return err
	}
	for srv.IMAPIdling() != 0 {
		time.Sleep(10 * time.Millisecond)
	}

	tokens := srv.TokenRequests()
	wd := filepath.Join(work, "many")
	start := time.Now()
	cmd, err := startServe(srv, bin, wd, boxes, rate)
	if err != nil {
		return err
	}
	defer cmd.Process.Kill()
	if err := waitIdle(srv, n, cmd); err != nil {
		return err
	}
	allIdle := time.Since(start)
	time.Sleep(5 * time.Second) // let the start-up garbage be collected
	rssN := rss(cmd.Process.Pid)

	inbox := filepath.Join(wd, "inbox", "new")
	lat := make([]time.Duration, 0, hits)
	for k := range hits {
		b := boxes[rand.N(n)]
		t0 := time.Now()
		if _, err := srv.IMAPDeliver(b, fmt.Appendf(nil, "Message-ID: <idle-%d@bench>\r\nSubject: %d\r\n\r\nbody\r\n", k, k)); err != nil {
			return err
		}
		for {
			es, _ := os.ReadDir(inbox)
			if len(es) > k {
				break
			}
			if time.Since(t0) > time.Minute {
				return fmt.Errorf("message %d not in the sink after a minute", k)
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(t0))
	}
	rssAfter := rss(cmd.Process.Pid)
	if err := stop(cmd); err != nil {
		return err
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(time.Millisecond)
	}
	fmt.Printf("mailboxes            %d on one host, login rate %d/s\n", n, rate)
	fmt.Printf("all in IDLE after    %v\n", allIdle.Round(100*time.Millisecond))
	fmt.Printf("RSS                  %.1f MiB (one mailbox: %.1f MiB; after the messages: %.1f MiB)\n", mib(rssN), mib(rss1), mib(rssAfter))
	fmt.Printf("RSS per mailbox      %.1f KiB whole, %.1f KiB over one mailbox's serve\n",
		float64(rssN)/1024/float64(n), float64(rssN-rss1)/1024/float64(max(n-1, 1)))
	fmt.Printf("new mail to sink     p50 %v  p99 %v  max %v (%d messages, one at a time)\n", pct(0.50), pct(0.99), lat[len(lat)-1].Round(time.Millisecond), hits)
	fmt.Printf("token requests       %d\n", srv.TokenRequests()-tokens)
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// startServe writes a configuration serving boxes in IDLE into dir and
// starts `mailgate serve` there.
func startServe(srv *emulator.Server, bin, dir string, boxes []string, rate int) (*exec.Cmd, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	host, port, _ := strings.Cut(srv.IMAPAddr(), ":")
	var cfg strings.Builder
	cfg.Write(srv.ConfigYAML())
	fmt.Fprintf(&cfg, "listen: 127.0.0.1:0\nagents: {login_rate: %d}\nsinks:\n  - {name: out, type: maildir, path: ./inbox}\nmailboxes:\n", rate)
	for i, b := range boxes {
		fmt.Fprintf(&cfg, "  - {name: mb%d, protocol: imap, host: %s, port: %s, security: tls, tls_ca: '%s', username: %s, profile: emulator-cert, mode: idle, after: seen, sink: out}\n",
			i, host, port, srv.CAFile(), b)
	}
	if err := os.WriteFile(filepath.Join(dir, "mailgate.yaml"), []byte(cfg.String()), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "MAILGATE_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	return cmd, cmd.Start()
}

// waitIdle waits until n sessions are in IDLE, or serve has exited (a
// zombie has no VmRSS).
func waitIdle(srv *emulator.Server, n int, cmd *exec.Cmd) error {
	for srv.IMAPIdling() < n {
		if rss(cmd.Process.Pid) == 0 {
			return fmt.Errorf("serve exited; see serve.log in %s", cmd.Dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

func stop(cmd *exec.Cmd) error {
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// rss is a process's resident set in bytes (VmRSS in /proc/PID/status).
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
