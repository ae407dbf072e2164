package proxy

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gangway-ecs/gangway/internal/spec"
)

// Reasons a path is refused; each is answered 400.
var (
	errEscapedSlash   = errors.New("the path holds an escaped slash (%2F or %5C), which this listener rejects")
	errAboveRoot      = errors.New("the path's \"..\" segments climb above the root")
	errEncodedNUL     = errors.New("the path holds an encoded NUL (%00)")
	errPercentEncoded = errors.New("the path holds a '%' that does not start a percent-encoding")
)

// pathNormalizer carries the normalization steps for a listener's spec.PathNormalization.
type pathNormalizer spec.PathNormalization

// active reports whether n can change a path.
func (n pathNormalizer) active() bool {
	return n.Normalize || n.MergeSlashes || n.EscapedSlashes != spec.KeepEscapedSlashes
}

// apply normalizes p, a path in its escaped form (url.URL.EscapedPath). redirect says that
// the client is to be sent to the result instead (UnescapeAndRedirect found an escaped
// slash). A p that does not start with '/' (the "*" of OPTIONS) is returned unchanged. When
// p is already normal, apply returns it without allocating.
func (n pathNormalizer) apply(p string) (out string, redirect bool, err error) {
	if p == "" || p[0] != '/' {
		return p, false, nil
	}
	if n.EscapedSlashes != spec.KeepEscapedSlashes && hasEscapedSlash(p) {
		switch n.EscapedSlashes {
		case spec.RejectEscapedSlashes:
			return "", false, errEscapedSlash
		case spec.UnescapeAndRedirect:
			redirect = true
		}
		p = unescapeSlashes(p)
	}
	if (n.Normalize || n.MergeSlashes) && !n.isNormal(p) {
		if p, err = n.rebuild(p); err != nil {
			return "", false, err
		}
	}
	return p, redirect, nil
}

// isNormal reports whether rebuild would return p unchanged. It is the allocation-free
// common case: false only sends p through rebuild, which decides.
func (n pathNormalizer) isNormal(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '%':
			if !n.Normalize {
				continue
			}
			if i+2 >= len(p) || !isUpperHex(p[i+1]) || !isUpperHex(p[i+2]) {
				return false
			}
			if b := unhex(p[i+1])<<4 | unhex(p[i+2]); b == 0 || unreserved(b) {
				return false
			}
			i += 2
		case '/':
			rest := p[i+1:]
			if n.MergeSlashes && rest != "" && rest[0] == '/' {
				return false
			}
			if n.Normalize {
				if j := strings.IndexByte(rest, '/'); j >= 0 {
					rest = rest[:j]
				}
				if rest == "." || rest == ".." {
					return false
				}
			}
		}
	}
	return true
}

// rebuild normalizes p segment by segment. A path is "/" followed by its segments joined
// with '/'; a trailing slash is a last, empty segment.
func (n pathNormalizer) rebuild(p string) (string, error) {
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		if n.Normalize {
			var err error
			if s, err = normalizeSegment(s); err != nil {
				return "", err
			}
			switch s {
			case ".":
				if last {
					out = append(out, "") // "/a/." is "/a/"
				}
				continue
			case "..":
				if len(out) == 0 {
					return "", errAboveRoot
				}
				out = out[:len(out)-1]
				if last {
					out = append(out, "") // "/a/b/.." is "/a/"
				}
				continue
			}
		}
		out = append(out, s)
	}
	if n.MergeSlashes {
		// An empty segment other than the last is a doubled slash.
		kept := out[:0]
		for i, s := range out {
			if s != "" || i == len(out)-1 {
				kept = append(kept, s)
			}
		}
		out = kept
	}
	return "/" + strings.Join(out, "/"), nil
}

// normalizeSegment decodes the percent-encoded unreserved characters of s and upper-cases
// the hex digits of the other percent-encodings.
func normalizeSegment(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", errPercentEncoded
		}
		c := unhex(s[i+1])<<4 | unhex(s[i+2])
		switch {
		case c == 0:
			return "", errEncodedNUL
		case unreserved(c):
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&15])
		}
		i += 2
	}
	return b.String(), nil
}

// hasEscapedSlash reports whether p holds %2F or %5C, in either case.
func hasEscapedSlash(p string) bool {
	for i := strings.IndexByte(p, '%'); i >= 0 && i+2 < len(p); {
		if isEscapedSlash(p[i+1], p[i+2]) {
			return true
		}
		j := strings.IndexByte(p[i+1:], '%')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// unescapeSlashes replaces %2F and %5C with '/'. A backslash becomes a slash, not a
// backslash: a raw '\' cannot be sent in a request target (it would go upstream as %5C
// again), and servers that decode %5C treat it as a separator.
func unescapeSlashes(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) && isEscapedSlash(p[i+1], p[i+2]) {
			b.WriteByte('/')
			i += 2
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

func isEscapedSlash(h, l byte) bool {
	return (h == '2' && (l == 'f' || l == 'F')) || (h == '5' && (l == 'c' || l == 'C'))
}

// unreserved reports whether c is an RFC 3986 unreserved character.
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

const upperHex = "0123456789ABCDEF"

// normalizePath applies the listener's normalization to r's path in place: r.URL.Path (what
// routes match) becomes the decoded normal path and r.URL.RawPath its escaped form, which
// is what goes upstream. r.URL.RawQuery is left as it came. CONNECT targets and the "*" of
// OPTIONS have no path to normalize.
func (n pathNormalizer) normalizePath(r *http.Request) (redirect bool, err error) {
	u := r.URL
	if !n.active() || u.Opaque != "" || u.Path == "" || u.Path[0] != '/' {
		return false, nil
	}
	ep := u.EscapedPath()
	np, redirect, err := n.apply(ep)
	if err != nil || np == ep {
		return redirect, err
	}
	path, err := url.PathUnescape(np)
	if err != nil {
		return false, errPercentEncoded
	}
	u.Path, u.RawPath = path, np
	return redirect, nil
}
