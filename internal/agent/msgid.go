package agent

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"net/textproto"
	"strings"
)

// maxHeader bounds how much of a message is kept to find its Message-ID.
const maxHeader = 64 << 10

// headerTap passes a message through while keeping its header (up to
// maxHeader bytes), so the ledger can record the Message-ID that survives a
// UIDVALIDITY change without a second round trip to the server.
type headerTap struct {
	r    io.Reader
	head []byte
	done bool
}

// reset starts tapping the next message, keeping the header buffer.
func (h *headerTap) reset(r io.Reader) {
	h.r, h.head, h.done = r, h.head[:0], false
}

func (h *headerTap) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if !h.done && n > 0 {
		h.head = append(h.head, p[:n]...)
		if i := bytes.Index(h.head, []byte("\r\n\r\n")); i >= 0 {
			h.head, h.done = h.head[:i+2], true
		} else if i := bytes.Index(h.head, []byte("\n\n")); i >= 0 {
			h.head, h.done = h.head[:i+1], true
		} else if len(h.head) >= maxHeader {
			h.head, h.done = h.head[:maxHeader], true
		}
	}
	return n, err
}

// header parses what passed through as a header.
func (h *headerTap) header() textproto.MIMEHeader {
	tp := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(h.head), strings.NewReader("\r\n"))))
	hdr, _ := tp.ReadMIMEHeader()
	return hdr
}

// messageID returns the Message-ID header of what passed through, "" when
// there is none.
func (h *headerTap) messageID() string {
	return strings.TrimSpace(h.header().Get("Message-Id"))
}

// subjectFrom returns the decoded Subject and From of what passed through
// (for a refused message's listing), each at most 200 bytes.
func (h *headerTap) subjectFrom() (subject, from string) {
	hdr := h.header()
	return decodeHeader(hdr.Get("Subject")), decodeHeader(hdr.Get("From"))
}

func decodeHeader(v string) string {
	var dec mime.WordDecoder
	if d, err := dec.DecodeHeader(v); err == nil {
		v = d
	}
	v = strings.TrimSpace(v)
	if len(v) > 200 {
		v = strings.ToValidUTF8(v[:200], "")
	}
	return v
}
