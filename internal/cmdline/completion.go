package cmdline

import (
	"fmt"
	"slices"
	"strings"
)

// Command is one row of the command table as completion sees it.
type Command struct {
	Name, Summary string
	// Subcommands are the words that may follow the name (config check …).
	Subcommands []string
	// Flags are the flag names as typed ("-c", "--config").
	Flags []string
}

// Shells are the shells Completion writes scripts for.
var Shells = []string{"bash", "zsh", "fish"}

// valued are the global flags that take a value, with the values offered
// ("" for a file name).
var valued = map[string]string{"-c": "", "--config": "", "--log-level": "debug info warn error", "--log-format": "text json"}

// Completion returns the completion script of shell for the commands
// (sorted by name) and the global flags (before the command).
func Completion(shell string, cmds []Command, global []string) ([]byte, error) {
	cmds = slices.Clone(cmds)
	slices.SortFunc(cmds, func(a, b Command) int { return strings.Compare(a.Name, b.Name) })
	var b strings.Builder
	switch shell {
	case "bash":
		bashScript(&b, cmds, global)
	case "zsh":
		zshScript(&b, cmds, global)
	case "fish":
		fishScript(&b, cmds, global)
	default:
		return nil, fmt.Errorf("no completion for shell %q (one of %s)", shell, strings.Join(Shells, ", "))
	}
	return []byte(b.String()), nil
}

// skipValues is the case pattern of the flags whose value is the next word.
func skipValues() string {
	var ks []string
	for k := range valued {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, "|")
}

func bashScript(b *strings.Builder, cmds []Command, global []string) {
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.Name
	}
	fmt.Fprintf(b, `# bash completion for mailgate: source <(mailgate completion bash)
_mailgate() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd="" i
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		%s) ((i++)) ;;
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	case $prev in
	--log-level) COMPREPLY=($(compgen -W %q -- "$cur")); return ;;
	--log-format) COMPREPLY=($(compgen -W %q -- "$cur")); return ;;
	-c|--config|--config-out|--out|--dir) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	esac
	local words
	case $cmd in
	"") words=%q ;;
`, skipValues(), valued["--log-level"], valued["--log-format"], words(append(names, global...)))
	for _, c := range cmds {
		fmt.Fprintf(b, "\t%s) words=%q ;;\n", c.Name, words(append(slices.Clone(c.Subcommands), c.Flags...)))
	}
	b.WriteString(`	esac
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _mailgate mailgate
`)
}

func zshScript(b *strings.Builder, cmds []Command, global []string) {
	b.WriteString("#compdef mailgate\n# zsh completion for mailgate: source <(mailgate completion zsh), or save as _mailgate in $fpath\n_mailgate() {\n\tlocal -a cmds\n\tcmds=(\n")
	for _, c := range cmds {
		fmt.Fprintf(b, "\t\t%s\n", zshQuote(c.Name+":"+c.Summary))
	}
	fmt.Fprintf(b, `	)
	local cmd="" i
	for ((i = 2; i < CURRENT; i++)); do
		case ${words[i]} in
		%s) ((i++)) ;;
		-*) ;;
		*) cmd=${words[i]}; break ;;
		esac
	done
	case ${words[CURRENT-1]} in
	--log-level) compadd -- %s; return ;;
	--log-format) compadd -- %s; return ;;
	-c|--config|--config-out|--out|--dir) _files; return ;;
	esac
	case $cmd in
	"") _describe command cmds; compadd -- %s ;;
`, skipValues(), valued["--log-level"], valued["--log-format"], words(global))
	for _, c := range cmds {
		fmt.Fprintf(b, "\t%s) compadd -- %s; _files ;;\n", c.Name, words(append(slices.Clone(c.Subcommands), c.Flags...)))
	}
	b.WriteString(`	esac
}
if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
	_mailgate "$@"
else
	compdef _mailgate mailgate
fi
`)
}

func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func fishScript(b *strings.Builder, cmds []Command, global []string) {
	b.WriteString("# fish completion for mailgate: mailgate completion fish | source\n")
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.Name
	}
	for _, c := range cmds {
		fmt.Fprintf(b, "complete -c mailgate -n __fish_use_subcommand -f -a %s -d %s\n", c.Name, zshQuote(c.Summary))
	}
	fishFlags(b, "", global)
	for _, c := range cmds {
		cond := "'__fish_seen_subcommand_from " + c.Name + "'"
		if len(c.Subcommands) > 0 {
			fmt.Fprintf(b, "complete -c mailgate -n %s -f -a %s\n", cond, zshQuote(words(c.Subcommands)))
		}
		fishFlags(b, " -n "+cond, c.Flags)
	}
}

func fishFlags(b *strings.Builder, cond string, flags []string) {
	for _, f := range flags {
		opt := "-s " + strings.TrimPrefix(f, "-")
		if name, ok := strings.CutPrefix(f, "--"); ok {
			opt = "-l " + name
		}
		switch v, ok := valued[f]; {
		case ok && v == "":
			opt += " -r -F"
		case ok:
			opt += " -x -a " + zshQuote(v)
		}
		fmt.Fprintf(b, "complete -c mailgate%s %s\n", cond, opt)
	}
}
