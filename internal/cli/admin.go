package cli

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailgate/mailgate/internal/app"
	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/store"
)

func init() {
	register(&command{
		name:    "admin",
		summary: "console administrators: admin add|list|remove|unlock NAME, admin token NAME [--expires 90d], admin token list [NAME]|revoke ID",
		run:     runAdmin,
		subs:    []string{"add", "list", "remove", "unlock", "token"},
	})
}

const adminUsage = `usage: mailgate admin add NAME [--revoke-tokens]   (password on stdin)
       mailgate admin list
       mailgate admin remove NAME
       mailgate admin unlock NAME
       mailgate admin token NAME [--expires 90d]
       mailgate admin token list [NAME]
       mailgate admin token revoke ID`

// runAdmin manages the console's administrators in the store:
//
//	mailgate admin add NAME     password read from stdin (first line); an
//	                            existing administrator gets the new password
//	                            and loses its sessions; --revoke-tokens
//	                            also revokes its API tokens
//	mailgate admin list         name, created, last sign-in, API tokens,
//	                            sign-in delay (stdout)
//	mailgate admin remove NAME  with its sessions and API tokens
//	mailgate admin unlock NAME  forgets its failed sign-ins from every
//	                            address
//	mailgate admin token NAME   prints a new API token (Bearer) for /api/v1
//	                            and /metrics; it is shown once; --expires
//	                            makes it expire (90d, 12h)
//	mailgate admin token list [NAME]   id, administrator, created, last
//	                            used, expiry; never the token
//	mailgate admin token revoke ID
func runAdmin(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "admin", "add|list|remove|unlock|token …")
	cfgFlag := fs.String("config", "", "config file (default $MAILGATE_CONFIG, then ./mailgate.yaml)")
	revoke := fs.Bool("revoke-tokens", false, "admin add: also revoke the administrator's API tokens (after a leaked password)")
	expires := fs.String("expires", "", "admin token: the token expires after this long (90d, 720h; default never)")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	usage := func() int {
		fmt.Fprintln(env.Err, adminUsage)
		return ExitUsage
	}
	if len(pos) == 0 {
		return usage()
	}
	sub := pos[0]
	if sub == "token" && len(pos) >= 2 && (pos[1] == "list" || pos[1] == "revoke") {
		sub = "token " + pos[1]
		pos = pos[1:]
	}
	want := map[string][2]int{"add": {2, 2}, "list": {1, 1}, "remove": {2, 2}, "unlock": {2, 2}, "token": {2, 2},
		"token list": {1, 2}, "token revoke": {2, 2}}[sub]
	if want[0] == 0 || len(pos) < want[0] || len(pos) > want[1] {
		return usage()
	}
	if *revoke && sub != "add" || *expires != "" && sub != "token" {
		fmt.Fprintln(env.Err, "mailgate: admin: --revoke-tokens goes with admin add, --expires with admin token NAME")
		return ExitUsage
	}
	var ttl time.Duration
	if *expires != "" {
		var err error
		if ttl, err = parseDays(*expires); err != nil || ttl <= 0 {
			fmt.Fprintf(env.Err, "mailgate: admin token: --expires %q: give a positive duration such as 90d or 12h\n", *expires)
			return ExitUsage
		}
	}
	name := ""
	if len(pos) > 1 {
		name = pos[1]
	}
	if sub == "add" && (name == "list" || name == "revoke") {
		fmt.Fprintf(env.Err, "mailgate: admin add: %q is a word of `mailgate admin token`: choose another name\n", name)
		return ExitUsage
	}
	cfg, st, code, ok := openStore(ctx, env, "admin", configPath(env, *cfgFlag))
	if !ok {
		return code
	}
	defer st.Close()
	failed := func(err error) int {
		fmt.Fprintf(env.Err, "mailgate: admin %s: %v\n", sub, err)
		return ExitFailed
	}
	switch sub {
	case "add":
		return adminAdd(ctx, env, st, cfg, name, *revoke, failed)
	case "list":
		return adminList(ctx, env, st, failed)
	case "remove":
		if err := st.RemoveAdmin(ctx, name); err != nil {
			return failed(err)
		}
		fmt.Fprintf(env.Err, "administrator %s removed, with its sessions and API tokens\n", name)
	case "unlock":
		n, err := st.UnlockAdmin(ctx, name)
		if err != nil {
			return failed(err)
		}
		fmt.Fprintf(env.Err, "failed sign-ins of %s forgotten (%s); it may sign in at once\n", name, app.Plural(n, "address"))
	case "token":
		var until time.Time
		if ttl > 0 {
			until = time.Now().Add(ttl)
		}
		tok, err := st.NewAPITokenUntil(ctx, name, until)
		if err != nil {
			return failed(err)
		}
		fmt.Fprintln(env.Out, tok)
		if !until.IsZero() {
			fmt.Fprintf(env.Err, "it expires %s; ", when(until))
		}
		fmt.Fprintln(env.Err, "send it as Authorization: Bearer <token> to /api/v1 and /metrics; it is not shown again")
	case "token list":
		return adminTokenList(ctx, env, st, name, failed)
	case "token revoke":
		if err := st.RevokeAPIToken(ctx, name); err != nil {
			return failed(err)
		}
		fmt.Fprintf(env.Err, "API token %s revoked\n", name)
	}
	return ExitOK
}

