package h1server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/gangway-ecs/gangway/internal/httpascii"
)

// errHeadTooLarge ends a head over the size limit, errTooManyFields one over
// MaxHeaderFields.
var (
	errHeadTooLarge  = &statusError{code: http.StatusRequestHeaderFieldsTooLarge}
	errTooManyFields = &statusError{code: http.StatusRequestHeaderFieldsTooLarge, text: "too many header fields"}

	// The heads refused as ambiguous (Rejection).
	errCLTE   = &statusError{code: http.StatusBadRequest, text: "both Content-Length and Transfer-Encoding", reason: "content_length_and_transfer_encoding"}
	errTE10   = &statusError{code: http.StatusBadRequest, text: "Transfer-Encoding in an HTTP/1.0 request", reason: "transfer_encoding_http10"}
	errFolded = &statusError{code: http.StatusBadRequest, text: "obsolete line folding in a header", reason: "obsolete_line_folding"}
)

// emptyRequest is copied by WithContext to make each request.
var emptyRequest http.Request

// readRequest reads and parses the next request head. The head is read under the
// header timeout, which starts with it (the first request's started at accept).
func (c *conn) readRequest(ctx context.Context, first bool) (*response, error) {
	if !first && !c.headBuffered() {
		c.setReadDeadline(c.s.readHeaderTimeout())
	}
	limit := c.s.maxHeaderBytes() + 4096
	head := c.head[:0]
	lineStart := 0
	empty := 0 // empty lines dropped before the request line
	for {
		line, err := c.br.ReadSlice('\n')
		if cap(head)-len(head) < len(line) {
			// Doubled, not append's quarter: a large head costs twice its size, not five.
			head = slices.Grow(head, max(len(line), cap(head)))
		}
		head = append(head, line...)
		if len(head) > limit {
			return nil, errHeadTooLarge
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return nil, err // the client went away or timed out: close without an answer
		}
		if len(head)-lineStart == 1 || len(head)-lineStart == 2 && head[lineStart] == '\r' {
			if lineStart > 0 {
				break
			}
			if empty++; empty > MaxLeadingEmptyLines {
				return nil, badRequest("too many empty lines before the request line")
			}
			head = head[:0]
			continue
		}
		lineStart = len(head)
	}
	if cap(head) <= 64<<10 {
		c.head = head
	}
	return c.parse(ctx, string(head))
}

// headBuffered reports whether a whole head is in the read buffer already.
func (c *conn) headBuffered() bool {
	b, _ := c.br.Peek(c.br.Buffered())
	b = bytes.TrimLeft(b, "\r\n") // empty lines before the request line are not its head
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return false
		}
		b = b[i+1:]
		if len(b) > 0 && b[0] == '\n' || len(b) > 1 && b[0] == '\r' && b[1] == '\n' {
			return true
		}
	}
}

