// Command proxy is the legacy-client proxy's benchmark against a real
// Dovecot (IMAPS, XOAUTH2 tokens from the emulator), two figures, each a
// ratio against a reference measured in the same run:
//
//   - throughput: one `UID FETCH 1:* BODY.PEEK[]` of -n messages through
//     the proxy (the client logs in with a password; the proxy logs in
//     upstream with XOAUTH2 and relays) against the same fetch straight to
//     Dovecot with XOAUTH2. The client side is TLS in both (the proxy
//     listener uses security tls), so the proxy's cost is one more TLS
//     hop and the relay. Goal: at least 0.8.
//   - logins: -clients clients at once, each logging in with its password
//     and fetching -per messages, against the same clients straight to
//     Dovecot with XOAUTH2. Goal: at most 2 times the time.
//
// Each figure is the median of -runs runs, both sides alternating.
//
//	go run ./bench/proxy [-n 5000] [-size 5000] [-clients 20] [-per 100] [-runs 3]
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mailgate/mailgate/internal/dovecot"
	"github.com/mailgate/mailgate/internal/emulator"
	"github.com/mailgate/mailgate/internal/oauth"
	"github.com/mailgate/mailgate/internal/proxy"
	"github.com/mailgate/mailgate/internal/testcert"
)

func main() {
	if err := run(); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

type accounts map[string]struct {
	hash string
	acct *proxy.Account
}

func (a accounts) Authenticate(_ context.Context, _, user, pass string) (*proxy.Account, error) {
	e, ok := a[user]
	if !proxy.CheckPassword(e.hash, pass) || !ok {
		return nil, proxy.ErrBadCredentials
	}
	return e.acct, nil
}

func run() error {
	n := flag.Int("n", 5000, "messages in the throughput mailbox")
	size := flag.Int("size", 5000, "bytes per message")
	clients := flag.Int("clients", 20, "concurrent clients")
	per := flag.Int("per", 100, "messages each client fetches")
	runs := flag.Int("runs", 3, "runs of each side (the median is printed)")
	flag.Parse()
	log.SetFlags(0)
	ctx := context.Background()
	work, err := os.MkdirTemp("", "mailgate-bench-proxy-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	emu, err := emulator.Start(ctx, emulator.Options{Dir: work + "/emulator"})
	if err != nil {
		return err
	}
	defer emu.Close()
	dv, err := dovecot.Start(ctx, dovecot.Options{CheckURL: emu.HTTPURL()})
	if err != nil {
		return err
	}
	defer dv.Stop()
	big, small := emulator.DemoSharedMailbox, emulator.DemoInvoicesMailbox
	if err := dv.Seed(big, *n, *size); err != nil {
		return err
	}
	if err := dv.Seed(small, *per, *size); err != nil {
		return err
	}
	client, err := oauth.NewHTTPClient(oauth.HTTPOptions{CAFile: emu.CAFile()})
	if err != nil {
		return err
	}
	p := &oauth.Profile{Name: "bench", Provider: "microsoft", Grant: "client_credentials", Tenant: emulator.DemoTenantID,
		ClientID: emulator.DemoAppID, ClientSecret: emulator.DemoAppSecret, Authority: emu.URL(), HTTPClient: client,
		Scopes: []string{"https://outlook.office365.com/.default"}}
	mgr := oauth.NewManager(oauth.NewMemoryStore(), nil)
	tok, err := mgr.Token(ctx, p, nil)
	if err != nil {
		return err
	}
	accts := accounts{}
	for i := range *clients {
		user := fmt.Sprintf("client%d", i)
		h, err := proxy.HashPassword("password " + user)
		if err != nil {
			return err
		}
		accts[user] = struct {
			hash string
			acct *proxy.Account
		}{h, &proxy.Account{Username: user, Mailbox: small, Bearer: mgr.Bearer(p, nil)}}
	}
	h, _ := proxy.HashPassword("big password")
	accts["big"] = struct {
		hash string
		acct *proxy.Account
	}{h, &proxy.Account{Username: "big", Mailbox: big, Bearer: mgr.Bearer(p, nil)}}

	tc, err := testcert.New(testcert.Options{Names: []string{"127.0.0.1"}})
	if err != nil {
		return err
	}
	cert, roots := tc.ServerConfig(), tc.Pool()
	// two listeners: implicit TLS, and clear text on loopback (the
	// contract's example: a legacy client on the same machine)
	addrs := map[string]string{}
	for _, sec := range []string{"tls", "none"} {
		srv, err := proxy.New(proxy.Options{Name: "bench-" + sec, Protocol: proxy.IMAP, Security: sec, TLSConfig: cert, Accounts: accts,
			Upstream: proxy.Upstream{Addr: dv.Addr("imaps"), Security: "tls", TLSConfig: dv.TLSConfig()}})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		pctx, stop := context.WithCancel(ctx)
		defer stop()
		go srv.Serve(pctx, ln)
		addrs[sec] = ln.Addr().String()
	}
	proxyTLS := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}

	direct := func(mailbox string) (int64, error) {
		return fetchAll(dv.Addr("imaps"), dv.TLSConfig(), "a AUTHENTICATE XOAUTH2 "+proxy.XOAuth2(mailbox, tok.AccessToken))
	}
	through := func(sec, user, pass string) (int64, error) {
		tc := proxyTLS
		if sec == "none" {
			tc = nil
		}
		return fetchAll(addrs[sec], tc, fmt.Sprintf("a LOGIN %s %q", user, pass))
	}

	var bytesN int64
	fmt.Printf("proxy benchmark: %d messages of %d bytes; %d clients x %d messages; median of %d runs\n", *n, *size, *clients, *per, *runs)
	var dT, pT, cT []time.Duration
	for range *runs {
		t0 := time.Now()
		b, err := direct(big)
		if err != nil {
			return fmt.Errorf("direct: %w", err)
		}
		dT = append(dT, time.Since(t0))
		for _, sec := range []string{"tls", "none"} {
			t0 = time.Now()
			b2, err := through(sec, "big", "big password")
			if err != nil {
				return fmt.Errorf("through the proxy (%s): %w", sec, err)
			}
			if sec == "tls" {
				pT = append(pT, time.Since(t0))
			} else {
				cT = append(cT, time.Since(t0))
			}
			if b != b2 {
				return fmt.Errorf("direct read %d bytes, the proxy %d", b, b2)
			}
		}
		bytesN = b
	}
	d, pr, cl := median(dT), median(pT), median(cT)
	mib := float64(bytesN) / (1 << 20)
	fmt.Printf("UID FETCH 1:* (%.1f MiB): straight to Dovecot over TLS with XOAUTH2 %v (%.1f MiB/s)\n", mib, d.Round(time.Millisecond), mib/d.Seconds())
	fmt.Printf("  through the proxy, client on loopback in clear text (security none): %v (%.1f MiB/s): ratio %.2f (goal >= 0.8)\n",
		cl.Round(time.Millisecond), mib/cl.Seconds(), d.Seconds()/cl.Seconds())
	fmt.Printf("  through the proxy, client over TLS too (security tls, one more TLS hop): %v (%.1f MiB/s): ratio %.2f\n",
		pr.Round(time.Millisecond), mib/pr.Seconds(), d.Seconds()/pr.Seconds())

	dT, pT = nil, nil
	for range *runs {
		t0 := time.Now()
		if err := together(*clients, func(i int) (int64, error) { return direct(small) }); err != nil {
			return fmt.Errorf("direct clients: %w", err)
		}
		dT = append(dT, time.Since(t0))
		t0 = time.Now()
		if err := together(*clients, func(i int) (int64, error) {
			u := fmt.Sprintf("client%d", i)
			return through("none", u, "password "+u)
		}); err != nil {
			return fmt.Errorf("proxy clients: %w", err)
		}
		pT = append(pT, time.Since(t0))
	}
	d, pr = median(dT), median(pT)
	fmt.Printf("%d clients logging in and fetching %d messages each: straight with XOAUTH2 %v, with a password through the proxy %v: %.2fx the time (goal <= 2)\n",
		*clients, *per, d.Round(time.Millisecond), pr.Round(time.Millisecond), pr.Seconds()/d.Seconds())

	t0 := time.Now()
	const checks = 50
	for range checks {
		proxy.CheckPassword(accts["big"].hash, "big password")
	}
	fmt.Printf("a local password check (bcrypt cost %d): %v; token requests in the whole run: %d\n", proxy.PasswordCost,
		(time.Since(t0) / checks).Round(10*time.Microsecond), emu.TokenRequests())
	return nil
}

// together runs f for clients 0..n-1 at once.
func together(n int, f func(i int) (int64, error)) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if _, err := f(i); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// fetchAll connects (with TLS unless tc is nil), sends login (its tagged answer must be OK),
// selects INBOX and reads `UID FETCH 1:* BODY.PEEK[]` to its end,
// literals discarded; it returns the bytes of the messages.
func fetchAll(addr string, tc *tls.Config, login string) (int64, error) {
	var c net.Conn
	var err error
	if tc != nil {
		c, err = tls.Dial("tcp", addr, tc)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		return 0, err
	}
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10)
	if _, err := br.ReadString('\n'); err != nil {
		return 0, err
	}
	for _, cmd := range []string{login, "b SELECT INBOX"} {
		if _, err := fmt.Fprintf(c, "%s\r\n", cmd); err != nil {
			return 0, err
		}
		tag := cmd[:1]
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return 0, err
			}
			if strings.HasPrefix(line, "+") {
				fmt.Fprintf(c, "\r\n")
				continue
			}
			if strings.HasPrefix(line, tag+" ") {
				if !strings.HasPrefix(line, tag+" OK") {
					return 0, fmt.Errorf("%s: %s", strings.Fields(cmd)[1], strings.TrimSpace(line))
				}
				break
			}
		}
	}
	if _, err := fmt.Fprintf(c, "c UID FETCH 1:* BODY.PEEK[]\r\n"); err != nil {
		return 0, err
	}
	var total int64
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return total, err
		}
		if strings.HasPrefix(line, "c ") {
			if !strings.HasPrefix(line, "c OK") {
				return total, fmt.Errorf("fetch: %s", line)
			}
			_, _ = fmt.Fprintf(c, "d LOGOUT\r\n")
			return total, nil
		}
		if i := strings.LastIndexByte(line, '{'); i >= 0 && strings.HasSuffix(line, "}\r\n") {
			var size int64
			if _, err := fmt.Sscanf(line[i:], "{%d}", &size); err == nil {
				n, err := io.CopyN(io.Discard, br, size)
				total += n
				if err != nil {
					return total, err
				}
			}
		}
	}
}
