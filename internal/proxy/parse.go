package proxy

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// errLineTooLong is a command line or literal over maxLine.
var errLineTooLong = errors.New("proxy: command line too long")

// readLine reads one line without its CRLF (or LF), at most maxLine bytes.
func readLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		b = append(b, chunk...)
		if len(b) > maxLine {
			return "", errLineTooLong
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(b) > 0 {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		break
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	return string(b), nil
}

// imapCommand is one IMAP command before login.
type imapCommand struct {
	tag, name string
	args      []string
}

// splitCommand splits "tag NAME rest" (the name upper-cased).
func splitCommand(line string) (tag, name, rest string, err error) {
	tag, after, ok := strings.Cut(line, " ")
	if strings.Contains(tag, "+") || !isAtom(tag) {
		return "", "", "", errors.New("proxy: a command starts with a tag")
	}
	if !ok || after == "" {
		return tag, "", "", errors.New("proxy: missing command")
	}
	name, rest, _ = strings.Cut(after, " ")
	if !isAtom(name) {
		return tag, "", "", errors.New("proxy: bad command name")
	}
	return tag, strings.ToUpper(name), rest, nil
}

func isAtom(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`(){ %*"\`, c) >= 0 {
			return false
		}
	}
	return true
}

// parseArgs parses the arguments on one line: atoms, quoted strings and,
// last on the line, a literal's announcement {n} or {n+} (LITERAL+). lit
// is the literal's size (-1: none) and sync says the client waits for a
// continuation before sending it.
func parseArgs(s string) (args []string, lit int, sync bool, err error) {
	lit = -1
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ':
			i++
		case c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' {
					j++
					if j == len(s) || (s[j] != '\\' && s[j] != '"') {
						return nil, -1, false, errors.New("proxy: bad escape in a quoted string")
					}
				}
				if s[j] == 0 {
					return nil, -1, false, errors.New("proxy: NUL in a quoted string")
				}
				b.WriteByte(s[j])
			}
			if j == len(s) {
				return nil, -1, false, errors.New("proxy: unterminated quoted string")
			}
			args = append(args, b.String())
			i = j + 1
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 || i+end != len(s)-1 {
				return nil, -1, false, errors.New("proxy: a literal's size ends the line")
			}
			num := s[i+1 : i+end]
			sync = true
			if n, ok := strings.CutSuffix(num, "+"); ok {
				num, sync = n, false
			}
			n, err := strconv.Atoi(num)
			if err != nil || n < 0 || num == "" || num[0] == '+' || num[0] == '-' {
				return nil, -1, false, fmt.Errorf("proxy: bad literal size %q", num)
			}
			if n > maxLine {
				return nil, -1, false, errLineTooLong
			}
			return args, n, sync, nil
		default:
			j := strings.IndexByte(s[i:], ' ')
			if j < 0 {
				j = len(s) - i
			}
			a := s[i : i+j]
			if !isAtom(a) {
				return nil, -1, false, fmt.Errorf("proxy: bad atom %q", a)
			}
			args = append(args, a)
			i += j
		}
	}
	return args, -1, false, nil
}

// readIMAPCommand reads one command with its arguments, literals
// included; cont is called before a synchronizing literal is read (to
// send the continuation).
func readIMAPCommand(br *bufio.Reader, cont func() error) (*imapCommand, error) {
	line, err := readLine(br)
	if err != nil {
		return nil, err
	}
	tag, name, rest, err := splitCommand(line)
	cmd := &imapCommand{tag: tag, name: name}
	if err != nil {
		return cmd, &syntaxError{err}
	}
	total := len(line)
	for {
		args, lit, sync, err := parseArgs(rest)
		if err != nil {
			return cmd, &syntaxError{err}
		}
		cmd.args = append(cmd.args, args...)
		if lit < 0 {
			return cmd, nil
		}
		if total += lit; total > maxLine {
			return cmd, errLineTooLong
		}
		if sync {
			if err := cont(); err != nil {
				return cmd, err
			}
		}
		b := make([]byte, lit)
		if _, err := io.ReadFull(br, b); err != nil {
			return cmd, err
		}
		cmd.args = append(cmd.args, string(b))
		if rest, err = readLine(br); err != nil {
			return cmd, err
		}
		if total += len(rest); total > maxLine {
			return cmd, errLineTooLong
		}
		if rest != "" && rest[0] != ' ' {
			return cmd, &syntaxError{errors.New("proxy: a space must follow a literal")}
		}
	}
}

// syntaxError is a command the proxy cannot parse: the client is told BAD
// and may go on.
type syntaxError struct{ err error }

func (e *syntaxError) Error() string { return e.err.Error() }
func (e *syntaxError) Unwrap() error { return e.err }

// decodePlain reads a SASL PLAIN response (RFC 4616), base64:
// authzid NUL authcid NUL password. An authzid other than the authcid is
// refused: a local account cannot act as another.
func decodePlain(b64 string) (username, password string, err error) {
	if b64 == "=" {
		b64 = ""
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", "", fmt.Errorf("proxy: PLAIN response is not base64: %w", err)
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != 3 || parts[1] == "" {
		return "", "", errors.New("proxy: PLAIN response is not authzid NUL authcid NUL password")
	}
	if parts[0] != "" && parts[0] != parts[1] {
		return "", "", errors.New("proxy: PLAIN authorization identity differs from the user name")
	}
	return parts[1], parts[2], nil
}

// splitPOP3 splits a POP3 or SMTP command line into its upper-cased
// keyword and the rest.
func splitPOP3(line string) (cmd, arg string) {
	cmd, arg, _ = strings.Cut(line, " ")
	return strings.ToUpper(cmd), arg
}

// indexFold is the first index of the ASCII word w in s, ignoring case,
// or -1. (strings.ToUpper would move the offsets of any non-ASCII text
// before the word, and the cut with them; a slice of len(w) bytes that
// holds a non-ASCII rune has fewer runes than w, so never folds to it.)
func indexFold(s, w string) int {
	for i := 0; i+len(w) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(w)], w) {
			return i
		}
	}
	return -1
}

// redactLine is a command line as a trace shows it: credentials replaced.
func redactLine(line string, secret bool) string {
	if secret {
		return "***"
	}
	cmd, rest := splitPOP3(line)
	if cmd != "PASS" && cmd != "AUTH" {
		// IMAP: the word after the tag, whether or not the tag is valid
		// (a line the parser refuses is traced too)
		cmd, _ = splitPOP3(rest)
	}
	switch cmd {
	case "LOGIN", "AUTHENTICATE", "AUTH", "PASS":
		if i := indexFold(line, cmd); i >= 0 {
			return line[:i+len(cmd)] + " ***"
		}
		return "***"
	}
	return line
}
