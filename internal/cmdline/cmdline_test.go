package cmdline

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/logging"
)

func TestParse(t *testing.T) {
	tests := []struct {
		args  []string
		pos   []string
		scope string
		g     Globals
		err   bool
	}{
		{[]string{"P", "--scope", "s"}, []string{"P"}, "s", Globals{}, false},
		{[]string{"--scope", "s", "P", "Q"}, []string{"P", "Q"}, "s", Globals{}, false},
		{[]string{"P", "-c", "f.yaml", "--log-level=warn", "-v"}, []string{"P"}, "", Globals{Config: "f.yaml", Log: logging.Options{Level: "warn", Verbose: true}}, false},
		{[]string{"P", "--", "--scope"}, []string{"P", "--scope"}, "", Globals{}, false},
		{[]string{"--log-format", "yaml"}, nil, "", Globals{}, true},
		{[]string{"--nope"}, nil, "", Globals{}, true},
	}
	for _, tc := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		scope := fs.String("scope", "", "")
		var g Globals
		g.Register(fs)
		pos, err := Parse(fs, tc.args)
		if (err != nil) != tc.err {
			t.Errorf("%v: err %v", tc.args, err)
			continue
		}
		if !tc.err && (!slices.Equal(pos, tc.pos) || *scope != tc.scope || g != tc.g) {
			t.Errorf("%v: %q scope %q %+v; want %q %q %+v", tc.args, pos, *scope, g, tc.pos, tc.scope, tc.g)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := Parse(fs, []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	if got := strings.Join(FlagNames(fs), " "); got != "" {
		t.Errorf("FlagNames of an empty set: %q", got)
	}
}

func TestCompletionUnknownShell(t *testing.T) {
	if _, err := Completion("tcsh", nil, nil); err == nil {
		t.Error("tcsh accepted")
	}
}
