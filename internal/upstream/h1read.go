package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"strconv"

	"golang.org/x/net/http/httpguts"

	"github.com/gangway-ecs/gangway/internal/httpascii"
)

// readResponse reads a response to req from br as http.ReadResponse does. The common answer
// of a keep-alive endpoint — HTTP/1.1, a body framed by Content-Length, the whole head
// already buffered — is parsed by readSimpleResponse with a few allocations (one string for
// the whole head, one slice for every header value); anything else, or anything it does not
// recognise, goes to http.ReadResponse, which reads it from the start.
//
// With ans not nil, a simple response is returned without a header map (its Header is
// nil), made in ans, and its field lines, each ending in CRLF, are left in ans.Fields as
// they came: the data plane writes them on without the map's cost (the servers'
// WriteForwarded). Their bytes and names are checked as for the map; the values are not
// trimmed.
//
// http.ReadResponse deletes an HTTP/1.1 Connection field that says close, and with it the
// names of the other fields it lists, which a proxy must not forward: the values of the
// head's Connection fields are put back. A head not all buffered in br when its parse
// begins is read from in, br's source, which keeps a copy of the bytes it reads until the
// parse ends (in is nil where br reads from something else).
func readResponse(br *bufio.Reader, in *headBudget, req *http.Request, ans *Answer) (*http.Response, error) {
	if resp := readSimpleResponse(br, req, ans); resp != nil {
		return resp, nil
	}
	buffered, _ := br.Peek(br.Buffered())
	conn, whole := connectionValues(buffered)
	capture := !whole && in != nil
	var head []byte
	if capture {
		head = append([]byte(nil), buffered...)
		in.capture = &head
	}
	resp, err := http.ReadResponse(br, req)
	if capture {
		in.capture = nil
		conn, _ = connectionValues(head)
	}
	if err == nil && conn != nil && resp.Close && resp.Header["Connection"] == nil {
		resp.Header["Connection"] = conn
	}
	return resp, err
}

// connectionValues returns the values of the Connection fields in the response head at the
// start of buf (lines may end in LF alone, as http.ReadResponse allows), and whether buf
// holds the whole head.
func connectionValues(buf []byte) (vals []string, whole bool) {
	for first := true; ; first = false {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			return vals, false // the head goes on past buf
		}
		line := bytes.TrimSuffix(buf[:i], []byte("\r"))
		buf = buf[i+1:]
		if len(line) == 0 {
			return vals, true
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && !first && httpascii.EqualFold(name, "connection") {
			vals = append(vals, httpascii.TrimOWS(string(value)))
		}
	}
}

// maxSimpleHeaders bounds the header lines readSimpleResponse parses; the values of the
// first inlineFields share the response's allocation.
const (
	maxSimpleHeaders = 64
	inlineFields     = 12
)

// readSimpleResponse parses the response head buffered in br when it is a simple one, and
// consumes it; otherwise it returns nil and consumes nothing. ans: see readResponse.
func readSimpleResponse(br *bufio.Reader, req *http.Request, ans *Answer) *http.Response {
	if req.Method == http.MethodHead {
		return nil
	}
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 || !bytes.HasPrefix(buf, []byte("HTTP/1.1 ")) {
		return nil
	}
	raw := buf[:end+2] // through the last line's CRLF
	lines := 0
	for i, b := range raw {
		switch {
		case b == '\n':
			if i == 0 || raw[i-1] != '\r' || leftToReadResponse(raw[i+1:]) {
				return nil
			}
			lines++
		case b == '\r':
			if i+1 >= len(raw) || raw[i+1] != '\n' {
				return nil
			}
		case b < ' ' && b != '\t', b >= 0x7f:
			return nil
		}
	}
	if lines-1 > maxSimpleHeaders {
		return nil
	}
	head := string(raw) // every key and value below is a substring of it
	line, rest, _ := cutCRLF(head)
	status := line[len("HTTP/1.1 "):]
	if len(status) < 3 || (len(status) > 3 && status[3] != ' ') {
		return nil
	}
	code := 0
	for _, c := range status[:3] {
		if c < '0' || c > '9' {
			return nil
		}
		code = code*10 + int(c-'0')
	}
	// No body (1xx, 204, 304) or switched protocols: http.ReadResponse.
	if code < 200 || code == http.StatusNoContent || code == http.StatusNotModified {
		return nil
	}
	if ans != nil {
		return rawResponse(br, req, len(raw), status, code, rest, ans)
	}
	// The response, its body and (for a usual head) the header values in one allocation.
	rb := &struct {
		resp   http.Response
		body   simpleBody
		fields [inlineFields]string
	}{}
	hdr := make(http.Header, lines-1)
	vals := rb.fields[:]
	if lines-1 > inlineFields {
		vals = make([]string, lines-1)
	}
	for rest != "" {
		line, rest, _ = cutCRLF(rest)
		k, v, ok := splitField(line)
		if !ok {
			return nil
		}
		if !isCommonResponseHeader(k) {
			k = textproto.CanonicalMIMEHeaderKey(k)
		}
		if prior, ok := hdr[k]; ok {
			hdr[k] = append(prior, v)
			continue
		}
		vals[0] = v
		hdr[k] = vals[0:1:1]
		vals = vals[1:]
	}
	cl := hdr["Content-Length"]
	if len(cl) != 1 {
		return nil
	}
	n, err := strconv.ParseUint(cl[0], 10, 63)
	if err != nil {
		return nil
	}
	resp := &rb.resp
	endSimpleResponse(br, len(raw), resp, &rb.body, status, code, int64(n), req)
	resp.Header = hdr
	// http.ReadResponse deletes a Connection field that says close; it stays here, since the
	// other fields it names must still be removed before the answer goes on.
	resp.Close = httpguts.HeaderValuesContainsToken(hdr["Connection"], "close")
	return resp
}

