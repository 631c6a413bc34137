package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailgate/mailgate/internal/app"
	"github.com/mailgate/mailgate/internal/config"
	"github.com/mailgate/mailgate/internal/web"
)

func init() {
	register(&command{
		name:    "records",
		summary: "the console's records: records list [KIND], records show KIND NAME, records delete KIND NAME",
		run:     runRecords,
		subs:    []string{"list", "show", "delete"},
	})
}

// runRecords manages the records made in the console (kept in the store)
// from the command line; KIND is profiles, mailboxes, sinks or senders:
//
//	mailgate records list [KIND]        one line per record: kind, name,
//	                                    state (ok, or failing and why), last change
//	mailgate records show KIND NAME     its keys; secrets, headers and command
//	                                    lines show as "set", URLs redacted
//	mailgate records delete KIND NAME   removes it, also a failing one;
//	                                    refused while a working record uses it
//
// A running serve notices a deletion made here within a few seconds.
func runRecords(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "records", "list [KIND] | show KIND NAME | delete KIND NAME")
	cfgFlag := fs.String("config", "", "config file (default $MAILGATE_CONFIG, then ./mailgate.yaml)")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	usage := func() int {
		fmt.Fprintln(env.Err, "usage: mailgate records list [KIND]\n       mailgate records show KIND NAME\n       mailgate records delete KIND NAME\nKIND: "+strings.Join(config.Kinds, ", ")+", accounts")
		return ExitUsage
	}
	switch {
	case len(pos) == 1 && pos[0] == "list", len(pos) == 2 && pos[0] == "list":
	case len(pos) == 3 && (pos[0] == "show" || pos[0] == "delete"):
	default:
		return usage()
	}
	if len(pos) > 1 && !slices.Contains(config.Kinds, pos[1]) && pos[1] != "accounts" {
		fmt.Fprintf(env.Err, "mailgate: records: unknown kind %q\n", pos[1])
		return usage()
	}
	path := configPath(env, *cfgFlag)
	_, st, code, ok := openStore(ctx, env, "records", path)
	if !ok {
		return code
	}
	defer st.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: records: %v\n", err)
		return ExitUsage
	}
	ed := app.NewRecords(st, data, path, env.Getenv)
	switch pos[0] {
	case "list":
		rs, err := ed.States(ctx, strings.Join(pos[1:], ""))
		if err != nil {
			fmt.Fprintf(env.Err, "mailgate: records: %v\n", err)
			return ExitFailed
		}
		tw := tabwriter.NewWriter(env.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tNAME\tSTATE\tCHANGED")
		for _, r := range rs {
			state := "ok"
			if r.Failing != "" {
				state = "failing: " + r.Failing
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Kind, r.Name, state, r.UpdatedAt.UTC().Format(time.RFC3339))
		}
		tw.Flush()
	case "show":
		y, found, err := ed.Load(ctx, pos[1], pos[2])
		if err != nil {
			fmt.Fprintf(env.Err, "mailgate: records: %v\n", err)
			return ExitFailed
		}
		if !found {
			fmt.Fprintf(env.Err, "mailgate: records: no console record %s %s\n", pos[1], pos[2])
			return ExitFailed
		}
		shown, err := web.ShowRecord(pos[1], y)
		if err != nil {
			fmt.Fprintf(env.Err, "mailgate: records: %s %s: %v\n", pos[1], pos[2], err)
			return ExitFailed
		}
		for _, s := range shown {
			fmt.Fprintf(env.Out, "%s: %s\n", s.Key, s.Value)
		}
		rs, _ := ed.States(ctx, pos[1])
		for _, r := range rs {
			if r.Name == pos[2] && r.Failing != "" {
				fmt.Fprintf(env.Out, "# failing, not run by serve: %s\n", r.Failing)
			}
		}
	case "delete":
		if err := ed.Delete(ctx, pos[1], pos[2]); err != nil {
			if errors.Is(err, web.ErrNoRecord) {
				fmt.Fprintf(env.Err, "mailgate: records: no console record %s %s\n", pos[1], pos[2])
			} else {
				fmt.Fprintf(env.Err, "mailgate: records: %v\n", err)
			}
			return ExitFailed
		}
		fmt.Fprintf(env.Err, "console record %s %s deleted\n", pos[1], pos[2])
	}
	return ExitOK
}
