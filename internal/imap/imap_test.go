package imap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// script is a tiny IMAP server for transcript tests: it answers each
// command by name with the lines reply returns (tag substituted for %s).
func script(t *testing.T, greeting string, reply func(cmd, args string) []string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				fmt.Fprintf(c, "%s\r\n", greeting)
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					line = strings.TrimRight(line, "\r\n")
					tag, rest, _ := strings.Cut(line, " ")
					cmd, args, _ := strings.Cut(rest, " ")
					if strings.EqualFold(cmd, "UID") {
						sub, a2, _ := strings.Cut(args, " ")
						cmd, args = "UID "+strings.ToUpper(sub), a2
					}
					out := reply(strings.ToUpper(cmd), args)
					for _, l := range out {
						if l == "<close>" {
							return
						}
						if strings.Contains(l, "%s") {
							l = fmt.Sprintf(l, tag)
						}
						fmt.Fprintf(c, "%s\r\n", l)
					}
				}
			}(c)
		}
	}()
	return ln.Addr().String()
}

// plainSASL is a stand-in sasl.Client sending a fixed initial response.
type plainSASL struct{}

func (plainSASL) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=u\x01auth=Bearer t\x01\x01"), nil
}
func (plainSASL) Next([]byte) ([]byte, error) { return []byte{}, nil }

const caps = "* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE IDLE] ready"

