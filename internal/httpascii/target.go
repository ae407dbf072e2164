package httpascii

import (
	"net/url"
	"strings"
)

// ParseRequestURI is url.ParseRequestURI with a shortcut for the common origin-form
// target made only of characters that parse to themselves, which it parses into u (which
// may be part of a larger allocation) instead of a URL of its own; it returns u then.
func ParseRequestURI(raw string, u *url.URL) (*url.URL, error) {
	path, query, hasQuery := strings.Cut(raw, "?")
	if len(path) == 0 || path[0] != '/' || !plainPath(path) || hasQuery && !TargetBytes(query) {
		return url.ParseRequestURI(raw)
	}
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	return u, nil
}

// plainPath reports whether p has only bytes that a URL path keeps as they are: no
// escapes, and nothing that EscapedPath would escape.
func plainPath(p string) bool {
	for i := 0; i < len(p); i++ {
		if !pathByte[p[i]] {
			return false
		}
	}
	return true
}

// TargetBytes reports whether s holds only bytes a request target may carry as they are:
// visible ASCII, and no '#' (a fragment is never sent; RFC 9112 section 3.2).
func TargetBytes(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x21 || b > 0x7e || b == '#' {
			return false
		}
	}
	return true
}

var pathByte = func() (t [256]bool) {
	for b := '0'; b <= '9'; b++ {
		t[b] = true
	}
	for b := 'a'; b <= 'z'; b++ {
		t[b] = true
		t[b-'a'+'A'] = true
	}
	for _, b := range "-_.~$&+,/:;=@" {
		t[b] = true
	}
	return t
}()
