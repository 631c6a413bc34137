package app

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"

	"github.com/mailgate/mailgate/internal/config"
)

// Prepared is a message ready for a sender: its envelope and its bytes.
type Prepared struct {
	Name  string // where it came from (a file name, - for stdin)
	From  string
	Rcpts []string
	Raw   []byte
}

// fromAllowed says whether a sender may use address a: one of its
// allowed_from ("@example.com": any address of that domain), compared
// case-insensitively; without allowed_from, its username only.
func fromAllowed(a string, snd *config.Sender) bool {
	list := snd.AllowedFrom
	if len(list) == 0 {
		list = []string{snd.Username}
	}
	return slices.ContainsFunc(list, func(x string) bool {
		if dom, ok := strings.CutPrefix(x, "@"); ok {
			at := strings.LastIndexByte(a, '@')
			return at >= 0 && strings.EqualFold(a[at+1:], dom)
		}
		return strings.EqualFold(x, a)
	})
}

// Prepare finds the envelope of a message for sender snd and enforces its
// allowed_from: from (--from), else the From header, else the sender's
// username; the recipients to (--to), else To, Cc and Bcc. For SMTP the
// Bcc header is removed; for Graph a missing Message-ID is added.
func Prepare(raw []byte, from string, to []string, snd *config.Sender) (*Prepared, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("not a message: %w", err)
	}
	out := &Prepared{Raw: raw}
	hdrFrom := ""
	if l, err := msg.Header.AddressList("From"); err == nil && len(l) > 0 {
		hdrFrom = l[0].Address
	}
	switch {
	case from != "":
		out.From = from
	case hdrFrom != "":
		out.From = hdrFrom
	default:
		out.From = snd.Username
	}
	for _, a := range []string{out.From, hdrFrom} {
		if a == "" || fromAllowed(a, snd) {
			continue
		}
		if len(snd.AllowedFrom) == 0 {
			return nil, fmt.Errorf("%s may not send through senders[%s]: without allowed_from only its username %s may", a, snd.Name, snd.Username)
		}
		return nil, fmt.Errorf("%s is not in senders[%s].allowed_from (%s)", a, snd.Name, strings.Join(snd.AllowedFrom, ", "))
	}
	// --to wins over the headers; the message still goes through the
	// Message-ID and Bcc steps below
	out.Rcpts = to
	if len(to) == 0 {
		for _, h := range []string{"To", "Cc", "Bcc"} {
			l, err := msg.Header.AddressList(h)
			if err != nil && !errors.Is(err, mail.ErrHeaderNotPresent) {
				return nil, fmt.Errorf("%s header: %w", h, err)
			}
			for _, a := range l {
				out.Rcpts = append(out.Rcpts, a.Address)
			}
		}
	}
	if len(out.Rcpts) == 0 {
		return nil, errors.New("no recipients: give --to or To/Cc/Bcc headers")
	}
	if snd.Protocol == "graph" {
		// Graph reads Bcc from the header (Exchange removes it from the
		// copies it delivers); a Message-ID is what finds the sent copy in
		// Sent Items after a crash, so one is added when missing, as a
		// submission server would (RFC 6409 §8.3)
		if msg.Header.Get("Message-Id") == "" {
			domain := "mailgate.invalid"
			if _, d, ok := strings.Cut(out.From, "@"); ok && d != "" {
				domain = d
			}
			out.Raw = append([]byte("Message-ID: <"+rand.Text()+"@"+domain+">\r\n"), raw...)
		}
		return out, nil
	}
	if msg.Header.Get("Bcc") != "" {
		out.Raw = stripHeader(raw, "Bcc")
	}
	return out, nil
}

// stripHeader removes a header field (with its folded lines) from the
// header section, leaving every other byte as it was.
func stripHeader(raw []byte, name string) []byte {
	var out bytes.Buffer
	r := bufio.NewReader(bytes.NewReader(raw))
	inHeader, skipping := true, false
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			switch {
			case !inHeader:
				out.Write(line)
			case len(bytes.TrimRight(line, "\r\n")) == 0:
				inHeader = false
				out.Write(line)
			case skipping && (line[0] == ' ' || line[0] == '\t'):
			default:
				k, _, _ := bytes.Cut(line, []byte(":"))
				skipping = strings.EqualFold(strings.TrimSpace(string(k)), name)
				if !skipping {
					out.Write(line)
				}
			}
		}
		if err != nil {
			return out.Bytes()
		}
	}
}

// GraphRecipients makes --to visible to Graph, which reads recipients from
// the MIME headers: a message without To/Cc/Bcc gets a To header; one
// whose headers name other recipients is refused rather than sent
// elsewhere than asked.
func GraphRecipients(raw []byte, to []string) ([]byte, error) {
	if len(to) == 0 {
		return raw, nil
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	var have []string
	for _, h := range []string{"To", "Cc", "Bcc"} {
		l, _ := msg.Header.AddressList(h)
		for _, a := range l {
			have = append(have, strings.ToLower(a.Address))
		}
	}
	if len(have) == 0 {
		return append([]byte("To: "+strings.Join(to, ", ")+"\r\n"), raw...), nil
	}
	want := make([]string, len(to))
	for i, a := range to {
		want[i] = strings.ToLower(a)
	}
	slices.Sort(have)
	slices.Sort(want)
	if !slices.Equal(have, want) {
		return nil, fmt.Errorf("a Graph sender sends to the message's To/Cc/Bcc (%s), not to --to (%s): drop --to or fix the headers",
			strings.Join(have, ", "), strings.Join(want, ", "))
	}
	return raw, nil
}
