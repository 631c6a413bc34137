package graph

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/textproto"
	"slices"
	"strings"
)

// Attachment is a file taken out of a message to be uploaded on its own.
type Attachment struct {
	Name        string
	ContentType string // media type without parameters
	ContentID   string // without angle brackets; set for inline parts
	Inline      bool
	Data        []byte // decoded
}

// leaf is one non-multipart body part of a message, by byte offsets.
type leaf struct {
	cut        [2]int // the delimiter line before the part and the part
	body       [2]int // the part's encoded content
	delimEnd   int    // end of the delimiter line (start of the part's header)
	header     textproto.MIMEHeader
	parent     *multipartNode
	attachment bool
}

type multipartNode struct {
	parts int
}

// SplitAttachments takes attachments out of a MIME message, largest first,
// until what remains is at most budget bytes, and returns that remainder
// (the original bytes with the attachments' parts cut out, nothing else
// changed) and the attachments, decoded. Only parts that are files
// (Content-Disposition attachment, a file name, or an inline part with a
// Content-ID) are taken; text bodies stay. A multipart left without parts
// keeps an empty text/plain part, so the remainder stays valid MIME.
func SplitAttachments(raw []byte, budget int) ([]byte, []Attachment, error) {
	if len(raw) <= budget {
		return raw, nil, nil
	}
	hdrEnd, bodyStart := headerEnd(raw, 0)
	if hdrEnd < 0 {
		return nil, nil, errors.New("graph: message has no header/body separator")
	}
	h, err := parseHeader(raw[:hdrEnd])
	if err != nil {
		return nil, nil, fmt.Errorf("graph: message header: %w", err)
	}
	ct, params, _ := mime.ParseMediaType(h.Get("Content-Type"))
	if !strings.HasPrefix(ct, "multipart/") || params["boundary"] == "" {
		// the whole body is the one thing that can go
		if !isFile(h) {
			return nil, nil, fmt.Errorf("graph: the message is %d bytes and has no attachment to upload separately (at most %d bytes go in one request): %w", len(raw), budget, ErrMessageTooLarge)
		}
		a, err := attachmentOf(h, raw[bodyStart:], 1)
		if err != nil {
			return nil, nil, err
		}
		var rest []byte
		for _, f := range fields(raw[:hdrEnd]) {
			name, _, _ := strings.Cut(string(f), ":")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "content-type", "content-transfer-encoding", "content-disposition", "content-id", "content-description":
			default:
				rest = append(rest, f...)
			}
		}
		rest = append(rest, "Content-Type: text/plain; charset=us-ascii\r\n\r\n"...)
		if len(rest) > budget {
			return nil, nil, fmt.Errorf("graph: the message is %d bytes without its attachment (at most %d bytes go in one request): %w", len(rest), budget, ErrMessageTooLarge)
		}
		return rest, []Attachment{a}, nil
	}
	var leaves []*leaf
	if err := walk(raw, bodyStart, len(raw), params["boundary"], 0, &leaves); err != nil {
		return nil, nil, err
	}
	var files []*leaf
	for _, l := range leaves {
		if l.attachment {
			files = append(files, l)
		}
	}
	slices.SortStableFunc(files, func(a, b *leaf) int { return (b.body[1] - b.body[0]) - (a.body[1] - a.body[0]) })
	size := len(raw)
	var cut []*leaf
	for _, l := range files {
		if size <= budget {
			break
		}
		size -= l.cut[1] - l.cut[0]
		cut = append(cut, l)
	}
	if size > budget {
		return nil, nil, fmt.Errorf("graph: the message is %d bytes without its attachments (at most %d bytes go in one request): %w", size, budget, ErrMessageTooLarge)
	}
	// in message order, so the attachments keep their order
	slices.SortFunc(cut, func(a, b *leaf) int { return a.cut[0] - b.cut[0] })
	var atts []Attachment
	removed := map[*multipartNode]int{}
	for i, l := range cut {
		a, err := attachmentOf(l.header, raw[l.body[0]:l.body[1]], i+1)
		if err != nil {
			return nil, nil, err
		}
		atts = append(atts, a)
		removed[l.parent]++
	}
	var out bytes.Buffer
	out.Grow(size + 64)
	pos := 0
	for _, l := range cut {
		out.Write(raw[pos:l.cut[0]])
		if removed[l.parent] == l.parent.parts {
			// the multipart's last part goes: leave an empty text part
			out.Write(raw[l.cut[0]:l.delimEnd])
			out.WriteString("Content-Type: text/plain; charset=us-ascii\r\n\r\n")
			removed[l.parent] = -1
		}
		pos = l.cut[1]
	}
	out.Write(raw[pos:])
	if out.Len() > budget { // the empty text parts put in made it grow
		return nil, nil, fmt.Errorf("graph: the message is %d bytes without its attachments (at most %d bytes go in one request): %w", out.Len(), budget, ErrMessageTooLarge)
	}
	return out.Bytes(), atts, nil
}

