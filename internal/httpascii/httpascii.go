// Package httpascii compares and lowers HTTP protocol tokens: method names, header
// field names, transfer codings, Connection and Upgrade tokens, hosts; parses the usual
// request target without allocating (ParseRequestURI); and reads the field lines of an
// answer a proxy forwards as it came (Forwarded), for both HTTP servers.
//
// HTTP's case-insensitive tokens are ASCII (RFC 9110 §5.1, §5.6.2). The Unicode-aware
// strings.EqualFold and strings.ToLower are wrong for them: they fold the Kelvin sign
// U+212A to "k" and the long s U+017F to "s", so "chun\u212Aed" would equal "chunked"
// there while every other HTTP implementation refuses it. Two parsers that disagree on a
// token disagree on a message's framing; every comparison of a protocol token in this
// repository goes through this package (a test in it fails on a strings.EqualFold or
// strings.ToLower elsewhere that it does not know to be about something else).
package httpascii

// EqualFold reports whether s and t are equal under ASCII case folding: only A-Z and a-z
// fold into each other, every other byte must be equal. s may be bytes of a message not
// yet made into a string.
func EqualFold[S string | []byte](s S, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lower(s[i]) != lower(t[i]) {
			return false
		}
	}
	return true
}

// Lower returns s with A-Z turned into a-z and every other byte as it is; s itself (no
// allocation) when it has no upper-case letter.
func Lower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = lower(b[j])
			}
			return string(b)
		}
	}
	return s
}

func lower(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// TrimOWS returns s without the optional white space (SP and HTAB, RFC 9110 §5.6.3) at
// its ends, as around a field value.
func TrimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
