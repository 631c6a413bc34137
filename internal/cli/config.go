package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/mailgate/mailgate/internal/app"
	"github.com/mailgate/mailgate/internal/config"
)

// DefaultConfigFile is used when neither --config nor MAILGATE_CONFIG names
// the configuration file.
const DefaultConfigFile = "./mailgate.yaml"

func init() {
	register(&command{
		name:    "config",
		summary: "check the config file (config check), print a documented example (config example) or the reference of every key (config reference)",
		run:     runConfig,
		subs:    []string{"check", "example", "reference"},
	})
}

// configPath returns the configuration file to use: the --config flag, else
// $MAILGATE_CONFIG, else ./mailgate.yaml.
func configPath(env *Env, flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if env.Config != "" { // mailgate -c FILE COMMAND
		return env.Config
	}
	if env.Getenv != nil {
		if p := env.Getenv("MAILGATE_CONFIG"); p != "" {
			return p
		}
	}
	return DefaultConfigFile
}

// loadConfig loads the configuration at path with the command's
// environment. On failure it prints every problem to stderr, one
// "file:line: key: problem" per line, and returns ok=false with the exit
// code (ExitUsage). Warnings are printed to stderr in any case.
func loadConfig(env *Env, path string) (cfg *config.Config, code int, ok bool) {
	cfg, err := config.Load(path, env.Getenv)
	if err != nil {
		var cerr *config.Error
		if errors.As(err, &cerr) {
			for _, p := range cerr.Problems {
				fmt.Fprintln(env.Err, p.String())
			}
		} else {
			fmt.Fprintf(env.Err, "mailgate: %v\n", err)
		}
		return nil, ExitUsage, false
	}
	for _, w := range cfg.Warnings { // a JSON log gets them as log lines
		if env.Log.Or(cfg.Log.Level, cfg.Log.Format).Format == "json" {
			logger(env, cfg, slog.LevelWarn).Warn(w.String())
		} else {
			fmt.Fprintf(env.Err, "%s (warning)\n", w.String())
		}
	}
	return cfg, ExitOK, true
}

func runConfig(ctx context.Context, env *Env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(env.Err, "usage: mailgate config check [--config FILE]")
		fmt.Fprintln(env.Err, "       mailgate config example > mailgate.yaml")
		fmt.Fprintln(env.Err, "       mailgate config reference > config.md")
		return map[bool]int{true: ExitUsage, false: ExitOK}[len(args) == 0]
	}
	switch args[0] {
	case "check":
		return runConfigCheck(ctx, env, args[1:])
	case "example":
		return printDoc(env, "config example", args[1:], config.Example())
	case "reference":
		return printDoc(env, "config reference", args[1:], config.Reference())
	}
	fmt.Fprintf(env.Err, "mailgate: config: unknown subcommand %q (check, example or reference)\n", args[0])
	return ExitUsage
}

// runConfigCheck validates the file: its problems and warnings on stderr,
// "config OK: FILE: what it holds" on stdout.
func runConfigCheck(_ context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "config check", "")
	file := fs.String("config", "", "config file (default $MAILGATE_CONFIG, then ./mailgate.yaml)")
	rest, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(rest) > 0 {
		fs.Usage()
		return ExitUsage
	}
	path := configPath(env, *file)
	cfg, code, ok := loadConfig(env, path)
	if !ok {
		return code
	}
	warnings, err := app.ConfigWarnings(cfg) // what the token engine would warn about
	if err != nil {
		fmt.Fprintf(env.Err, "%s: %v\n", cfg.File, err)
		return ExitUsage
	}
	for _, w := range warnings {
		fmt.Fprintf(env.Err, "%s (warning)\n", w)
	}
	fmt.Fprintf(env.Out, "config OK: %s: %s\n", path, app.Summary(cfg))
	return ExitOK
}

// printDoc prints a generated document (config example, config reference).
func printDoc(env *Env, name string, args []string, doc []byte) int {
	fs := newFlagSet(env, name, "")
	fs.String("config", "", "ignored")
	rest, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(rest) > 0 {
		fs.Usage()
		return ExitUsage
	}
	if _, err := env.Out.Write(doc); err != nil {
		fmt.Fprintf(env.Err, "mailgate: %s: %v\n", name, err)
		return ExitFailed
	}
	return ExitOK
}
