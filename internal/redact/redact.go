// Package redact turns values that may hold a credential into what may be
// shown: in views, logs, errors and edit forms. It is a leaf: config (the
// console's records and URL problems), sink (webhook errors and logs) and
// web import it, and it imports nothing of mailgate.
package redact

import (
	"net/url"
	"strings"
)

// URL is a URL from the configuration as it may be shown (views,
// logs, errors, edit forms): scheme, host, port and the path's ordinary
// words. It drops the user information (name and password), the fragment,
// each query value (replaced by "…", webhook URLs often carry a token
// there) and each path segment that looks like a token (replaced by "…"):
// one of at least 8 characters holding 3 digits or more (IDs, GUIDs, Slack
// and Teams webhook keys), or one of at least 24 characters without a dot
// (random keys; host names in a path have dots). URL of its own
// result gives the same result.
func URL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	if u.RawQuery != "" || u.ForceQuery {
		q := u.Query()
		for k := range q {
			q[k] = []string{"…"}
		}
		u.RawQuery, u.ForceQuery = q.Encode(), false
	}
	if u.Path != "" {
		segs := strings.Split(u.Path, "/")
		for i, seg := range segs {
			if secretSegment(seg) {
				segs[i] = "…"
			}
		}
		u.Path, u.RawPath = strings.Join(segs, "/"), ""
		if u.Host == "" && strings.HasPrefix(u.Path, "//") {
			// it would read back as an authority (user@host)
			u.Path = "/" + strings.TrimLeft(u.Path, "/")
		}
	}
	if i := strings.LastIndex(u.Opaque, "@"); i >= 0 {
		// user:password@host without "//": the "scheme" is the user name
		return u.Opaque[i+1:]
	}
	return u.String()
}

// secretSegment says whether a URL path segment looks like a token.
func secretSegment(seg string) bool {
	digits := 0
	for _, r := range seg {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	n := len([]rune(seg))
	return n >= 8 && digits >= 3 || n >= 24 && !strings.Contains(seg, ".")
}
