package httpascii

import "strings"

// Forwarded describes the field lines of an answer a proxy forwards as they came: CRLF-ended
// lines whose names are tokens and whose bytes hold no control character but HTAB (checked
// by whoever parsed them). It tells a server writing them on what it must add or leave out,
// as it would know from a header map: both HTTP servers' WriteForwarded use it.
type Forwarded struct {
	Lines   string
	HasType bool // a Content-Type field
	Encoded bool // the first Content-Encoding field is not empty (as Header.Get sees it)
	HasDate bool
	// named: the names the Connection fields list, which are not forwarded.
	named  [4]string
	nNamed int
	more   []string
}

// ReadForwarded scans field lines (see Forwarded).
func ReadForwarded(lines string) Forwarded {
	f := Forwarded{Lines: lines}
	seenEncoding := false
	for r := lines; r != ""; {
		name, value, rest := CutField(r)
		r = rest
		switch {
		case EqualFold(name, "connection"):
			for tok := range strings.SplitSeq(value, ",") {
				if tok = TrimOWS(tok); tok == "" {
					continue
				}
				if f.nNamed < len(f.named) {
					f.named[f.nNamed] = tok
					f.nNamed++
				} else {
					f.more = append(f.more, tok)
				}
			}
		case EqualFold(name, "content-type"):
			f.HasType = true
		case EqualFold(name, "content-encoding"):
			if !seenEncoding {
				seenEncoding, f.Encoded = true, TrimOWS(value) != ""
			}
		case EqualFold(name, "date"):
			f.HasDate = true
		}
	}
	return f
}

// Skip reports whether the field named name is not forwarded: a hop-by-hop field (RFC
// 9110, section 7.6.1) or one a Connection field names.
func (f *Forwarded) Skip(name string) bool {
	if IsHopByHop(name) {
		return true
	}
	for _, n := range f.named[:f.nNamed] {
		if EqualFold(name, n) {
			return true
		}
	}
	for _, n := range f.more {
		if EqualFold(name, n) {
			return true
		}
	}
	return false
}

// CutField splits the first of CRLF-ended field lines into its name and value (the value
// untrimmed, without the CRLF) and returns the lines after it.
func CutField(lines string) (name, value, rest string) {
	line, rest, _ := strings.Cut(lines, "\r\n")
	name, value, _ = strings.Cut(line, ":")
	return name, value, rest
}

// IsHopByHop reports whether a field named name (in any case) is hop-by-hop (RFC 9110,
// section 7.6.1): it runs for every field of every request and response a proxy forwards,
// and a switch on the name's length is cheaper than hashing it for a map.
func IsHopByHop(name string) bool {
	switch len(name) {
	case 2:
		return EqualFold(name, "te")
	case 7:
		return EqualFold(name, "trailer") || EqualFold(name, "upgrade")
	case 10:
		return EqualFold(name, "connection") || EqualFold(name, "keep-alive")
	case 16:
		return EqualFold(name, "proxy-connection")
	case 17:
		return EqualFold(name, "transfer-encoding")
	case 18:
		return EqualFold(name, "proxy-authenticate")
	case 19:
		return EqualFold(name, "proxy-authorization")
	}
	return false
}
