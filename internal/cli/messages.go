package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/mailgate/mailgate/internal/store"
	"github.com/mailgate/mailgate/internal/web"
)

func init() {
	register(&command{
		name:    "messages",
		summary: "messages a sink refused: messages held [--mailbox NAME] [--json], messages retry MAILBOX KEY|--all, messages drop MAILBOX KEY",
		run:     runMessages,
		subs:    []string{"held", "retry", "drop"},
	})
}

const messagesUsage = `usage: mailgate messages held [--mailbox NAME] [--json]
       mailgate messages retry MAILBOX KEY|--all
       mailgate messages drop MAILBOX KEY`

// runMessages lists and acts on the messages a sink refused, which the
// agents set aside (held) so that the messages after them flow:
//
//	mailgate messages held     lists them on stdout (a table, or JSON with
//	                           --json: the fields of GET /api/v1/held)
//	mailgate messages retry    the mailbox's next run (serve's, or run
//	                           --once) fetches and delivers it, then applies
//	                           its after-action; --all: every one of the
//	                           mailbox
//	mailgate messages drop     lets it go: never fetched again, left on the
//	                           server as it is
//
// An unknown key exits 1.
func runMessages(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "messages", "held|retry|drop …")
	cfgFlag := fs.String("config", "", "config file (default $MAILGATE_CONFIG, then ./mailgate.yaml)")
	only := fs.String("mailbox", "", "held: only this mailbox's")
	asJSON := fs.Bool("json", false, "held: print JSON (the fields of GET /api/v1/held)")
	all := fs.Bool("all", false, "retry: every held message of the mailbox")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	valid := len(pos) > 0 && (pos[0] == "held" && len(pos) == 1 ||
		pos[0] == "retry" && (len(pos) == 3 && !*all || len(pos) == 2 && *all) ||
		pos[0] == "drop" && len(pos) == 3 && !*all)
	if !valid {
		fmt.Fprintln(env.Err, messagesUsage)
		return ExitUsage
	}
	_, st, code, ok := openStore(ctx, env, "messages", configPath(env, *cfgFlag))
	if !ok {
		return code
	}
	defer st.Close()
	switch pos[0] {
	case "held":
		hs, err := st.Held(ctx, *only)
		if err != nil {
			fmt.Fprintf(env.Err, "mailgate: messages held: %v\n", err)
			return ExitFailed
		}
		return printHeld(env, hs, *asJSON)
	case "retry":
		key := ""
		if !*all {
			key = pos[2]
		}
		n, err := st.RetryHeld(ctx, pos[1], key)
		if err != nil {
			return heldError(env, "retry", err)
		}
		fmt.Fprintf(env.Err, "%d message(s) of %s will be tried again at its next run (mailgate run --once, or serve's next poll)\n", n, pos[1])
	case "drop":
		if err := st.DropHeld(ctx, pos[1], pos[2]); err != nil {
			return heldError(env, "drop", err)
		}
		fmt.Fprintf(env.Err, "dropped %s: it will not be fetched again and stays on the server as it is\n", pos[2])
	}
	return ExitOK
}

func heldError(env *Env, cmd string, err error) int {
	if errors.Is(err, store.ErrNotFound) {
		fmt.Fprintf(env.Err, "mailgate: messages %s: %v (see mailgate messages held)\n", cmd, err)
	} else {
		fmt.Fprintf(env.Err, "mailgate: messages %s: %v\n", cmd, err)
	}
	return ExitFailed
}

func printHeld(env *Env, hs []store.HeldMessage, asJSON bool) int {
	views := make([]web.HeldView, 0, len(hs))
	for _, h := range hs {
		views = append(views, web.NewHeldView(h))
	}
	if asJSON {
		enc := json.NewEncoder(env.Out)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(map[string]any{"held": views}); err != nil {
			return ExitFailed
		}
		return ExitOK
	}
	if len(views) == 0 {
		fmt.Fprintln(env.Err, "no held messages")
		return ExitOK
	}
	tw := tabwriter.NewWriter(env.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MAILBOX\tKEY\tSTATE\tATTEMPTS\tLAST ATTEMPT\tSUBJECT\tREASON")
	for _, v := range views {
		state := v.State
		if v.NextAt != "" {
			state += " until " + v.NextAt
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", v.Mailbox, v.Key, state, v.Attempts, v.LastAt, oneLine(v.Subject, 60), oneLine(v.Reason, 120))
	}
	if err := tw.Flush(); err != nil {
		return ExitFailed
	}
	return ExitOK
}

// oneLine keeps a value on one table line (whitespace runs collapsed), at
// most n bytes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}
