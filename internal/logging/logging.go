// Package logging makes mailgate's slog loggers from the command line's
// -v, --log-level and --log-format and the config file's log key: one
// level and one format for every command.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
)

// Levels and Formats are the values --log-level and --log-format accept
// (the config's log.level and log.format declare the same).
var (
	Levels  = []string{"debug", "info", "warn", "error"}
	Formats = []string{"text", "json"}
)

// Options say how to log; the zero value leaves everything to the
// defaults.
type Options struct {
	// Level is one of Levels ("": the default).
	Level string
	// Format is one of Formats ("": text).
	Format string
	// Verbose (-v) is debug when Level is not given.
	Verbose bool
}

// Or fills what o leaves open from the config file's level and format:
// the command line wins over the file.
func (o Options) Or(level, format string) Options {
	if o.Level == "" && !o.Verbose {
		o.Level = level
	}
	if o.Format == "" {
		o.Format = format
	}
	return o
}

// CheckLevel and CheckFormat say why a flag's value is not one of the
// allowed ones.
func CheckLevel(s string) error  { return check("level", s, Levels) }
func CheckFormat(s string) error { return check("format", s, Formats) }

func check(what, s string, allowed []string) error {
	if !slices.Contains(allowed, s) {
		return fmt.Errorf("log %s %q is not one of %s", what, s, strings.Join(allowed, ", "))
	}
	return nil
}

// New is a logger writing to w as o says; def is the level when o names
// none (commands log errors only, serve from info).
func New(w io.Writer, o Options, def slog.Level) *slog.Logger {
	level := def
	switch {
	case o.Level != "":
		_ = level.UnmarshalText([]byte(o.Level))
	case o.Verbose:
		level = slog.LevelDebug
	}
	ho := &slog.HandlerOptions{Level: level}
	if o.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}
