package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name  string
		o     Options
		def   slog.Level
		debug bool // a debug line is written
		info  bool
		json  bool
	}{
		{"default error", Options{}, slog.LevelError, false, false, false},
		{"default info", Options{}, slog.LevelInfo, false, true, false},
		{"verbose", Options{Verbose: true}, slog.LevelError, true, true, false},
		{"level wins over verbose", Options{Verbose: true, Level: "warn"}, slog.LevelError, false, false, false},
		{"level info", Options{Level: "info"}, slog.LevelError, false, true, false},
		{"json", Options{Level: "debug", Format: "json"}, slog.LevelError, true, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			log := New(&b, tc.o, tc.def)
			log.Debug("dbg", "k", 1)
			log.Info("inf")
			log.Error("err")
			out := b.String()
			if strings.Contains(out, "dbg") != tc.debug || strings.Contains(out, "inf") != tc.info || !strings.Contains(out, "err") {
				t.Errorf("output:\n%s", out)
			}
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if json.Valid([]byte(l)) != tc.json {
					t.Errorf("line %q: JSON %v, want %v", l, !tc.json, tc.json)
				}
			}
		})
	}
}

func TestOr(t *testing.T) {
	tests := []struct {
		name          string
		o             Options
		level, format string
		want          Options
	}{
		{"file fills", Options{}, "warn", "json", Options{Level: "warn", Format: "json"}},
		{"flags win", Options{Level: "debug", Format: "text"}, "warn", "json", Options{Level: "debug", Format: "text"}},
		{"verbose wins over the file's level", Options{Verbose: true}, "warn", "", Options{Verbose: true}},
	}
	for _, tc := range tests {
		if got := tc.o.Or(tc.level, tc.format); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestCheck(t *testing.T) {
	if CheckLevel("warn") != nil || CheckFormat("json") != nil {
		t.Error("valid values refused")
	}
	if CheckLevel("verbose") == nil || CheckFormat("xml") == nil {
		t.Error("invalid values accepted")
	}
}
