package h2server

import (
	"errors"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gangway-ecs/gangway/internal/httpascii"
)

// Header blocks are assembled and decoded here rather than by the framer
// (Framer.ReadMetaHeaders), because the framer bounds a block by the bytes it carries:
// a block of empty CONTINUATION frames, or of one-byte references to a large table
// entry, costs the server work without ever reaching a byte limit. Here every block is
// bounded in frames, encoded bytes and decoded bytes, and every field is checked as RFC
// 9113 §8.2 and §8.3 require before anything can reach a handler or an upstream
// request line.

var errMalformed = errors.New("http2: malformed header block")

// headerBlock is the block being decoded. It is used by the reading goroutine only.
type headerBlock struct {
	fields     []hpack.HeaderField // reused from block to block: newStream copies them
	size       int64               // decoded size as RFC 9113 counts it: name, value and 32 per field
	encoded    int                 // fragment bytes
	frames     int                 // HEADERS and CONTINUATION frames
	pseudos    uint8               // pseudo-header fields seen, by pseudoBit
	sawRegular bool
	truncated  bool // over the header list limit: decoding goes on without keeping fields
	invalid    bool // malformed: the stream is reset once the block ends
}

// Pseudo-header fields of a request, as bits of headerBlock.pseudos.
const (
	pseudoMethod = 1 << iota
	pseudoScheme
	pseudoAuthority
	pseudoPath
)

