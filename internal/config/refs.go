package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// maxFileRef bounds what a file:PATH reference may read.
const maxFileRef = 1 << 20

// expand resolves the references in one string value:
//
//   - a value that starts with "file:" is replaced by the contents of the file
//     named after the colon (relative to the config file's directory), with
//     one trailing newline removed;
//   - otherwise every ${NAME} in the value, whole or embedded
//     ("postgres://mg:${PGPASS}@db/mail"), is replaced by the environment
//     variable NAME, which must be set and not empty; "$${" stands for a
//     literal "${". A "$" not followed by "{" is kept as it is.
func (d *decoder) expand(s string) (string, error) {
	if rest, ok := strings.CutPrefix(s, "file:"); ok {
		return d.readRef(rest)
	}
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ reference (write $${ for a literal ${)")
		}
		name := s[i+2 : i+end]
		if !validEnvName(name) {
			return "", fmt.Errorf("${%s}: not a valid environment variable name", name)
		}
		val := d.getenv(name)
		if val == "" {
			return "", fmt.Errorf("environment variable %s is not set (or empty)", name)
		}
		b.WriteString(val)
		s = s[i+end+1:]
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func (d *decoder) readRef(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("file: reference without a file name")
	}
	p := d.abs(name)
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %w", p, unwrapPathError(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileRef+1))
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %w", p, unwrapPathError(err))
	}
	if len(data) > maxFileRef {
		return "", fmt.Errorf("%s is larger than %d bytes", p, maxFileRef)
	}
	s := string(data)
	s = strings.TrimSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	return s, nil
}

// unwrapPathError drops the *fs.PathError wrapper whose path we print
// ourselves.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// abs makes a path from the file relative to the config file's directory.
func (d *decoder) abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(d.dir, p)
}

// suggest returns the candidate closest to word when it is close enough to
// be a likely typo, or "".
func suggest(word string, candidates []string) string {
	best, bestDist := "", 1<<30
	w := strings.ToLower(strings.ReplaceAll(word, "-", "_"))
	for _, c := range candidates {
		dist := levenshtein(w, c)
		if dist < bestDist {
			best, bestDist = c, dist
		}
	}
	limit := 2
	if len(word) <= 4 {
		limit = 1
	}
	if bestDist <= limit || (best != "" && len(w) >= 3 && (strings.HasPrefix(best, w) || strings.HasPrefix(w, best))) {
		return best
	}
	return ""
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// validName reports whether s may name a profile, mailbox, sink or sender.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return a.Line - b.Line
	})
}

func statFile(p string) (os.FileInfo, error) { return os.Stat(p) }
