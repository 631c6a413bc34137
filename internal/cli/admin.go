package cli

import (
	"bufio"
	"context"
	"fmt"
	"strings"
)

func init() {
	register(&command{
		name:    "admin",
		summary: "console administrators: admin add NAME (password on stdin), admin token NAME (an API token)",
		run:     runAdmin,
	})
}

// runAdmin manages the console's administrators in the store:
//
//	mailgate admin add NAME     password read from stdin (first line); an
//	                            existing administrator gets the new password
//	                            and loses its sessions
//	mailgate admin token NAME   prints a new API token (Bearer) for /api/v1
//	                            and /metrics; it is shown once
func runAdmin(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "admin", "add|token NAME")
	cfgFlag := fs.String("config", "", "config file (default $MAILGATE_CONFIG, then ./mailgate.yaml)")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 2 || (pos[0] != "add" && pos[0] != "token") {
		fmt.Fprintln(env.Err, "usage: mailgate admin add NAME   (password on stdin)\n       mailgate admin token NAME")
		return ExitUsage
	}
	cfg, code, ok := loadConfig(env, configPath(env, *cfgFlag))
	if !ok {
		return code
	}
	st, err := openStore(ctx, env, cfg, logger(env.Err, false))
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: admin: %v\n", err)
		return ExitFailed
	}
	defer st.Close()
	name := pos[1]
	switch pos[0] {
	case "add":
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
	case "token":
		tok, err := st.NewAPIToken(ctx, name)
		if err != nil {
			fmt.Fprintf(env.Err, "mailgate: admin token: %v\n", err)
			return ExitFailed
		}
		fmt.Fprintln(env.Out, tok)
		fmt.Fprintln(env.Err, "send it as Authorization: Bearer <token> to /api/v1 and /metrics; it is not shown again")
	}
	return ExitOK
}