// endSimpleResponse consumes from br a simple response's head, headLen bytes and its empty
// line, and makes resp the response with status and code and n bytes of body read through
// body (http.NoBody when n is 0). Its header and Close are the caller's to set.
func endSimpleResponse(br *bufio.Reader, headLen int, resp *http.Response, body *simpleBody, status string, code int, n int64, req *http.Request) {
	*resp = http.Response{
		Status:        status,
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		ContentLength: n,
		Request:       req,
	}
	br.Discard(headLen + 2)
	if n == 0 {
		resp.Body = http.NoBody
	} else {
		body.lengthBody = lengthBody{r: br, left: n}
		resp.Body = body
	}
}

// Answer is room a caller of Cluster.Forward gives for an HTTP/1.1 endpoint's simple
// answer: the response and its body are made in it, and its field lines left in Fields as
// they came (readResponse). It serves one exchange.
type Answer struct {
	Fields string
	resp   http.Response
	body   simpleBody
}

// rawResponse is readSimpleResponse's end for a caller that takes the field lines (rest,
// after the status line) as they are: their names are checked as the map's are, and
// Content-Length and Connection read from them. headLen is the head's length but for the
// empty line.
func rawResponse(br *bufio.Reader, req *http.Request, headLen int, status string, code int, rest string, ans *Answer) *http.Response {
	n, closeConn := int64(-1), false
	for r := rest; r != ""; {
		var line string
		line, r, _ = cutCRLF(r)
		k, v, ok := splitField(line)
		if !ok {
			return nil
		}
		switch {
		case httpascii.EqualFold(k, "content-length"):
			cl, err := strconv.ParseUint(v, 10, 63)
			if n >= 0 || err != nil {
				return nil // one, and a number
			}
			n = int64(cl)
		case httpascii.EqualFold(k, "connection"):
			closeConn = closeConn || httpguts.HeaderValuesContainsToken([]string{v}, "close")
		}
	}
	if n < 0 {
		return nil
	}
	resp := &ans.resp
	endSimpleResponse(br, headLen, resp, &ans.body, status, code, n, req)
	resp.Close = closeConn
	ans.Fields = rest
	return resp
}

// splitField splits a header line into its name and trimmed value; ok is false when the
// name is empty or not a token (a folded line, with its leading white space, among them).
func splitField(line string) (name, value string, ok bool) {
	for i := 0; i < len(line); i++ {
		if line[i] == ':' {
			return line[:i], httpascii.TrimOWS(line[i+1:]), i > 0
		}
		if !httpguts.IsTokenRune(rune(line[i])) {
			return "", "", false
		}
	}
	return "", "", false
}

// leftToReadResponse reports whether the header line at the start of line names a field that
// readSimpleResponse leaves to http.ReadResponse: framing other than Content-Length, and the
// fields ReadResponse rewrites. It runs on each line as the head's bytes are checked, so that
// a response left to ReadResponse (a chunked one, say) costs no allocation first.
func leftToReadResponse(line []byte) bool {
	for _, name := range [...]string{"transfer-encoding:", "trailer:", "pragma:"} {
		if len(line) >= len(name) && httpascii.EqualFold(line[:len(name)], name) {
			return true
		}
	}
	return false
}

// isCommonResponseHeader reports whether k is one of the usual response header names in
// canonical form, which then costs no allocation and no canonicalisation. A switch on
// constant strings compiles to a few comparisons, cheaper than hashing k for a map.
func isCommonResponseHeader(k string) bool {
	switch k {
	case "Accept-Ranges", "Age", "Cache-Control", "Connection", "Content-Encoding",
		"Content-Language", "Content-Length", "Content-Type", "Date", "Etag", "Expires", "Keep-Alive",
		"Last-Modified", "Location", "Pragma", "Server", "Set-Cookie", "Strict-Transport-Security", "Trailer",
		"Transfer-Encoding", "Vary", "Via", "X-Content-Type-Options", "X-Frame-Options", "X-Request-Id":
		return true
	}
	return false
}

func cutCRLF(s string) (line, rest string, ok bool) {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '\r' && s[i+1] == '\n' {
			return s[:i], s[i+2:], true
		}
	}
	return s, "", false
}

// simpleBody is a simple answer's body of known length with room for the wrappers that the
// pool (h1Body) and the cluster (countedBody) put around it, so that they come in the
// answer's allocation instead of two of their own (wrapperRoom).
type simpleBody struct {
	lengthBody
	pooled  h1Body
	counted countedBody
}

// pooledBody and countedBody return the room for that wrapper in sb, or a new one when sb
// is nil (an answer that is not a simple one).
func (sb *simpleBody) pooledBody() *h1Body {
	if sb == nil {
		return new(h1Body)
	}
	return &sb.pooled
}

func (sb *simpleBody) countedBody() *countedBody {
	if sb == nil {
		return new(countedBody)
	}
	return &sb.counted
}

// wrapperRoom returns the simpleBody that b is, or that the h1Body b wraps, or nil.
func wrapperRoom(b io.ReadCloser) *simpleBody {
	switch b := b.(type) {
	case *simpleBody:
		return b
	case *h1Body:
		sb, _ := b.rc.(*simpleBody)
		return sb
	}
	return nil
}

// lengthBody is a body of known length: EOF after it, io.ErrUnexpectedEOF when the
// connection ends before it.
type lengthBody struct {
	r      *bufio.Reader
	left   int64
	closed bool
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err == io.EOF && b.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *lengthBody) Close() error {
	b.closed = true
	return nil
}
