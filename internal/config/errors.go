package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Problem is one thing wrong (or, in Config.Warnings, worth knowing) in a
// configuration file, located by file, line and key.
type Problem struct {
	// File is the configuration file's path as given to Load.
	File string
	// Line is the 1-based line of the offending value or key; 0 when the
	// problem concerns the whole file.
	Line int
	// Key is the dotted path of the key, for example
	// "profiles[contoso].client_secret" (list items are named by their name
	// key, or by their index when they have none); "" for the whole file.
	Key string
	// Msg says what is wrong, lowercase.
	Msg string
}

// String formats the problem as "file:line: key: problem".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error is returned by Load and Parse when the configuration has problems;
// it holds all of them, in file order.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "config: " + e.Problems[0].String()
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return fmt.Sprintf("config: %d problems:\n%s", len(e.Problems), strings.Join(lines, "\n"))
}

// ProblemLines says what is wrong in err, a line per problem, each
// "key: what" (the one line of err when it is not an *Error).
func ProblemLines(err error) []string {
	var ce *Error
	if !errors.As(err, &ce) {
		return []string{err.Error()}
	}
	out := make([]string, 0, len(ce.Problems))
	for _, p := range ce.Problems {
		if p.Key != "" {
			out = append(out, p.Key+": "+p.Msg)
		} else {
			out = append(out, p.Msg)
		}
	}
	return out
}