// readHeaderBlock reads the CONTINUATION frames that complete hf and decodes the block.
// A malformed block is a stream error, once the block has been decoded (the HPACK state
// is the connection's); a block over its limits is a connection error.
func (c *conn) readHeaderBlock(hf *http2.HeadersFrame) (*http2.MetaHeadersFrame, error) {
	b := &c.block
	*b = headerBlock{fields: b.fields[:0]}
	c.hdec.SetEmitEnabled(true)
	frag, ended := hf.HeaderBlockFragment(), hf.HeadersEnded()
	for {
		b.frames++
		b.encoded += len(frag)
		if b.frames > c.maxBlockFrames || b.encoded > c.maxBlockBytes {
			return nil, http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
		if _, err := c.hdec.Write(frag); err != nil {
			return nil, http2.ConnectionError(http2.ErrCodeCompression)
		}
		if ended {
			break
		}
		f, err := c.fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		cf := f.(*http2.ContinuationFrame) // the framer allows nothing else here
		frag, ended = cf.HeaderBlockFragment(), cf.HeadersEnded()
	}
	if err := c.hdec.Close(); err != nil {
		return nil, http2.ConnectionError(http2.ErrCodeCompression)
	}
	c.stats.headerBytes += b.size
	if b.invalid {
		return nil, http2.StreamError{StreamID: hf.StreamID, Code: http2.ErrCodeProtocol, Cause: errMalformed}
	}
	// The frame is the connection's, as its fields are: handleFrame is done with it before
	// the next frame is read.
	c.meta = http2.MetaHeadersFrame{HeadersFrame: hf, Fields: b.fields, Truncated: b.truncated}
	return &c.meta, nil
}

// onField receives each decoded field of the block being read.
func (c *conn) onField(hf hpack.HeaderField) {
	b := &c.block
	b.size += int64(len(hf.Name)) + int64(len(hf.Value)) + 32
	if b.size > int64(c.maxHeader) {
		// Answered 431; what follows is decoded for the HPACK state only, without
		// decoding strings that are not indexed.
		b.truncated = true
		c.hdec.SetEmitEnabled(false)
		return
	}
	if !b.validField(hf) {
		b.invalid = true
		c.hdec.SetEmitEnabled(false)
		return
	}
	b.fields = append(b.fields, hf)
}

// validField checks one field: its name, its value, and the rules for pseudo-header
// fields (RFC 9113 §8.2.1, §8.3).
func (b *headerBlock) validField(hf hpack.HeaderField) bool {
	name, v := hf.Name, hf.Value
	if len(name) == 0 || name[0] != ':' {
		b.sawRegular = true
		return validFieldName(name) && validFieldValue(v)
	}
	if b.sawRegular {
		return false // pseudo-header fields come first
	}
	var bit uint8
	var ok bool
	switch name {
	case ":method":
		bit, ok = pseudoMethod, validMethod(v)
	case ":scheme":
		bit, ok = pseudoScheme, validScheme(v)
	case ":authority":
		bit, ok = pseudoAuthority, validAuthority(v)
	case ":path":
		bit, ok = pseudoPath, validPath(v)
	default:
		// :status, and :protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL.
		return false
	}
	if b.pseudos&bit != 0 {
		return false // twice
	}
	b.pseudos |= bit
	return ok
}

// validFieldName reports whether a regular field name is a lowercase token.
func validFieldName(s string) bool { return s != "" && allIn(s, &lowerToken) }

// allIn reports whether every byte of s is in the set t.
func allIn(s string, t *[256]bool) bool {
	for i := 0; i < len(s); i++ {
		if !t[s[i]] {
			return false
		}
	}
	return true
}

// validFieldValue reports whether v may be a field value: no control character other
// than HTAB (CR, LF and NUL are what RFC 9113 names; the others are refused as HTTP/1.1
// would), and no leading or trailing whitespace. Bytes above 0x7F are obs-text.
func validFieldValue(v string) bool {
	if v == "" {
		return true
	}
	if isSpace(v[0]) || isSpace(v[len(v)-1]) {
		return false
	}
	return httpguts.ValidHeaderFieldValue(v)
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' }

// validMethod reports whether m is a token (RFC 9110 §9.1).
func validMethod(m string) bool { return m != "" && allIn(m, &tokenByte) }

// validScheme reports whether s has the syntax of a URI scheme (RFC 3986 §3.1).
func validScheme(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		b := s[i]
		if !isAlpha(b) && !('0' <= b && b <= '9') && b != '+' && b != '-' && b != '.' {
			return false
		}
	}
	return true
}

func isAlpha(b byte) bool { return 'a' <= b|0x20 && b|0x20 <= 'z' }

// validAuthority reports whether a is empty or host[:port] (RFC 3986 §3.2.2, §3.2.3):
// the bytes of a reg-name, an IPv4 address or an IP literal, and a port. Userinfo is
// refused (RFC 9113 §8.3.1), as is anything that would end an authority: "/", "?",
// "#", spaces and controls.
func validAuthority(a string) bool { return allIn(a, &authorityByte) }

// validPath reports whether p is a request target HTTP/1.1 can carry: non-empty,
// visible ASCII without "#" (RFC 9113 §8.3.1, RFC 9110 §7.1). Its form (origin or
// asterisk) depends on the method and is checked with the request.
func validPath(p string) bool { return p != "" && httpascii.TargetBytes(p) }

var tokenByte, lowerToken, authorityByte = func() (token, lower, authority [256]bool) {
	for b := 0; b < 0x80; b++ {
		if httpguts.IsTokenRune(rune(b)) {
			token[b] = true
			lower[b] = b < 'A' || b > 'Z'
		}
	}
	for b := '0'; b <= '9'; b++ {
		authority[b] = true
	}
	for b := 'a'; b <= 'z'; b++ {
		authority[b] = true
		authority[b-'a'+'A'] = true
	}
	for _, b := range "-._~%!$&'()*+,;=[]:" {
		authority[b] = true
	}
	return
}()

// validRequestPseudos checks the pseudo-header fields of a request as a whole (RFC
// 9113 §8.3.1, §8.5): which are present for the method, and the form of :path.
func validRequestPseudos(method, scheme, authority, path string, have uint8) bool {
	if have&pseudoMethod == 0 {
		return false
	}
	if method == "CONNECT" {
		return have&(pseudoScheme|pseudoPath) == 0 && authority != "" && hasPort(authority)
	}
	if have&(pseudoScheme|pseudoPath) != pseudoScheme|pseudoPath {
		return false
	}
	return path[0] == '/' || path == "*" && method == "OPTIONS"
}

// hasPort reports whether a CONNECT authority ends in a port.
func hasPort(a string) bool {
	i := strings.LastIndexByte(a, ':')
	if i < 0 || i == len(a)-1 || strings.IndexByte(a[i:], ']') >= 0 {
		return false
	}
	for j := i + 1; j < len(a); j++ {
		if a[j] < '0' || a[j] > '9' {
			return false
		}
	}
	return true
}