// when formats a time of the admin tables ("never" for the zero time).
func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// parseDays is time.ParseDuration with whole days as well: "90d".
func parseDays(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, fmt.Errorf("duration %q: %w", s, err)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// adminAdd is `admin add NAME`: the password from stdin; with revoke, the
// administrator's API tokens are revoked too, else their number is said.
func adminAdd(ctx context.Context, env *Env, st *store.Store, cfg *config.Config, name string, revoke bool, failed func(error) int) int {
	line, err := bufio.NewReader(env.In).ReadString('\n')
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		fmt.Fprintf(env.Err, "mailgate: admin add: give the password on stdin, e.g. `mailgate admin add %s < password-file` (%v)\n", name, err)
		return ExitUsage
	}
	if err := st.SetAdmin(ctx, name, pw); err != nil {
		fmt.Fprintf(env.Err, "mailgate: admin add: %v\n", err)
		return ExitUsage
	}
	fmt.Fprintf(env.Err, "administrator %s saved; sign in to the console at http://%s/\n", name, cfg.Listen)
	if revoke {
		n, err := st.RevokeAPITokens(ctx, name)
		if err != nil {
			return failed(err)
		}
		fmt.Fprintf(env.Err, "%s of %s revoked\n", app.Plural(n, "API token"), name)
	} else if toks, err := st.APITokens(ctx, name); err == nil && len(toks) > 0 {
		// stdin carries the password, so there is no question to answer:
		// say what to do instead
		fmt.Fprintf(env.Err, "%s still has %s, which the new password does not end; if the old password leaked, revoke them: mailgate admin add %s --revoke-tokens (again with the password), or mailgate admin token list %s and mailgate admin token revoke ID\n",
			name, app.Plural(len(toks), "API token"), name, name)
	}
	return ExitOK
}

// adminList is `admin list`: a line per administrator.
func adminList(ctx context.Context, env *Env, st *store.Store, failed func(error) int) int {
	admins, err := st.Admins(ctx, time.Now())
	if err != nil {
		return failed(err)
	}
	tw := tabwriter.NewWriter(env.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCREATED\tLAST SIGN-IN\tAPI TOKENS\tSIGN-IN DELAYED")
	for _, a := range admins {
		delayed := "no"
		if !a.ThrottledUntil.IsZero() {
			delayed = fmt.Sprintf("until %s (%s; mailgate admin unlock %s)", when(a.ThrottledUntil), app.Plural(a.ThrottledAddresses, "address"), a.Name)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", a.Name, when(a.Created), when(a.LastLogin), a.Tokens, delayed)
	}
	_ = tw.Flush()
	if len(admins) == 0 {
		fmt.Fprintln(env.Err, "no administrator yet: mailgate admin add NAME (password on stdin)")
	}
	return ExitOK
}

// adminTokenList is `admin token list [NAME]`: a line per API token.
func adminTokenList(ctx context.Context, env *Env, st *store.Store, name string, failed func(error) int) int {
	toks, err := st.APITokens(ctx, name)
	if err != nil {
		return failed(err)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(env.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADMIN\tCREATED\tLAST USED\tEXPIRES")
	for _, t := range toks {
		exp := "never"
		if !t.Expires.IsZero() {
			exp = when(t.Expires)
			if t.Expired(now) {
				exp += " (expired)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Admin, when(t.Created), when(t.LastUsed), exp)
	}
	_ = tw.Flush()
	return ExitOK
}