// walk finds the body parts of the multipart in raw[start:end] with the
// given boundary, descending into nested multiparts.
func walk(raw []byte, start, end int, boundary string, depth int, leaves *[]*leaf) error {
	if depth > 20 {
		return errors.New("graph: MIME nesting deeper than 20 levels")
	}
	delim := []byte("--" + boundary)
	type mark struct{ cutStart, lineEnd int }
	var marks []mark
	closed := -1
	for i := start; i < end; {
		j := bytes.Index(raw[i:end], delim)
		if j < 0 {
			break
		}
		d := i + j
		atLineStart := d == start || raw[d-1] == '\n'
		if !atLineStart {
			i = d + len(delim)
			continue
		}
		cs := d
		if d > start && raw[d-1] == '\n' {
			cs = d - 1
			if d-1 > start && raw[d-2] == '\r' {
				cs = d - 2
			}
		}
		after := d + len(delim)
		nl := bytes.IndexByte(raw[after:end], '\n')
		lineEnd := end
		if nl >= 0 {
			lineEnd = after + nl + 1
		}
		if bytes.HasPrefix(raw[after:end], []byte("--")) {
			closed = cs
			break
		}
		marks = append(marks, mark{cs, lineEnd})
		i = lineEnd
	}
	if len(marks) == 0 {
		return fmt.Errorf("graph: multipart with boundary %q has no parts", boundary)
	}
	if closed < 0 {
		closed = end // tolerate a missing closing delimiter
	}
	node := &multipartNode{parts: len(marks)}
	for k, m := range marks {
		partEnd := closed
		if k+1 < len(marks) {
			partEnd = marks[k+1].cutStart
		}
		if m.lineEnd > partEnd {
			continue // an empty last line without content
		}
		hEnd, bStart := headerEnd(raw[:partEnd], m.lineEnd)
		var h textproto.MIMEHeader
		if hEnd < 0 {
			hEnd, bStart = partEnd, partEnd
			h = textproto.MIMEHeader{}
		} else {
			var err error
			if h, err = parseHeader(raw[m.lineEnd:hEnd]); err != nil {
				return fmt.Errorf("graph: body part header: %w", err)
			}
		}
		ct, params, _ := mime.ParseMediaType(h.Get("Content-Type"))
		if strings.HasPrefix(ct, "multipart/") && params["boundary"] != "" {
			if err := walk(raw, bStart, partEnd, params["boundary"], depth+1, leaves); err != nil {
				return err
			}
			continue
		}
		*leaves = append(*leaves, &leaf{cut: [2]int{m.cutStart, partEnd}, body: [2]int{bStart, partEnd}, delimEnd: m.lineEnd,
			header: h, parent: node, attachment: isFile(h)})
	}
	return nil
}

// headerEnd finds the end of the header that starts at from: the offset
// after the header's last line break and the start of the body, or -1.
func headerEnd(raw []byte, from int) (int, int) {
	if bytes.HasPrefix(raw[from:], []byte("\r\n")) {
		return from, from + 2
	}
	if bytes.HasPrefix(raw[from:], []byte("\n")) {
		return from, from + 1
	}
	crlf := bytes.Index(raw[from:], []byte("\r\n\r\n"))
	lf := bytes.Index(raw[from:], []byte("\n\n"))
	switch {
	case crlf >= 0 && (lf < 0 || crlf < lf):
		return from + crlf + 2, from + crlf + 4
	case lf >= 0:
		return from + lf + 1, from + lf + 2
	}
	return -1, -1
}

func parseHeader(b []byte) (textproto.MIMEHeader, error) {
	if len(b) == 0 {
		return textproto.MIMEHeader{}, nil
	}
	r := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(b), strings.NewReader("\r\n"))))
	return r.ReadMIMEHeader()
}

// fields splits a header block into fields with their folded lines.
func fields(hdr []byte) [][]byte {
	var out [][]byte
	for len(hdr) > 0 {
		end := 0
		for {
			j := bytes.IndexByte(hdr[end:], '\n')
			if j < 0 {
				end = len(hdr)
				break
			}
			end += j + 1
			if end >= len(hdr) || (hdr[end] != ' ' && hdr[end] != '\t') {
				break
			}
		}
		out = append(out, hdr[:end])
		hdr = hdr[end:]
	}
	return out
}

// isFile says whether a part is a file rather than a message body.
func isFile(h textproto.MIMEHeader) bool {
	disp, dp, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	_, cp, _ := mime.ParseMediaType(h.Get("Content-Type"))
	switch {
	case disp == "attachment":
		return true
	case dp["filename"] != "" || cp["name"] != "":
		return true
	case h.Get("Content-Id") != "":
		ct, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
		return !strings.HasPrefix(ct, "text/")
	}
	return false
}

var words = &mime.WordDecoder{}

// attachmentOf decodes a file part.
func attachmentOf(h textproto.MIMEHeader, body []byte, n int) (Attachment, error) {
	disp, dp, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	ct, cp, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || ct == "" {
		ct = "application/octet-stream"
	}
	name := dp["filename"]
	if name == "" {
		name = cp["name"]
	}
	if d, err := words.DecodeHeader(name); err == nil {
		name = d
	}
	if name == "" {
		name = fmt.Sprintf("attachment-%d", n)
	}
	a := Attachment{Name: name, ContentType: ct, Inline: disp == "inline",
		ContentID: strings.Trim(strings.TrimSpace(h.Get("Content-Id")), "<>")}
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "base64":
		clean := bytes.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, body)
		a.Data = make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
		n, err := base64.StdEncoding.Decode(a.Data, clean)
		if err != nil {
			return Attachment{}, fmt.Errorf("graph: attachment %q: bad base64: %w", name, err)
		}
		a.Data = a.Data[:n]
	case "quoted-printable":
		d, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		if err != nil {
			return Attachment{}, fmt.Errorf("graph: attachment %q: bad quoted-printable: %w", name, err)
		}
		a.Data = d
	default:
		a.Data = bytes.Clone(body)
	}
	return a, nil
}
