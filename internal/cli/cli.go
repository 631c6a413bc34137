// Package cli implements mailgate's command line: one file per command group,
// each a function from parsed flags to an exit code.
//
// Exit codes follow CONTRACT.md: 0 success, 1 the operation failed (a server
// refused, the network, a mailbox that could not be read), 2 usage or
// configuration error. Output meant for people goes to stderr; data (a token,
// JSON) goes to stdout.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/mailgate/mailgate/internal/cmdline"
)

// Exit codes shared by every command.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// Stdio carries the process's standard streams so that commands can be run
// in tests without touching the real ones.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	// Hangup delivers SIGHUP: serve reloads its config file, any other
	// command stops as on SIGTERM. Nil: never.
	Hangup <-chan os.Signal
}

// command is one subcommand: its name, a one-line summary, its body and
// the words that may follow its name (for completion).
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *Env, args []string) int
	subs    []string
}

// Env is what every command receives: the streams and the process
// environment (looked up through Getenv so tests can substitute it).
type Env struct {
	Stdio
	Getenv func(string) string
	// the global flags: -c/--config before the command, -v, --log-level,
	// --log-format anywhere
	cmdline.Globals
	// flagSets collects the commands' flag sets for completion
	flagSets *[]*flag.FlagSet
}

// commands is filled by the init functions of the files in this package, one
// per command group, so that this file does not grow with every command.
var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("cli: duplicate command " + c.name)
	}
	commands[c.name] = c
}

// Main runs the command named by args[0] and returns the process exit code.
func Main(ctx context.Context, args []string, stdio Stdio) int {
	env := &Env{Stdio: stdio, Getenv: os.Getenv}
	global := newFlagSet(env, "", "COMMAND [args]") // the flags before the command
	global.StringVar(&env.Config, "config", "", "config file (default $MAILGATE_CONFIG, then ./mailgate.yaml)")
	version := global.Bool("version", false, "print the version (as mailgate version)")
	global.Usage = func() { usage(stdio.Err) }
	if err := global.Parse(args); err != nil {
		return map[bool]int{true: ExitOK, false: ExitUsage}[errors.Is(err, flag.ErrHelp)]
	}
	if args = global.Args(); *version {
		args = append([]string{"version"}, args...)
	}
	if len(args) == 0 || args[0] == "help" {
		usage(stdio.Err)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stdio.Err, "mailgate: unknown command %q\n\n", args[0])
		usage(stdio.Err)
		return ExitUsage
	}
	if c.name != "serve" && stdio.Hangup != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() { <-stdio.Hangup; cancel() }()
	}
	return c.run(ctx, env, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: mailgate COMMAND [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every command takes --config FILE or -c FILE (default $MAILGATE_CONFIG, then ./mailgate.yaml),")
	fmt.Fprintln(w, "-v, --log-level LEVEL and --log-format text|json, before or after the command name.")
	fmt.Fprintln(w, "Run 'mailgate COMMAND -h' for a command's flags.")
}

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints its usage to stderr.
func newFlagSet(env *Env, name, argsUsage string) *flag.FlagSet {
	fs := flag.NewFlagSet(strings.TrimSpace("mailgate "+name), flag.ContinueOnError)
	fs.SetOutput(env.Err)
	env.Register(fs)
	if env.flagSets != nil {
		*env.flagSets = append(*env.flagSets, fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(env.Err, "usage: mailgate %s [flags] %s\n", name, argsUsage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args allowing flags after positional arguments
// (cmdline.Parse). It returns the positional arguments, or ok=false with
// the exit code to return.
func parseFlags(fs *flag.FlagSet, args []string) (positional []string, code int, ok bool) {
	positional, err := cmdline.Parse(fs, args)
	if err != nil {
		return nil, map[bool]int{true: ExitOK, false: ExitUsage}[errors.Is(err, flag.ErrHelp)], false
	}
	return positional, ExitOK, true
}