func TestExchangeQuirks(t *testing.T) {
	tests := []struct {
		name  string
		reply func(cmd, args string) []string
		want  Kind
		op    string
	}{
		{"authenticated but not connected", func(cmd, _ string) []string {
			switch cmd {
			case "AUTHENTICATE":
				return []string{"%s OK AUTHENTICATE completed."}
			case "SELECT":
				return []string{"%s BAD User is authenticated but not connected.", "* BYE Connection closed.", "<close>"}
			}
			return []string{"%s OK"}
		}, KindNotConnected, "select"},
		{"token expired mid-session", func(cmd, _ string) []string {
			switch cmd {
			case "AUTHENTICATE":
				return []string{"%s OK AUTHENTICATE completed."}
			case "SELECT":
				return []string{"* BYE Session invalidated - AccessTokenExpired", "<close>"}
			}
			return []string{"%s OK"}
		}, KindTokenExpired, "select"},
		{"refused token", func(cmd, _ string) []string {
			if cmd == "AUTHENTICATE" {
				return []string{"%s NO AUTHENTICATE failed."}
			}
			return []string{"%s OK"}
		}, KindAuthFailed, "authenticate"},
		{"dovecot refusal", func(cmd, _ string) []string {
			if cmd == "AUTHENTICATE" {
				return []string{"%s NO [AUTHENTICATIONFAILED] Authentication failed."}
			}
			return []string{"%s OK"}
		}, KindAuthFailed, "authenticate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := script(t, caps, tt.reply)
			c, err := Dial(t.Context(), addr, &Options{Security: "none", Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.Authenticate(t.Context(), plainSASL{})
			if err == nil {
				_, err = c.Select(t.Context(), "INBOX")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("want *Error, got %v", err)
			}
			if e.Kind != tt.want || e.Op != tt.op {
				t.Fatalf("kind %v op %s, want %v %s: %v", e.Kind, e.Op, tt.want, tt.op, err)
			}
		})
	}
}

func TestSelectSearchFetchAck(t *testing.T) {
	bodies := map[string]string{"7": "Subject: a\r\n\r\nseven\r\n", "9": "Subject: b\r\n\r\nnine\r\n.\r\n"}
	var acked []string
	addr := script(t, caps, func(cmd, args string) []string {
		switch cmd {
		case "AUTHENTICATE":
			return []string{"%s OK done"}
		case "SELECT":
			return []string{"* 2 EXISTS", "* OK [UIDVALIDITY 1234] UIDs valid", "* OK [UIDNEXT 10] next", "%s OK [READ-WRITE] SELECT completed"}
		case "UID SEARCH":
			// "UID 9:*" also matches the highest UID on a real server
			return []string{"* SEARCH 7 9", "%s OK SEARCH completed"}
		case "UID FETCH":
			var out []string
			for i, uid := range []string{"7", "9"} {
				b := bodies[uid]
				out = append(out, fmt.Sprintf("* %d FETCH (UID %s RFC822.SIZE %d INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" BODY[] {%d}\r\n%s)", i+1, uid, len(b), len(b), b))
			}
			return append(out, "%s OK FETCH completed")
		case "CAPABILITY":
			return []string{"* CAPABILITY IMAP4rev1 UIDPLUS MOVE IDLE", "%s OK CAPABILITY completed"}
		case "UID STORE", "UID EXPUNGE", "UID MOVE", "UID COPY", "EXPUNGE":
			acked = append(acked, cmd+" "+args)
			return []string{"%s OK done"}
		}
		return []string{"%s OK"}
	})
	c, err := Dial(t.Context(), addr, &Options{Security: "none"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Authenticate(t.Context(), plainSASL{}); err != nil {
		t.Fatal(err)
	}
	mb, err := c.Select(t.Context(), "INBOX")
	if err != nil || mb.UIDValidity != 1234 || mb.UIDNext != 10 || mb.Exists != 2 {
		t.Fatalf("select %+v %v", mb, err)
	}
	uids, err := c.UIDsAfter(t.Context(), 7)
	if err != nil || len(uids) != 1 || uids[0] != 9 {
		t.Fatalf("UIDsAfter(7) = %v %v", uids, err)
	}
	got := map[uint32]string{}
	err = c.FetchBodies(t.Context(), []uint32{7, 9}, func(uid uint32, size int64, date time.Time, r io.Reader) error {
		b, err := io.ReadAll(r)
		got[uid] = string(b)
		if size != int64(len(b)) || date.IsZero() {
			t.Errorf("uid %d: size %d for %d bytes, date %v", uid, size, len(b), date)
		}
		return err
	})
	if err != nil || got[7] != bodies["7"] || got[9] != bodies["9"] {
		t.Fatalf("fetch: %v %v", err, got)
	}
	stop := errors.New("sink full")
	n := 0
	err = c.FetchBodies(t.Context(), []uint32{7, 9}, func(uint32, int64, time.Time, io.Reader) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("deliver error: %v after %d calls", err, n)
	}
	if err := c.MarkSeen(t.Context(), []uint32{7}); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(t.Context(), []uint32{9}); err != nil {
		t.Fatal(err)
	}
	if err := c.Move(t.Context(), []uint32{7, 9}, "Processed"); err != nil {
		t.Fatal(err)
	}
	want := []string{`UID STORE 7 +FLAGS.SILENT (\Seen)`, `UID STORE 9 +FLAGS.SILENT (\Deleted)`, "UID EXPUNGE 9", `UID MOVE 7,9 "Processed"`}
	if strings.Join(acked, "|") != strings.Join(want, "|") {
		t.Errorf("commands\n%q\nwant\n%q", acked, want)
	}
}

func TestStartTLSRefusedWithoutIt(t *testing.T) {
	addr := script(t, "* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] no tls here", func(cmd, _ string) []string {
		return []string{"%s BAD unknown command"}
	})
	_, err := Dial(t.Context(), addr, &Options{Security: "starttls", Timeout: 5 * time.Second})
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindTLS {
		t.Fatalf("want a TLS error, got %v", err)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		typ, code, text string
		want            Kind
	}{
		{"BYE", "", "Session invalidated - AccessTokenExpired", KindTokenExpired},
		{"BAD", "", "User is authenticated but not connected.", KindNotConnected},
		{"NO", "AUTHENTICATIONFAILED", "Authentication failed.", KindAuthFailed},
		{"NO", "", "AUTHENTICATE failed.", KindNo},
		{"BYE", "", "Server shutting down.", KindConnection},
		{"BAD", "", "Error in IMAP command", KindBad},
		{"NO", "TRYCREATE", "Mailbox doesn't exist", KindNo},
		{"NO", "ALERT", "Too many simultaneous connections. (Failure)", KindTooManyConnections},
		{"BYE", "", "Session expired, please login again.", KindSessionExpired},
	}
	for _, tt := range tests {
		if got := Classify(tt.typ, tt.code, tt.text); got != tt.want {
			t.Errorf("Classify(%q, %q, %q) = %v, want %v", tt.typ, tt.code, tt.text, got, tt.want)
		}
	}
}

func FuzzClassify(f *testing.F) {
	f.Add("BYE", "", "Session invalidated - AccessTokenExpired")
	f.Add("BAD", "", "User is authenticated but not connected.")
	f.Add("NO", "AUTHENTICATIONFAILED", "")
	f.Add("NO", "ALERT", "Too many simultaneous connections. (Failure)")
	f.Add("BYE", "", "Session expired, please login again.")
	f.Fuzz(func(t *testing.T, typ, code, text string) {
		k := Classify(typ, code, text)
		if k < KindConnection || k > KindSessionExpired {
			t.Fatalf("kind %d out of range", k)
		}
		_ = (&Error{Op: "x", Kind: k, Code: code, Text: text}).Error()
	})
}

// FuzzByeSniffer feeds arbitrary server bytes, split at every position,
// through the BYE sniffer: no panic, and a BYE line is always seen.
func FuzzByeSniffer(f *testing.F) {
	f.Add([]byte("* OK hi\r\n* BYE Session invalidated - AccessTokenExpired\r\n"), 3)
	f.Add([]byte("\n* BYE "), 1)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		cl := &Client{}
		s := &sniffConn{cl: cl, tail: []byte("\n")}
		if split < 0 {
			split = -split
		}
		if len(data) > 0 {
			split %= len(data) + 1
		} else {
			split = 0
		}
		s.scan(data[:split])
		s.scan(data[split:])
		full := "\n" + string(data)
		want := ""
		if k := strings.LastIndex(full, "\n* BYE "); k >= 0 {
			want = full[k+len("\n* BYE "):]
			if r := strings.IndexByte(want, '\r'); r >= 0 {
				want = want[:r]
			}
			if len(want) > 300 {
				want = want[:300]
			}
		}
		if cl.bye != want {
			t.Fatalf("%q split at %d: recorded %q, want %q", data, split, cl.bye, want)
		}
	})
}
