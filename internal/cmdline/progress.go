package cmdline

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// Progress draws a one-line bar (mailgate run's mailboxes) on a terminal and nothing otherwise (the
// summary lines follow either way).
type Progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	state map[string][2]int
}

// NewProgress draws on w when it is a terminal.
func NewProgress(w io.Writer) *Progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &Progress{w: w, tty: tty, state: map[string][2]int{}}
}

// Update says that name has done of total.
func (p *Progress) Update(name string, done, total int) {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state[name] = [2]int{done, total}
	var parts []string
	for n, s := range p.state {
		width := 20
		fill := 0
		if s[1] > 0 {
			fill = width * s[0] / s[1]
		}
		parts = append(parts, fmt.Sprintf("%s [%s%s] %d/%d", n, strings.Repeat("#", fill), strings.Repeat(".", width-fill), s[0], s[1]))
	}
	fmt.Fprintf(p.w, "\r%s", strings.Join(parts, "  "))
}

// Done ends the bar's line.
func (p *Progress) Done() {
	if p.tty && len(p.state) > 0 {
		fmt.Fprintln(p.w)
	}
}