// parse makes the request and its response from a complete head, every line of which
// ends in LF.
func (c *conn) parse(ctx context.Context, head string) (*response, error) {
	line, rest := nextLine(head)
	method, rest1, ok1 := strings.Cut(line, " ")
	uri, proto, ok2 := strings.Cut(rest1, " ")
	if !ok1 || !ok2 {
		return nil, badRequest("malformed HTTP request " + strconv.Quote(line))
	}
	if !validMethod(method) {
		return nil, badRequest("invalid method " + strconv.Quote(method))
	}
	major, minor, ok := parseVersion(proto)
	if !ok {
		return nil, badRequest("malformed HTTP version " + strconv.Quote(proto))
	}
	isPRI := method == "PRI" && uri == "*" && major == 2 && minor == 0
	if major != 1 && !isPRI {
		return nil, &statusError{code: http.StatusHTTPVersionNotSupported, text: "unsupported protocol version"}
	}

	n := strings.Count(rest, "\n") // the fields and the empty line
	if n > MaxHeaderFields+1 {
		// A megabyte of "a:" lines would cost some sixty in the map and its values
		// (CVE-2023-24534 in net/textproto was this class).
		return nil, errTooManyFields
	}
	w, _ := responses.Get().(*response)
	if w == nil {
		w = new(response)
	}
	h := w.reqHeader // empty
	if h == nil {
		h = make(http.Header, n)
	}
	w.reqHeader = h
	var strs []string
	if n <= len(w.fields) {
		strs = w.fields[:n]
	} else {
		strs = make([]string, n)
	}
	for {
		line, rest = nextLine(rest)
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, errFolded
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, badRequest("malformed MIME header line: " + strconv.Quote(line))
		}
		if !httpguts.ValidHeaderFieldName(name) {
			return nil, badRequest("invalid header name")
		}
		value = httpascii.TrimOWS(value)
		if !httpguts.ValidHeaderFieldValue(value) {
			return nil, badRequest("invalid header value")
		}
		name = canonicalKey(name)
		if vv := h[name]; vv != nil {
			h[name] = append(vv, value)
		} else {
			vv, strs = strs[:1:1], strs[1:]
			vv[0] = value
			h[name] = vv
		}
	}

	rawurl := uri
	justAuthority := method == http.MethodConnect && !strings.HasPrefix(rawurl, "/")
	if justAuthority {
		rawurl = "http://" + rawurl
	}
	u, err := httpascii.ParseRequestURI(rawurl, &w.url)
	if err != nil {
		return nil, badRequest("malformed request URI")
	}
	if justAuthority {
		u.Scheme = ""
	}

	hosts, haveHost := h["Host"]
	if (major > 1 || minor >= 1) && !haveHost && !isPRI && method != http.MethodConnect {
		return nil, badRequest("missing required Host header")
	}
	if len(hosts) > 1 {
		// RFC 9112 §3.2: more than one Host line gets a 400 (net/http takes the first).
		return nil, badRequest("too many Host headers")
	}
	if len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]) {
		return nil, badRequest("malformed Host header")
	}
	host := u.Host
	if host == "" && len(hosts) == 1 {
		host = hosts[0]
	}
	delete(h, "Host")

	w.ctx.Context = ctx
	// WithContext is the only way to set a request's context; inlined here, its copy does
	// not escape, and the request is made in w.
	w.request = *emptyRequest.WithContext(&w.ctx)
	r := &w.request
	r.Method = method
	r.URL = u
	r.Proto, r.ProtoMajor, r.ProtoMinor = proto, major, minor
	r.Header = h
	r.Host = host
	r.RemoteAddr = c.remote
	r.RequestURI = uri
	r.TLS = c.tlsState
	r.Close = shouldClose(major, minor, h)

	if err := c.framing(r); err != nil {
		return nil, err
	}

	w.init(c, r)
	if _, ok := h["Upgrade"]; ok && !(method == http.MethodOptions && uri == "*") {
		// Unless the handler takes the connection over, what follows may be another
		// protocol: it ends with the response. (The server answers OPTIONS * itself and
		// never upgrades it.)
		w.upgrade = true
	}
	if isPRI {
		r.Close, r.ContentLength, w.closeAfter = true, -1, true
	}
	if t := c.s.WriteTimeout; t > 0 {
		c.rwc.SetWriteDeadline(time.Now().Add(t))
	}
	if expect := h["Expect"]; len(expect) > 0 {
		if httpguts.HeaderValuesContainsToken(expect[:1], "100-continue") {
			if (major > 1 || minor >= 1) && r.ContentLength != 0 {
				w.body.cont.Store(w)
				w.body.expect = true
			}
		} else if expect[0] != "" {
			w.expectationFailed = true
		}
	}
	return w, nil
}

