package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// CommandOptions configure NewCommand.
type CommandOptions struct {
	Argv    []string      // program and arguments (no shell)
	Timeout time.Duration // per message; default 60 s
	Env     []string      // extra environment
}

// commandEnv is the environment a command starts from: a fixed PATH, LANG
// and mailgate's HOME, never the rest of mailgate's environment (it may
// hold MAILGATE_KEY, the store's key, or secrets given as ${ENV}).
func commandEnv() []string {
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}
	if h := os.Getenv("HOME"); h != "" {
		env = append(env, "HOME="+h)
	}
	return env
}

// Command runs a program per message with the raw message on stdin and
// MAILGATE_MAILBOX, MAILGATE_KEY (the message's idempotency key) and
// MAILGATE_SIZE in an otherwise minimal environment (PATH, LANG=C.UTF-8,
// HOME; not mailgate's own).
// Exit 0 accepts; 75 (EX_TEMPFAIL) is a temporary failure, retried later;
// anything else is permanent. On timeout the whole process group is
// killed. Like procmail or an MDA, the program should recognise a key it
// has seen.
type Command struct {
	o CommandOptions
}

// NewCommand returns a command sink.
func NewCommand(o CommandOptions) (*Command, error) {
	if len(o.Argv) == 0 || o.Argv[0] == "" {
		return nil, errors.New("sink: command: no program")
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Minute
	}
	return &Command{o: o}, nil
}

// Begin spools the message to a temporary file.
func (c *Command) Begin(ctx context.Context, m Message) (Delivery, error) {
	s, err := newSpool()
	if err != nil {
		return nil, &Error{Sink: "command", Err: err}
	}
	return &commandDelivery{spool: s, c: c, m: m}, nil
}

// Sync returns at once: the program has the message when it exits 0.
func (c *Command) Sync(context.Context) error { return nil }

// Close does nothing.
func (c *Command) Close() error { return nil }

type commandDelivery struct {
	*spool
	c *Command
	m Message
}

// limitedBuffer keeps the first n bytes written.
type limitedBuffer struct {
	bytes.Buffer
	n int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.n - l.Len(); room > 0 {
		l.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (d *commandDelivery) Commit(ctx context.Context) (Receipt, error) {
	defer d.Abort()
	if d.err != nil {
		return Receipt{}, &Error{Sink: "command", Err: d.err}
	}
	if err := d.rewind(); err != nil {
		return Receipt{}, &Error{Sink: "command", Err: err}
	}
	o := d.c.o
	cmd := exec.Command(o.Argv[0], o.Argv[1:]...)
	cmd.Stdin = d.f
	cmd.Env = append(append(commandEnv(), o.Env...),
		"MAILGATE_MAILBOX="+d.m.Mailbox, "MAILGATE_KEY="+d.m.Key, "MAILGATE_SIZE="+strconv.FormatInt(d.n, 10))
	stderr := &limitedBuffer{n: 4096}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return Receipt{}, &Error{Sink: "command", Permanent: true, Err: err}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(o.Timeout)
	defer timer.Stop()
	var err error
	select {
	case err = <-done:
	case <-timer.C:
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return Receipt{}, &Error{Sink: "command", Err: fmt.Errorf("%s timed out after %s", o.Argv[0], o.Timeout)}
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return Receipt{}, &Error{Sink: "command", Err: ctx.Err()}
	}
	if err == nil {
		return Receipt{Ref: "exit 0"}, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		msg := fmt.Errorf("%s exited %d: %s", o.Argv[0], ee.ExitCode(), bytes.TrimSpace(stderr.Bytes()))
		return Receipt{}, &Error{Sink: "command", Permanent: ee.ExitCode() != 75, Err: msg}
	}
	return Receipt{}, &Error{Sink: "command", Err: err}
}
