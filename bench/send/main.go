// Command send is the outgoing-mail benchmark: 1,000 messages through
// Dovecot's submission service with XOAUTH2, sent by `mailgate send` (one
// process, one connection reused) and by Debian's msmtp with
// `passwordeval "mailgate token PROFILE"` and `auth xoauth2`, one process
// per message as a password-command user runs it, same server, same run.
//
// With -outbox, the same messages also go through the durable outbox of a
// running `mailgate serve`: `mailgate send` queues them (and wakes serve),
// and the time runs until the store records the last one sent. It is
// printed against the direct send and against msmtp.
//
// With -store postgres, serve's store is a private PostgreSQL started for
// the run with its durable defaults (fsync and synchronous_commit on).
//
//	go run ./bench/send [-n 1000] [-peer-n 200] [-outbox] [-max-connections 1] [-rounds 3] [-store sqlite|postgres] [-store-dir DIR]
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"log"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mailgate/mailgate/internal/dovecot"
	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/pgtest"
	"github.com/mailgate/mailgate/internal/store"
)

func main() {
	if err := run(); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

// run does the work; a failure unwinds through the deferred cleanups
// (emulator, Dovecot, temporary files), so nothing is left running.
func run() (err error) {
	defer func() {
		if r := recover(); r != nil {
			be, ok := r.(benchErr)
			if !ok {
				panic(r)
			}
			err = be.err
		}
	}()
	n := flag.Int("n", 1000, "messages sent by mailgate")
	peerN := flag.Int("peer-n", 200, "messages sent by msmtp (one process each)")
	viaOutbox := flag.Bool("outbox", false, "also send the messages through a running serve's outbox")
	conns := flag.Int("max-connections", 1, "the sender's max_connections (outbox)")
	storeDir := flag.String("store-dir", "", "with -outbox: keep serve's SQLite store in this directory (e.g. /dev/shm, where a commit's fsync costs nothing: an experiment to isolate that cost, not a durable setup)")
	storeKind := flag.String("store", "sqlite", "with -outbox: serve's store, sqlite or postgres (a private durable PostgreSQL 15 started for the run)")
	rounds := flag.Int("rounds", 3, "with -outbox: alternate the direct send and the outbox this many times, each phase against an emptied mailbox (the ratio of each round and their median are printed)")
	flag.Parse()
	log.SetFlags(0)
	ctx := context.Background()
	work, err := os.MkdirTemp("", "mailgate-bench-send-")
	check(err)
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "mailgate")
	build := exec.Command("go", "build", "-o", bin, "./cmd/mailgate")
	build.Stderr = os.Stderr
	check(build.Run())
	emu, err := emulator.Start(ctx, emulator.Options{Dir: filepath.Join(work, "emulator")})
	check(err)
	defer emu.Close()
	dv, err := dovecot.Start(ctx, dovecot.Options{CheckURL: emu.HTTPURL(), Relay: true})
	check(err)
	defer dv.Stop()
	host, port, _ := strings.Cut(dv.Addr("submission"), ":")
	cfgPath := filepath.Join(work, "mailgate.yaml")
	dbPath := filepath.Join(work, "mailgate.db")
	if *storeDir != "" {
		d, err := os.MkdirTemp(*storeDir, "mailgate-bench-store-")
		check(err)
		defer os.RemoveAll(d)
		dbPath = filepath.Join(d, "mailgate.db")
	}
	storeURL := "sqlite:" + dbPath
	switch *storeKind {
	case "sqlite":
	case "postgres":
		pgDir := filepath.Join(work, "postgres")
		check(os.Mkdir(pgDir, 0o700))
		pg, err := pgtest.LaunchDurable(ctx, pgDir)
		check(err)
		defer pg.Stop()
		storeURL, err = pg.CreateDatabase(ctx, "mailgate")
		check(err)
	default:
		fatalf("-store %q: want sqlite or postgres", *storeKind)
	}
	// the emulator's config names the store; point it at ours
	base := regexp.MustCompile(`(?m)^store:.*$`).ReplaceAll(emu.ConfigYAML(), []byte("store: '"+storeURL+"'"))
	check(os.WriteFile(cfgPath, append(base, fmt.Sprintf("listen: 127.0.0.1:0\nsenders:\n  - {name: noreply, protocol: smtp, host: %s, port: %s, security: starttls, tls_ca: '%s', sasl: xoauth2, username: %s, profile: emulator-secret, max_connections: %d}\n",
		host, port, dv.CAFile(), emulator.DemoSenderMailbox, *conns)...), 0o600))
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work, "MAILGATE_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 32))}

	msg := func(who string, i int) string {
		return fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s %d\r\nMessage-ID: <%s-%d@mailgate.test>\r\n\r\n%s\r\n",
			emulator.DemoSenderMailbox, emulator.DemoSharedMailbox, who, i, who, i, strings.Repeat("report line 0123456789\r\n", 100))
	}
	var files []string
	for i := range *n {
		f := filepath.Join(work, fmt.Sprintf("mg-%04d.eml", i))
		check(os.WriteFile(f, []byte(msg("mailgate", i)), 0o600))
		files = append(files, f)
	}
	// warm the token cache as a password-command user's first call would
	warm := exec.Command(bin, "token", "emulator-secret", "--config", cfgPath)
	warm.Env = env
	if out, err := warm.CombinedOutput(); err != nil {
		fatalf("mailgate token: %v\n%s", err, out)
	}

	if !*viaOutbox || *rounds < 1 {
		*rounds = 1
	}
	// With -outbox, direct and outbox alternate, so that both see the same
	// load on a shared machine; each round's ratio is its own. Each phase
	// starts against the same empty mailbox: Dovecot's delivery slows as
	// the recipient's maildir grows (4.8 s, then 6.5 s, then 9.4 s for the
	// same 1,000 direct sends when each phase added its 1,000), so a phase
	// run after another would pay for the one before. The order within a
	// round swaps from one round to the next for the same reason.
	direct := func() time.Duration {
		t0 := time.Now()
		cmd := exec.Command(bin, append([]string{"send", "--sender", "noreply", "--config", cfgPath}, files...)...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			fatalf("mailgate send: %v\n%s", err, out)
		}
		return time.Since(t0)
	}
	var mgs, obs []time.Duration
	for r := range *rounds {
		if !*viaOutbox {
			mgs = append(mgs, direct())
			break
		}
		if r%2 == 0 {
			mgs = append(mgs, direct())
			drain(dv, "direct", *n)
			obs = append(obs, outbox(ctx, bin, cfgPath, storeURL, work, env, files))
			drain(dv, "outbox", *n)
		} else {
			obs = append(obs, outbox(ctx, bin, cfgPath, storeURL, work, env, files))
			drain(dv, "outbox", *n)
			mgs = append(mgs, direct())
			drain(dv, "direct", *n)
		}
	}
	mg := median(mgs)

	rc := filepath.Join(work, "msmtprc")
	check(os.WriteFile(rc, []byte(fmt.Sprintf(`defaults
tls on
tls_starttls on
tls_trust_file %s
logfile %s
account bench
host %s
port %s
auth xoauth2
user %s
from %s
passwordeval "%s token emulator-secret --config %s"
account default : bench
`, dv.CAFile(), filepath.Join(work, "msmtp.log"), host, port, emulator.DemoSenderMailbox, emulator.DemoSenderMailbox, bin, cfgPath)), 0o600))
	t0 := time.Now()
	peerErr := ""
	for i := range *peerN {
		m := exec.Command("msmtp", "-C", rc, "-t")
		m.Env = env
		m.Stdin = strings.NewReader(msg("msmtp", i))
		if out, err := m.CombinedOutput(); err != nil {
			peerErr = fmt.Sprintf("%v: %s", err, strings.TrimSpace(string(out)))
			break
		}
	}
	peer := time.Since(t0)

	deadline := time.Now().Add(60 * time.Second)
	want := *peerN
	if !*viaOutbox {
		want += *n
	}
	if peerErr != "" {
		want = 0
	}
	for {
		got, _ := dv.Messages(emulator.DemoSharedMailbox, "")
		if len(got) >= want || time.Now().After(deadline) {
			fmt.Printf("send %d messages over submission (STARTTLS, XOAUTH2) into Dovecot %s; %d arrived after the last phase%s\n", *n, dovecotVersion(), len(got), drained(*viaOutbox, *n))
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	mgRate := float64(*n) / mg.Seconds()
	fmt.Printf("  mailgate send (1 process, 1 connection): %7.0f msgs/s  (%.2f s%s)\n", mgRate, mg.Seconds(), medianOf(*rounds))
	if peerErr != "" {
		fmt.Printf("  msmtp %s: failed: %s\n", msmtpVersion(), peerErr)
		return
	}
	peerRate := float64(*peerN) / peer.Seconds()
	fmt.Printf("  msmtp %s (1 process per message, %d msgs): %6.0f msgs/s  (%.2f s)\n", msmtpVersion(), *peerN, peerRate, peer.Seconds())
	fmt.Printf("  ratio: %.1f  (goal >= 5)\n", mgRate/peerRate)
	if *viaOutbox {
		ob := median(obs)
		obRate := float64(*n) / ob.Seconds()
		fmt.Printf("  outbox of a running serve (queued by mailgate send, max_connections %d, store %s): %7.0f msgs/s  (%.2f s%s)\n", *conns, *storeKind, obRate, ob.Seconds(), medianOf(*rounds))
		var ratios []float64
		for i := range mgs {
			ratios = append(ratios, mgs[i].Seconds()/obs[i].Seconds())
			fmt.Printf("  round %d: direct %.2f s, outbox %.2f s, outbox / direct %.2f\n", i+1, mgs[i].Seconds(), obs[i].Seconds(), ratios[i])
		}
		slices.Sort(ratios)
		fmt.Printf("  outbox / direct send: %.2f  (goal >= 0.9%s)\n", ratios[len(ratios)/2], medianOf(*rounds))
		fmt.Printf("  outbox / msmtp: %.1f  (goal >= 10)\n", obRate/peerRate)
	}
	fmt.Printf("  token endpoint calls: %d\n", emu.TokenRequests())
	return nil
}

// outbox starts `mailgate serve`, queues files with `mailgate send` (which
// finds serve running and hands them to its outbox) and returns the time
// from the start of the send to the store recording the last one sent.
func outbox(ctx context.Context, bin, cfgPath, storeURL, work string, env, files []string) time.Duration {
	serve := exec.Command(bin, "serve", "--config", cfgPath)
	serve.Env = env
	logs, err := os.Create(filepath.Join(work, "serve.log"))
	check(err)
	defer logs.Close()
	serve.Stdout, serve.Stderr = logs, logs
	check(serve.Start())
	defer func() { _ = serve.Process.Signal(syscall.SIGTERM); _ = serve.Wait() }()
	st, err := store.Open(ctx, storeURL, &store.Options{Key: make([]byte, 32)})
	check(err)
	defer st.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if up, _ := st.ServeRunning(ctx, 10*time.Second); up {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(work, "serve.log"))
			fatalf("serve did not start:\n%s", b)
		}
	}
	before, err := st.OutboxCounts(ctx)
	check(err)
	t0 := time.Now()
	cmd := exec.Command(bin, append([]string{"send", "--sender", "noreply", "--config", cfgPath}, files...)...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "queued") {
		fatalf("mailgate send through serve: %v\n%s", err, out)
	}
	queued := time.Since(t0)
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		c, err := st.OutboxCounts(ctx)
		check(err)
		if c[store.OutboxSent]-before[store.OutboxSent] >= len(files) {
			break
		}
		if c[store.OutboxFailed] > before[store.OutboxFailed] || time.Now().After(deadline) {
			fatalf("outbox: %v after %v", c, time.Since(t0))
		}
	}
	d := time.Since(t0)
	fmt.Printf("  (outbox: %d messages queued in %.2f s, all sent after %.2f s)\n", len(files), queued.Seconds(), d.Seconds())
	return d
}