// framing sets the request's body from its Content-Length or Transfer-Encoding.
func (c *conn) framing(r *http.Request) error {
	h := r.Header
	chunked := false
	if te, ok := h["Transfer-Encoding"]; ok {
		delete(h, "Transfer-Encoding")
		if _, ok := h["Content-Length"]; ok {
			// A classic smuggling vector (RFC 9112 §6.1), whatever the coding; net/http
			// drops the length.
			return errCLTE
		}
		if !r.ProtoAtLeast(1, 1) {
			// RFC 9112 §6.1: the framing of an HTTP/1.0 message with a Transfer-Encoding
			// is faulty. net/http ignores the header, a proxy before this one may not.
			return errTE10
		}
		// Only the ASCII spelling: under Unicode folding "chun\u212aed" is chunked too.
		if len(te) != 1 || !httpascii.EqualFold(httpascii.TrimOWS(te[0]), "chunked") {
			return &statusError{code: http.StatusNotImplemented, body: "Unsupported transfer encoding"}
		}
		chunked = true
	}
	switch {
	case chunked:
		r.ContentLength = -1
		r.TransferEncoding = []string{"chunked"}
		if vv, ok := h["Trailer"]; ok {
			trailer := make(http.Header)
			for _, v := range vv {
				for _, k := range strings.Split(v, ",") {
					k = textproto.CanonicalMIMEHeaderKey(httpascii.TrimOWS(k))
					switch k {
					case "":
						continue
					case "Transfer-Encoding", "Trailer", "Content-Length":
						return badRequest("bad trailer key " + strconv.Quote(k))
					}
					trailer[k] = nil
				}
			}
			if len(trailer) > 0 {
				r.Trailer = trailer
			}
			delete(h, "Trailer")
		}
		r.Body = newBody(c, r, -1)
	default:
		vv := h["Content-Length"]
		if len(vv) == 0 {
			r.Body = http.NoBody
			return nil
		}
		first := httpascii.TrimOWS(vv[0])
		for _, v := range vv[1:] {
			if httpascii.TrimOWS(v) != first {
				return badRequest("message cannot contain multiple Content-Length headers")
			}
		}
		n, err := strconv.ParseUint(first, 10, 63)
		if err != nil || first[0] == '+' {
			return badRequest("bad Content-Length " + strconv.Quote(first))
		}
		if len(vv) > 1 {
			h["Content-Length"] = []string{first}
		}
		r.ContentLength = int64(n)
		if n == 0 {
			r.Body = http.NoBody
			return nil
		}
		r.Body = newBody(c, r, int64(n))
	}
	if t := c.s.ReadTimeout; t > 0 {
		c.setReadDeadline(t)
	} else {
		c.setReadDeadline(0)
	}
	return nil
}

// nextLine splits s after its first line, which it returns without its CRLF or LF.
func nextLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	line, rest = s[:i], s[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

func parseVersion(p string) (major, minor int, ok bool) {
	switch p {
	case "HTTP/1.1":
		return 1, 1, true
	case "HTTP/1.0":
		return 1, 0, true
	}
	return http.ParseHTTPVersion(p)
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		if !httpguts.IsTokenRune(rune(m[i])) {
			return false
		}
	}
	return true
}

// canonicalKey returns k in canonical form, itself when it is already. k is a valid
// field name (checked before): textproto.CanonicalMIMEHeaderKey checks every byte again,
// which costs twice as long on the usual, already canonical names.
func canonicalKey(k string) string {
	upper := true
	for i := 0; i < len(k); i++ {
		b := k[i]
		if upper && 'a' <= b && b <= 'z' || !upper && 'A' <= b && b <= 'Z' {
			return textproto.CanonicalMIMEHeaderKey(k)
		}
		upper = b == '-'
	}
	return k
}

// shouldClose reports whether the connection ends after this request (RFC 9112 §9.3).
func shouldClose(major, minor int, h http.Header) bool {
	conv := h["Connection"]
	if httpguts.HeaderValuesContainsToken(conv, "close") {
		return true
	}
	return major == 1 && minor == 0 && !httpguts.HeaderValuesContainsToken(conv, "keep-alive")
}

var (
	errTrailerTooLarge  = errors.New("http: trailer section too large")
	errMalformedTrailer = errors.New("http: malformed trailer line")
)
