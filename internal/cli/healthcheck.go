package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// DefaultHealthURL is what healthcheck asks when --url is not given: serve's
// default listen address.
const DefaultHealthURL = "http://127.0.0.1:8025/healthz"

func init() {
	register(&command{name: "healthcheck", summary: "exit 0 if a running serve answers /healthz (for container healthchecks)", run: runHealthcheck})
}

// runHealthcheck GETs serve's /healthz and exits 0 on 200 OK, 1 otherwise.
// It exists for container images without a shell or curl (the Containerfile's
// HEALTHCHECK runs it), so it reads no config and opens no store.
func runHealthcheck(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "healthcheck", "")
	url := fs.String("url", DefaultHealthURL, "the /healthz URL of the serve to check")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fs.Usage()
		return ExitUsage
	}
	if err := checkHealth(ctx, *url, *timeout); err != nil {
		fmt.Fprintf(env.Err, "mailgate: healthcheck: %v\n", err)
		return ExitFailed
	}
	fmt.Fprintln(env.Out, "ok")
	return ExitOK
}

func checkHealth(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	// no proxy: the server checked is on this machine (or in this container)
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
