// Package cmdline holds mailgate's command-line conventions that do not
// depend on any one command: the global flags every command takes (before
// or after its name), flag parsing that allows flags after positional
// arguments, and the shell completion scripts generated from the command
// table.
package cmdline

import (
	"flag"
	"strings"

	"github.com/mailgate/mailgate/internal/logging"
)

// Globals are the flags every command takes: -c (as --config, which each
// command declares itself), -v/--verbose, --log-level and --log-format.
type Globals struct {
	// Config is the config file named before the command (a command's own
	// --config wins).
	Config string
	// Log is what -v, --log-level and --log-format asked for.
	Log logging.Options
}

// Register declares the global flags on fs, writing into g.
func (g *Globals) Register(fs *flag.FlagSet) {
	fs.StringVar(&g.Config, "c", g.Config, "config file (as --config)")
	fs.BoolVar(&g.Log.Verbose, "v", g.Log.Verbose, "log debug lines on stderr (as --log-level debug)")
	fs.BoolVar(&g.Log.Verbose, "verbose", g.Log.Verbose, "as -v")
	fs.Func("log-level", "debug, info, warn or error (default: the config's log.level)", func(s string) error {
		g.Log.Level = s
		return logging.CheckLevel(s)
	})
	fs.Func("log-format", "text or json (default: the config's log.format, else text)", func(s string) error {
		g.Log.Format = s
		return logging.CheckFormat(s)
	})
}

// Parse parses args allowing flags after positional arguments
// ("mailgate token PROFILE --scope S"), which the flag package alone does
// not; "--" ends the flags. It returns the positional arguments, or the
// flag package's error (flag.ErrHelp for -h).
func Parse(fs *flag.FlagSet, args []string) (positional []string, err error) {
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return nil, err
		}
		rest = fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if rest[0] == "--" {
			return append(positional, rest[1:]...), nil
		}
		// one positional at a time, so that a flag after it is still parsed
		positional = append(positional, rest[0])
		rest = rest[1:]
	}
}

// GlobalFlags are the flags mailgate takes before the command, as typed:
// the Globals, --config and --version.
func GlobalFlags() []string {
	fs := flag.NewFlagSet("mailgate", flag.ContinueOnError)
	fs.String("config", "", "")
	fs.Bool("version", false, "")
	new(Globals).Register(fs)
	return FlagNames(fs)
}

// FlagNames are the names of fs's flags as typed: "-c", "--config".
func FlagNames(fs *flag.FlagSet) []string {
	var out []string
	fs.VisitAll(func(f *flag.Flag) {
		if len(f.Name) == 1 {
			out = append(out, "-"+f.Name)
		} else {
			out = append(out, "--"+f.Name)
		}
	})
	return out
}

// words joins completion words for a shell script.
func words(w []string) string { return strings.Join(w, " ") }
