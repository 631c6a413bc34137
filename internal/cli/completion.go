package cli

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/mailgate/mailgate/internal/cmdline"
)

func init() {
	register(&command{name: "completion", summary: "print the shell completion script: completion bash|zsh|fish",
		run: runCompletion, subs: cmdline.Shells})
}

// runCompletion prints the script cmdline.Completion generates from the
// command table; each command's flags are those its flag set declares
// when it is asked for -h (with the output discarded).
func runCompletion(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "completion", "bash|zsh|fish")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	} else if len(pos) != 1 {
		fs.Usage()
		return ExitUsage
	}
	var table []cmdline.Command
	for _, c := range commands {
		var sets []*flag.FlagSet
		quiet := &Env{Stdio: Stdio{Out: io.Discard, Err: io.Discard}, Getenv: func(string) string { return "" }, flagSets: &sets}
		if c.name != "completion" {
			c.run(ctx, quiet, []string{"-h"})
		}
		row := cmdline.Command{Name: c.name, Summary: c.summary, Subcommands: c.subs}
		if len(sets) > 0 {
			row.Flags = cmdline.FlagNames(sets[0])
		}
		table = append(table, row)
	}
	script, err := cmdline.Completion(pos[0], table, cmdline.GlobalFlags())
	if err != nil {
		fmt.Fprintf(env.Err, "mailgate: completion: %v\n", err)
		return ExitUsage
	}
	_, _ = env.Out.Write(script)
	return ExitOK
}