// drain checks that a phase delivered each of its n messages exactly once
// (by Message-ID) into the shared mailbox and removes the mailbox, so the
// next phase starts where this one did. Removing only the messages is not
// enough: LMTP delivery never syncs away what was removed behind its back,
// so Dovecot's index, cache and uidlist keep growing, and the next
// delivery creates the maildir anew.
func drain(dv *dovecot.Server, phase string, n int) {
	got, err := dv.Messages(emulator.DemoSharedMailbox, "")
	check(err)
	ids := map[string]int{}
	for _, raw := range got {
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		check(err)
		ids[m.Header.Get("Message-ID")]++
	}
	if len(got) != n || len(ids) != n {
		fatalf("%s: %d messages arrived with %d Message-IDs, want %d once each", phase, len(got), len(ids), n)
	}
	check(os.RemoveAll(dv.MailboxDir(emulator.DemoSharedMailbox)))
}

func drained(viaOutbox bool, n int) string {
	if !viaOutbox {
		return ""
	}
	return fmt.Sprintf(" (every phase's %d arrived once each, then removed)", n)
}

// median is the middle of ds (the upper one of an even count).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianOf(rounds int) string {
	if rounds < 2 {
		return ""
	}
	return fmt.Sprintf("; median of %d rounds", rounds)
}

func msmtpVersion() string {
	b, _ := exec.Command("msmtp", "--version").Output()
	first, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimPrefix(strings.TrimSpace(first), "msmtp version ")
}

func dovecotVersion() string {
	b, _ := exec.Command("/usr/sbin/dovecot", "--version").Output()
	return strings.TrimSpace(string(b))
}

// benchErr carries a failure up to run, past the deferred cleanups.
type benchErr struct{ err error }

func fatalf(format string, a ...any) { panic(benchErr{fmt.Errorf(format, a...)}) }

func check(err error) {
	if err != nil {
		panic(benchErr{err})
	}
}
